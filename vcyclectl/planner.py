"""The pure planner: what one pass over one space should do, and why.

`plan(space, observation, now, names)` looks only at what is (cloud listing, records,
reports, drains, backoff) and returns actions with human reasons; it does no I/O, reads no
clock and draws no randomness except through the `names` source it is given. That is what
makes it testable with hypothesis and fast enough for 100,000 machines.

Rules (SPEC "The reconcile pass"):
- per machine: end it when stopped/failed, past `max_wallclock_seconds`, without a fresh
  heartbeat after `fizzle_seconds`, stuck starting past `create_timeout_seconds`, drained
  and past its shutdown time, or over a lowered limit (newest first); adopt a tagged machine
  with no record; forget a record whose machine is gone (after `create_timeout_seconds` for
  an intent the cloud has not shown yet);
- creation: none for machinetypes in backoff, drained, or with `target_share: 0`; the rest
  fill the free capacity under every limit, one machine at a time to whichever machinetype
  is furthest below its hs06-weighted share;
- per pass at most `max_deletes_per_pass` deletions and `max_creates_per_pass` creations.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

from vcyclectl.config import Machinetype, Space
from vcyclectl.model import Action, ActionKind, CloudMachine, Flavor, MachineState, Plan
from vcyclectl.records import Drains, MachineRecord, Report

NameSource = Callable[[str], str]

MSG_WALLCLOCK = "700 Exceeded max_wallclock_seconds"
MSG_HEARTBEAT = "700 Heartbeat file not updated"
MSG_FAILED = "700 Failed to start"
MSG_REQUESTED = "100 Shutdown as requested"
MSG_OVER_LIMIT = "100 Shutdown as requested"

#: Delete priorities: lower goes first when `max_deletes_per_pass` cuts the list.
_ENDED, _BROKEN, _DRAINED, _OVER_LIMIT = range(4)


@dataclass(frozen=True)
class Observation:
    """Everything the planner looks at for one space, gathered by the reconciler."""

    machines: Sequence[CloudMachine]
    records: Mapping[str, MachineRecord]
    reports: Mapping[str, Report] = field(default_factory=dict)
    drains: Drains = field(default_factory=Drains)
    backoff: Mapping[str, float] = field(default_factory=dict)
    flavors: Sequence[Flavor] = ()


def message_code(message: str | None) -> int | None:
    """The numeric code of a Vac-style shutdown message ("300 No more work…" -> 300)."""
    if not message:
        return None
    head = message.strip().split(" ", 1)[0]
    return int(head) if head.isdigit() and len(head) == 3 else None


def is_abort(message: str | None, lived: float | None, fizzle_seconds: float) -> bool:
    """Codes 300-699 are aborts; so is an unexplained stop within `fizzle_seconds`."""
    code = message_code(message)
    if code is not None:
        return 300 <= code <= 699
    return lived is not None and lived < fizzle_seconds


@dataclass(slots=True)
class _Seen:
    """One machine as the planner reasons about it: cloud view merged with the record.

    Every machine on the cloud counts against the limits, in any state (SPEC), until its
    deletion is confirmed; `leaving` marks one this plan deletes, which the plan assumes
    gone for display, while `pending_delete` (asked earlier, or the cloud is deleting it)
    keeps counting until the cloud stops listing it.
    """

    name: str
    machinetype: str
    state: MachineState
    processors: int
    created_at: float
    started_at: float | None
    machine: CloudMachine | None
    record: MachineRecord | None
    report: Report | None
    hs06_per_processor: float = 1.0
    pending_delete: bool = False
    leaving: bool = False

    @property
    def counts(self) -> bool:
        return self.pending_delete or not self.leaving

    @property
    def starting(self) -> bool:
        return self.counts and self.state in (MachineState.CREATING, MachineState.STARTING)

    @property
    def trimmable(self) -> bool:
        """May be ended to get under a lowered limit: present, counted, not already going."""
        return self.machine is not None and not self.leaving and not self.pending_delete


class _Planner:
    def __init__(self, space: Space, obs: Observation, now: float, names: NameSource) -> None:
        self.space = space
        self.obs = obs
        self.now = now
        self.names = names
        self.actions: list[Action] = []
        self.deletes: list[tuple[int, float, Action]] = []
        self.notes: list[str] = []
        self.aborts: dict[str, float] = {}
        self.seen: list[_Seen] = []

    # -- observation ----------------------------------------------------------------------
    def merge(self) -> None:
        on_cloud: dict[str, CloudMachine] = {}
        for m in self.obs.machines:
            if m.space != self.space.name:
                continue
            current = on_cloud.get(m.name)
            # A name listed twice (Nova's lingering DELETED copy): prefer the present one.
            if current is None or current.state is MachineState.GONE:
                on_cloud[m.name] = m
        for name, m in on_cloud.items():
            record = self.obs.records.get(name)
            if m.state is MachineState.GONE:
                if record is not None:
                    self.forget(record, m, "the cloud reports it gone")
                continue
            if record is None:
                record = self.adopt(m)
            else:
                self.update(record, m)
            self.seen.append(self._seen(m, record))
        for name, record in self.obs.records.items():
            if name in on_cloud:
                continue
            if self.intent_in_flight(record):
                self.seen.append(self._seen(None, record))  # counts until it shows or expires
            else:
                self.forget(record, None, "no longer on the cloud")

    def intent_in_flight(self, record: MachineRecord) -> bool:
        """A create the cloud does not list yet. Confirmed ones (with a cloud id) wait out
        listing lag up to `create_timeout_seconds`; unconfirmed ones (the creating pass died
        or the call's outcome was lost) only `intent_timeout_seconds`, after which a VM
        that does turn up is adopted."""
        if record.state is not MachineState.CREATING or record.deleting_at is not None:
            return False
        timeout = (self.space.create_timeout_seconds if record.cloud_id
                   else self.space.intent_timeout_seconds)
        return self.now - record.created_at < timeout

    def _seen(self, m: CloudMachine | None, record: MachineRecord) -> _Seen:
        mt = self.space.machinetypes.get(record.machinetype)
        started = (m.started_at if m and m.started_at else None) or record.started_at
        created = (record.created_at if record.created_at else None) or \
            (m.created_at if m and m.created_at else self.now)
        return _Seen(
            name=record.name, machinetype=record.machinetype,
            state=m.state if m else MachineState.CREATING,
            processors=(m.processors if m and m.processors else record.processors),
            created_at=created, started_at=started, machine=m, record=record,
            report=self.obs.reports.get(record.name),
            hs06_per_processor=mt.hs06_per_processor if mt else 1.0,
            pending_delete=record.deleting_at is not None or
            (m is not None and m.state is MachineState.DELETING),
        )

    def adopt(self, m: CloudMachine) -> MachineRecord:
        mt = self.space.machinetypes.get(m.machinetype)
        record = MachineRecord(
            name=m.name, space=m.space, machinetype=m.machinetype, state=m.state,
            processors=m.processors, created_at=m.created_at or self.now, flavor=m.flavor,
            hs06=m.processors * (mt.hs06_per_processor if mt else 1.0), cloud_id=m.id,
            started_at=m.started_at, zone=m.zone, spot=m.spot, adopted=True)
        self.actions.append(Action(ActionKind.ADOPT, m.name, m.machinetype,
                                   "tagged machine with no record (a crashed pass or another "
                                   "host)", processors=m.processors, machine=m,
                                   changes=record.to_record()))
        return record

    def update(self, record: MachineRecord, m: CloudMachine) -> None:
        changes: dict[str, object] = {}
        if record.state is not m.state and record.deleting_at is None:
            changes["state"] = m.state.value
        if m.id and record.cloud_id != m.id:
            changes["cloud_id"] = m.id
        if m.started_at and not record.started_at:
            changes["started_at"] = m.started_at
        if m.processors and m.processors != record.processors:
            changes["processors"] = m.processors
        if m.zone and m.zone != record.zone:
            changes["zone"] = m.zone
        if changes:
            self.actions.append(Action(ActionKind.UPDATE, m.name, record.machinetype,
                                       "cloud state changed", machine=m, changes=changes))

    def forget(self, record: MachineRecord, m: CloudMachine | None, why: str) -> None:
        """The machine is gone: drop the record; note an end we did not cause."""
        message = None
        abort = False
        preempted = bool(m and m.preempted)
        if not record.finished and record.deleting_at is None:
            report = self.obs.reports.get(record.name)
            message = (report.shutdown_message if report else None) or \
                (m.shutdown_message if m else None)
            mt = self.space.machinetypes.get(record.machinetype)
            if record.state is MachineState.CREATING and not record.cloud_id:
                why = "intent never appeared on the cloud"
            elif not preempted and mt is not None:
                end = (m.stopped_at if m and m.stopped_at else None) or self.now
                lived = end - record.started_at if record.started_at else None
                abort = is_abort(message, lived, mt.fizzle_seconds)
                if abort:
                    self.aborts[record.machinetype] = max(self.aborts.get(record.machinetype, 0),
                                                          end)
        self.actions.append(Action(ActionKind.FORGET, record.name, record.machinetype,
                                   ("pre-empted by the cloud" if preempted else why),
                                   processors=record.processors, machine=m, message=message,
                                   abort=abort, preempted=preempted))

    # -- per-machine decisions ---------------------------------------------------------
    def decide_machines(self) -> None:
        for s in self.seen:
            if s.machine is None or s.machine.state is MachineState.DELETING:
                continue
            if s.record is not None and s.record.deleting_at is not None:
                self.delete(s, _ENDED, "deletion asked in an earlier pass, still on the cloud",
                            s.record.message)
                continue
            mt = self.space.machinetypes.get(s.machinetype)
            if s.state.is_ended:
                self.end_stopped(s, mt)
                continue
            if mt is None:
                continue  # handled by limits: an unconfigured machinetype has a limit of 0
            self.end_if_unhealthy(s, mt)

    def end_stopped(self, s: _Seen, mt: Machinetype | None) -> None:
        assert s.machine is not None
        m = s.machine
        report_message = (s.report.shutdown_message if s.report else None) or m.shutdown_message
        if m.preempted:
            self.delete(s, _ENDED, "pre-empted by the cloud", report_message, preempted=True)
            return
        message: str | None
        if s.state is MachineState.FAILED:
            message = report_message or MSG_FAILED
            reason = "failed" + (f": {m.state_reason}" if m.state_reason else "")
            abort = True
        else:
            message = report_message
            reason = "stopped" + (f" ({message})" if message else " without a shutdown message")
            end = m.stopped_at or self.now
            lived = end - s.started_at if s.started_at else None
            abort = mt is not None and is_abort(message, lived, mt.fizzle_seconds)
        if abort:
            end = m.stopped_at or self.now
            self.aborts[s.machinetype] = max(self.aborts.get(s.machinetype, 0.0), end)
        self.delete(s, _ENDED, reason, message, abort=abort)

    def end_if_unhealthy(self, s: _Seen, mt: Machinetype) -> None:
        age = self.now - s.created_at
        drains = self.obs.drains
        mark = (drains.for_machine(s.name, s.machinetype)
                if drains.space or drains.machinetypes or drains.machines else None)
        if mark is not None:
            shutdown_time = mark.since + mt.drain_grace_seconds
            if self.now >= shutdown_time:
                self.delete(s, _DRAINED, f"drained ({mark.reason or 'no reason given'}) and past "
                            f"its shutdown time", MSG_REQUESTED)
                return
        if age > mt.max_wallclock_seconds:
            self.delete(s, _BROKEN, f"ran {age:.0f}s, over max_wallclock_seconds "
                        f"({mt.max_wallclock_seconds:g})", MSG_WALLCLOCK)
            return
        if s.state is MachineState.STARTING and age > self.space.create_timeout_seconds:
            self.aborts[s.machinetype] = max(self.aborts.get(s.machinetype, 0.0), self.now)
            self.delete(s, _BROKEN, f"still starting after {age:.0f}s (create_timeout_seconds "
                        f"{self.space.create_timeout_seconds:g})", MSG_FAILED, abort=True)
            return
        if mt.heartbeat_checked and s.state is MachineState.RUNNING and s.started_at is not None \
                and self.now - s.started_at > mt.fizzle_seconds:
            beat = self.heartbeat_of(s)
            if beat is None or self.now - beat > mt.heartbeat_limit:
                ago = "never" if beat is None else f"{self.now - beat:.0f}s ago"
                self.delete(s, _BROKEN, f"heartbeat {ago}, limit {mt.heartbeat_limit:g}s",
                            MSG_HEARTBEAT)

    @staticmethod
    def heartbeat_of(s: _Seen) -> float | None:
        beats = [b for b in ((s.report.heartbeat_at if s.report else None),
                             (s.machine.heartbeat_at if s.machine else None)) if b is not None]
        return max(beats) if beats else None

    def delete(self, s: _Seen, priority: int, reason: str, message: str | None, *,
               abort: bool = False, preempted: bool = False) -> None:
        s.leaving = True
        action = Action(ActionKind.DELETE, s.name, s.machinetype, reason,
                        processors=s.processors, machine=s.machine, message=message,
                        abort=abort, preempted=preempted)
        self.deletes.append((priority, -s.created_at, action))

    # -- limits -------------------------------------------------------------------------
    def enforce_limits(self) -> None:
        """Delete newest first where a limit was lowered below what exists now."""
        by_type: dict[str, list[_Seen]] = {}
        for s in self.seen:
            if s.counts:
                by_type.setdefault(s.machinetype, []).append(s)
        for name, machines in sorted(by_type.items()):
            mt = self.space.machinetypes.get(name)
            limit = 0 if mt is None else mt.processors_limit
            if limit is None:
                continue
            used = sum(s.processors for s in machines if s.counts)
            why = ("machinetype no longer configured" if mt is None
                   else f"over lowered processors_limit of {name} ({used} > {limit})")
            self._trim(machines, used - limit, why)
        used = sum(s.processors for s in self.seen if s.counts)
        excess = used - self.space.processors_limit
        if excess > 0:
            self._trim([s for s in self.seen if s.counts], excess,
                       f"over lowered space processors_limit ({used} > "
                       f"{self.space.processors_limit})")

    def _trim(self, machines: list[_Seen], excess: int, why: str) -> None:
        for s in sorted(machines, key=lambda s: (-s.created_at, s.name)):
            if excess <= 0:
                return
            if not s.trimmable:
                continue
            excess -= s.processors
            self.delete(s, _OVER_LIMIT, why, MSG_OVER_LIMIT)

    def bound_deletes(self) -> None:
        self.deletes.sort(key=lambda d: (d[0], d[1], d[2].name))
        limit = self.space.max_deletes_per_pass
        kept = self.deletes[:limit]
        cut = self.deletes[limit:]
        if cut:
            self.notes.append(f"deletions capped {len(self.deletes)} → {limit} by "
                              f"max_deletes_per_pass; the rest wait for the next pass")
            names = {d[2].name for d in cut}
            for s in self.seen:
                if s.name in names:
                    s.leaving = False  # still there: counts against limits until deleted
        self.actions.extend(d[2] for d in kept)

    # -- creation -------------------------------------------------------------------------
    def create(self) -> None:
        space = self.space
        live = [s for s in self.seen if s.counts]
        used = sum(s.processors for s in live)
        starting = sum(s.processors for s in live if s.starting)
        free = space.processors_limit - used
        start_room = (space.max_starting_processors - starting
                      if space.max_starting_processors is not None else math.inf)
        creates_left = space.max_creates_per_pass
        mt_used: dict[str, int] = {}
        mt_starting: dict[str, int] = {}
        mt_weighted: dict[str, float] = {}
        for s in live:
            mt_used[s.machinetype] = mt_used.get(s.machinetype, 0) + s.processors
            if s.starting:
                mt_starting[s.machinetype] = mt_starting.get(s.machinetype, 0) + s.processors
            mt_weighted[s.machinetype] = mt_weighted.get(s.machinetype, 0.0) + \
                s.processors * s.hs06_per_processor

        heap: list[tuple[float, str]] = []
        candidates: dict[str, tuple[Machinetype, list[Flavor]]] = {}
        for name, mt in sorted(space.machinetypes.items()):
            if not self.may_create(mt):
                continue
            flavors = self.flavors_for(mt)
            if not flavors:
                continue
            candidates[name] = (mt, flavors)
            heapq.heappush(heap, (mt_weighted.get(name, 0.0) / mt.target_share, name))

        stopped_by = ""
        while heap:
            if free <= 0:
                stopped_by = f"space full: processors_limit {space.processors_limit} reached"
                break
            if start_room <= 0:
                stopped_by = (f"max_starting_processors {space.max_starting_processors} reached; "
                              "more next pass")
                break
            if creates_left <= 0:
                stopped_by = (f"creations capped at max_creates_per_pass "
                              f"({space.max_creates_per_pass})")
                break
            _, name = heapq.heappop(heap)
            mt, flavors = candidates[name]
            room = min(free, start_room)
            if mt.processors_limit is not None:
                room = min(room, mt.processors_limit - mt_used.get(name, 0))
            if mt.max_starting_processors is not None:
                room = min(room, mt.max_starting_processors - mt_starting.get(name, 0))
            flavor = next((f for f in flavors if f.processors <= room), None)
            if flavor is None:
                continue  # this machinetype is full for this pass; the others go on
            share_now = mt_weighted.get(name, 0.0)
            self.actions.append(Action(
                ActionKind.CREATE, self.names(name), name,
                f"{name} below its share (hs06 {share_now:g} for target_share "
                f"{mt.target_share:g}); {int(min(free, 1e9))} processors free",
                processors=flavor.processors, flavor=flavor))
            free -= flavor.processors
            start_room -= flavor.processors
            creates_left -= 1
            mt_used[name] = mt_used.get(name, 0) + flavor.processors
            mt_starting[name] = mt_starting.get(name, 0) + flavor.processors
            mt_weighted[name] = share_now + flavor.processors * mt.hs06_per_processor
            heapq.heappush(heap, (mt_weighted[name] / mt.target_share, name))
        if stopped_by and candidates:
            self.notes.append(stopped_by)

    def may_create(self, mt: Machinetype) -> bool:
        mark = self.obs.drains.for_machinetype(mt.name)
        if mark is not None:
            self.notes.append(f"{mt.name}: drained, no new machines")
            return False
        if mt.target_share <= 0:
            return False
        last_abort = max(self.obs.backoff.get(mt.name, -math.inf),
                         self.aborts.get(mt.name, -math.inf))
        if self.now < last_abort + mt.backoff_seconds:
            until = last_abort + mt.backoff_seconds
            self.notes.append(f"{mt.name}: in backoff for {until - self.now:.0f}s more "
                              "(a machine aborted)")
            return False
        return True

    def flavors_for(self, mt: Machinetype) -> list[Flavor]:
        """The machinetype's flavors, in its order, that fit min/max_processors."""
        by_name = {f.name: f for f in self.obs.flavors}
        if mt.flavors:
            unknown = [n for n in mt.flavors if n not in by_name]
            if unknown:
                self.notes.append(f"{mt.name}: flavors not offered by the cloud: "
                                  f"{', '.join(unknown)}")
            listed = [by_name[n] for n in mt.flavors if n in by_name]
        else:
            listed = list(self.obs.flavors)
        fitting = [f for f in listed if f.processors >= mt.min_processors and
                   (mt.max_processors is None or f.processors <= mt.max_processors)]
        if not fitting:
            self.notes.append(f"{mt.name}: no flavor fits min_processors {mt.min_processors} "
                              f"/ max_processors {mt.max_processors}")
        return fitting

    def run(self) -> Plan:
        self.merge()
        self.decide_machines()
        self.enforce_limits()
        self.bound_deletes()
        self.create()
        return Plan(space=self.space.name, actions=tuple(self.actions),
                    notes=tuple(dict.fromkeys(self.notes)), aborts=dict(self.aborts))


def plan(space: Space, observation: Observation, now: float, names: NameSource) -> Plan:
    """Decide one pass over one space. Pure: same inputs (and names), same plan."""
    return _Planner(space, observation, now, names).run()


def processors_in_use(machines: Iterable[CloudMachine]) -> int:
    """Processors of machines that occupy capacity (for tests and status)."""
    return sum(m.processors for m in machines if m.state.is_live)
