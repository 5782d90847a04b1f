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
from typing import Callable, Mapping, Sequence

from vcyclectl.config import Machinetype, Space
from vcyclectl.model import Action, ActionKind, CloudMachine, Flavor, MachineState, Plan
from vcyclectl.policy import SpacePolicy, Tier, paced_rate
from vcyclectl.records import Drains, MachineRecord, Report

NameSource = Callable[[str], str]

MSG_WALLCLOCK = "700 Exceeded max_wallclock_seconds"
MSG_HEARTBEAT = "700 Heartbeat file not updated"
MSG_FAILED = "700 Failed to start"
MSG_REQUESTED = "100 Shutdown as requested"
MSG_OVER_LIMIT = "100 Shutdown as requested"

#: Delete priorities: lower goes first when `max_deletes_per_pass` cuts the list.
_ENDED, _BROKEN, _DRAINED, _OVER_LIMIT = range(4)


#: `Action.changes` key of an UPDATE that drains a backfill machine to make room; the
#: reconciler turns it into a machine drain mark (by "policy") since that instant.
POLICY_DRAIN = "policy_drain"


@dataclass
class _Room:
    """Capacity left while the policy fills tiers (processors, starts, money)."""

    free: float
    start_room: float
    creates_left: int
    rate: float = math.inf
    money: float = math.inf
    mt_used: dict[str, int] = field(default_factory=dict)
    mt_starting: dict[str, int] = field(default_factory=dict)
    mt_weighted: dict[str, float] = field(default_factory=dict)
    created_processors: int = 0
    created_rate: float = 0.0
    served: set[str] = field(default_factory=set)
    stopped_by: str = ""
    had_candidates: bool = False


@dataclass
class _Usage:
    """Per machinetype: processors counted, starting, hs06-weighted, spend rate; and the
    money of this budget's running machines (realized so far, reserved to their end)."""

    used: dict[str, int] = field(default_factory=dict)
    starting: dict[str, int] = field(default_factory=dict)
    weighted: dict[str, float] = field(default_factory=dict)
    rate: dict[str, float] = field(default_factory=dict)
    realized: float = 0.0
    reserved: float = 0.0


@dataclass(frozen=True)
class Observation:
    """Everything the planner looks at for one space, gathered by the reconciler."""

    machines: Sequence[CloudMachine]
    records: Mapping[str, MachineRecord]
    reports: Mapping[str, Report] = field(default_factory=dict)
    drains: Drains = field(default_factory=Drains)
    backoff: Mapping[str, float] = field(default_factory=dict)
    flavors: Sequence[Flavor] = ()
    #: The provisioning policy (communities, campaigns, budgets; `vcyclectl.policy`);
    #: None, the default, plans exactly as without one.
    policy: SpacePolicy | None = None
    #: Why this host's clock is not to be trusted for this pass (it disagrees with the
    #: state directory's filesystem beyond `max_clock_skew_seconds`); when set, deletions
    #: for time-based reasons (wallclock, heartbeat, starting too long, drain shutdown
    #: time) are withheld, since every age would be off by the skew. Empty: trusted.
    clock_untrusted: str = ""


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


def fitting_flavors(mt: Machinetype, offered: Sequence[Flavor]) -> tuple[list[Flavor], list[str]]:
    """(the flavors a machinetype may use, in its order, that fit min/max_processors;
    the names it lists that the cloud does not offer). No `flavors:` means all offered."""
    by_name = {f.name: f for f in offered}
    unknown = [n for n in mt.flavors if n not in by_name]
    listed = [by_name[n] for n in mt.flavors if n in by_name] if mt.flavors else list(offered)
    fitting = [f for f in listed if f.processors >= mt.min_processors and
               (mt.max_processors is None or f.processors <= mt.max_processors)]
    return fitting, unknown


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
    def __init__(self, space: Space, obs: Observation, now: float, names: NameSource,
                 max_deletes: int | None = None) -> None:
        self.max_deletes = space.max_deletes_per_pass if max_deletes is None else max_deletes
        self.space = space
        self.obs = obs
        self.now = now
        self.names = names
        self.actions: list[Action] = []
        self.deletes: list[tuple[int, float, Action]] = []
        self.notes: list[str] = []
        self.aborts: dict[str, float] = {}
        self.seen: list[_Seen] = []
        self.backfill_held = False
        self._proven: set[str] | None = None

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
        if self.obs.clock_untrusted:
            self.notes.append(f"time-based deletions withheld: {self.obs.clock_untrusted}")
            return
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
        limit = min(self.space.max_deletes_per_pass, self.max_deletes)
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
        fitting, unknown = fitting_flavors(mt, self.obs.flavors)
        if unknown:
            self.notes.append(f"{mt.name}: flavors not offered by the cloud: "
                              f"{', '.join(unknown)}")
        if not fitting:
            self.notes.append(f"{mt.name}: no flavor fits min_processors {mt.min_processors} "
                              f"/ max_processors {mt.max_processors}")
        return fitting

    # -- provisioning policy (docs/policy.md); only with `Observation.policy` -------------
    def price_of(self, s: _Seen) -> float:
        """What the machine costs per hour: its record's price at creation, else its
        flavor's list price, else nothing known (0)."""
        if s.record is not None and s.record.price_per_hour is not None:
            return s.record.price_per_hour
        flavor = (s.machine.flavor if s.machine is not None else None) or \
            (s.record.flavor if s.record is not None else None)
        for f in self.obs.flavors:
            if f.name == flavor and f.price_per_hour is not None:
                return f.price_per_hour
        return 0.0  # adopted, of a flavor the cloud no longer lists: nothing known

    def policy_usage(self, policy: SpacePolicy) -> _Usage:
        """One walk over the machines: per machinetype what counts against limits, and the
        money; rooms for any set of machinetypes are then derived without walking again."""
        usage = _Usage()
        money = policy.money
        used, weighted, starting, rate = usage.used, usage.weighted, usage.starting, usage.rate
        start_at = money.start_at if money is not None else 0.0
        reserve = money.reserve_seconds if money is not None else {}
        now = self.now
        for s in self.seen:
            mt = s.machinetype
            counts = s.pending_delete or not s.leaving
            if counts:
                used[mt] = used.get(mt, 0) + s.processors
                weighted[mt] = weighted.get(mt, 0.0) + s.processors * s.hs06_per_processor
                if s.state is MachineState.CREATING or s.state is MachineState.STARTING:
                    starting[mt] = starting.get(mt, 0) + s.processors
            if money is None or (s.record is not None and s.record.finished) or \
                    s.created_at < start_at:
                continue  # ended ones are in `finished_spend`; older ones are not this budget's
            price = self.price_of(s)
            age = max(0.0, now - s.created_at)
            usage.realized += price * age / 3600.0
            usage.reserved += price * max(age, reserve.get(mt, 0.0)) / 3600.0
            if counts:
                rate[mt] = rate.get(mt, 0.0) + price
        return usage

    def policy_room(self, policy: SpacePolicy, usage: _Usage,
                    without: frozenset[str] = frozenset()) -> _Room:
        """Free capacity now (processors, starts, creations, spend rate, budget), as if the
        machines of the machinetypes in `without` were gone.

        Money: every machine created in the window is paid for up front until its
        `max_wallclock_seconds` (plus the budget's margin), so the hard ceiling holds even
        if every machine runs to its end; pacing allows the spend rate that lands the
        budget's slice for this space on its end date.
        """
        space = self.space
        keep = [mt for mt in usage.used if mt not in without]
        room = _Room(free=float(space.processors_limit - sum(usage.used[mt] for mt in keep)),
                     start_room=(float(space.max_starting_processors -
                                       sum(usage.starting.get(mt, 0) for mt in keep))
                                 if space.max_starting_processors is not None else math.inf),
                     creates_left=space.max_creates_per_pass,
                     mt_used={mt: usage.used[mt] for mt in keep},
                     mt_starting={mt: usage.starting[mt] for mt in keep
                                  if mt in usage.starting},
                     mt_weighted={mt: usage.weighted[mt] for mt in keep})
        money = policy.money
        if money is not None:
            if not money.start_at <= self.now < money.end_at:
                self.notes.append(f"budget {money.budget}: outside its window, nothing is "
                                  "created")
                room.rate = room.money = 0.0
            else:
                rate = sum(r for mt, r in usage.rate.items() if mt not in without)
                room.rate = paced_rate(money.allotment, money.finished_spend + usage.realized,
                                       self.now, money.end_at) - rate
                room.money = money.allotment - money.finished_spend - usage.reserved
        return room

    def proven(self, machinetype: str) -> bool:
        """Has shown it has work: a machine running past `fizzle_seconds`. A priority
        community that has not only probes (one machine) before backfill makes room for it,
        so a community coming out of backoff without work costs backfill one machine."""
        if self._proven is None:
            self._proven = set()
            for s in self.seen:
                if s.machinetype in self._proven or not s.counts or \
                        s.state is not MachineState.RUNNING or s.started_at is None:
                    continue
                mt = self.space.machinetypes.get(s.machinetype)
                if self.now - s.started_at >= (mt.fizzle_seconds if mt is not None else 0.0):
                    self._proven.add(s.machinetype)
        return machinetype in self._proven

    def probes(self, policy: SpacePolicy) -> set[str]:
        """Priority machinetypes that only probe for work (one machine at a time) because
        none of their machines has shown work yet; only while backfill machines run, which
        are what a probe would cost. The same rule sizes what backfill makes room for, so
        the room made is not taken by a community that has not shown work."""
        backfill = policy.backfill_machinetypes
        if not backfill or not any(s.counts and s.machinetype in backfill for s in self.seen):
            return set()
        return {mt for t in policy.tiers if not t.backfill for mt in t.shares
                if mt not in policy.backfill_machinetypes and not self.proven(mt)}

    def make_room(self, policy: SpacePolicy) -> None:
        """Backfill makes room for priority communities that have work and cannot get it.

        What priority tiers would create if backfill were gone is compared with what they
        can create now; the shortfall (processors, and spend rate on a paced space) is taken
        from backfill machines newest first, so the oldest, most-invested machines are the
        last to go, by drain (MJF shutdown time, deleted after `drain_grace_seconds`) or by
        delete as each backfill community's `make_room` says. Machines already draining
        count as room on its way.
        """
        backfill = policy.backfill_machinetypes
        priority_tiers = [t for t in policy.tiers if not t.backfill]
        if not backfill or not priority_tiers:
            return
        usage = self.policy_usage(policy)
        now_room = self.policy_room(policy, usage)
        vacated = self.policy_room(policy, usage, without=backfill)
        probes = self.probes(policy)
        for tier in priority_tiers:
            self.fill_tier(tier, vacated, dry=True, probes=probes)
        if not vacated.created_processors:
            return  # nothing priority could start even with backfill gone: nothing to gain
        need_processors = vacated.created_processors - now_room.free
        need_rate = vacated.created_rate - now_room.rate
        if need_processors <= 0 and need_rate <= 1e-9:
            return
        # Room freed while backfill drains is priority's: backfill creates nothing meanwhile.
        self.backfill_held = True
        victims = [s for s in self.seen if s.machinetype in backfill and s.counts]
        candidates = []
        for s in victims:
            if s.pending_delete or self.obs.drains.for_machine(s.name, s.machinetype):
                need_processors -= s.processors  # room on its way
                need_rate -= self.price_of(s)
            elif s.trimmable:
                candidates.append(s)
        who = ", ".join(sorted(vacated.served)) or "priority work"
        for s in sorted(candidates, key=lambda s: (-s.created_at, s.name)):
            if need_processors <= 0 and need_rate <= 1e-9:
                break
            need_processors -= s.processors
            need_rate -= self.price_of(s)
            reason = f"backfill making room for {who}"
            if policy.make_room.get(s.machinetype, "drain") == "delete":
                self.delete(s, _OVER_LIMIT, reason + " (newest first)", MSG_REQUESTED)
            else:
                self.actions.append(Action(
                    ActionKind.UPDATE, s.name, s.machinetype,
                    f"drain: {reason}; shutdown in "
                    f"{self.space.machinetypes[s.machinetype].drain_grace_seconds:g}s"
                    if s.machinetype in self.space.machinetypes else f"drain: {reason}",
                    processors=s.processors, machine=s.machine, message=MSG_REQUESTED,
                    changes={POLICY_DRAIN: self.now}))

    def create_by_policy(self, policy: SpacePolicy) -> None:
        """Fill tier after tier: higher priority first, backfill last."""
        room = self.policy_room(policy, self.policy_usage(policy))
        probes = self.probes(policy)
        for tier in policy.tiers:
            if tier.backfill and self.backfill_held:
                self.notes.append("backfill: no new machines while it makes room for priority "
                                  "work")
                continue
            self.fill_tier(tier, room, dry=False, probes=probes)
        if room.stopped_by and room.had_candidates:
            self.notes.append(room.stopped_by)

    def fill_tier(self, tier: Tier, room: _Room, *, dry: bool,
                  probes: frozenset[str] | set[str] = frozenset()) -> None:
        """Water-fill one tier by hs06-weighted share under every limit, the tier's caps,
        the spend rate and the money left. `dry` only counts (for `make_room`); `probes`
        get at most one machine, and none while one is already starting."""
        money = self.obs.policy.money if self.obs.policy is not None else None
        heap: list[tuple[float, str]] = []
        candidates: dict[str, tuple[Machinetype, list[Flavor]]] = {}
        for name, share in sorted(tier.shares.items()):
            mt = self.space.machinetypes.get(name)
            if mt is None or share <= 0 or not self.may_create(mt):
                continue
            if name in probes and room.mt_starting.get(name, 0) > 0:
                continue
            flavors = self.flavors_for(mt)
            if money is not None:
                unpriced = [f.name for f in flavors if f.price_per_hour is None]
                if unpriced:
                    self.notes.append(f"{name}: flavors without a price are not used on a "
                                      f"budgeted space: {', '.join(unpriced)}")
                flavors = [f for f in flavors if f.price_per_hour is not None]
            if not flavors:
                continue
            candidates[name] = (mt, flavors)
            heapq.heappush(heap, (room.mt_weighted.get(name, 0.0) / share, name))
        if candidates:
            room.had_candidates = True
        probed: set[str] = set()
        while heap:
            if room.free <= 0:
                room.stopped_by = (f"space full: processors_limit "
                                   f"{self.space.processors_limit} reached")
                break
            if room.start_room <= 0:
                room.stopped_by = (f"max_starting_processors "
                                   f"{self.space.max_starting_processors} reached; more next pass")
                break
            if room.creates_left <= 0:
                room.stopped_by = (f"creations capped at max_creates_per_pass "
                                   f"({self.space.max_creates_per_pass})")
                break
            _, name = heapq.heappop(heap)
            if name in probed:
                continue
            mt, flavors = candidates[name]
            fit = min(room.free, room.start_room)
            if mt.processors_limit is not None:
                fit = min(fit, mt.processors_limit - room.mt_used.get(name, 0))
            if mt.max_starting_processors is not None:
                fit = min(fit, mt.max_starting_processors - room.mt_starting.get(name, 0))
            if name in tier.caps:
                fit = min(fit, tier.caps[name] - room.mt_used.get(name, 0))
            reserve = money.reserve_seconds.get(name, 0.0) / 3600.0 if money else 0.0
            sized = [f for f in flavors if f.processors <= fit]
            flavor = next((f for f in sized if (f.price_per_hour or 0.0) <= room.rate + 1e-9
                           and (f.price_per_hour or 0.0) * reserve <= room.money + 1e-9), None)
            if flavor is None:
                if sized and money is not None:
                    room.stopped_by = (
                        f"budget {money.budget}: spend rate paced to the budget, or the money "
                        f"left ({room.money:.2f} {money.currency}) cannot pay for another "
                        f"{name} machine until its max_wallclock_seconds")
                continue
            price = flavor.price_per_hour or 0.0
            share_now = room.mt_weighted.get(name, 0.0)
            if not dry:
                self.actions.append(Action(
                    ActionKind.CREATE, self.names(name), name,
                    f"{name} ({tier.labels.get(name, name)}, "
                    f"{'backfill' if tier.backfill else f'priority {tier.priority:g}'}) below "
                    f"its share (hs06 {share_now:g} for share {tier.shares[name]:g})",
                    processors=flavor.processors, flavor=flavor))
            room.free -= flavor.processors
            room.start_room -= flavor.processors
            room.creates_left -= 1
            room.rate -= price
            room.money -= price * reserve
            room.created_processors += flavor.processors
            room.created_rate += price
            room.served.add(tier.labels.get(name, name))
            room.mt_used[name] = room.mt_used.get(name, 0) + flavor.processors
            room.mt_starting[name] = room.mt_starting.get(name, 0) + flavor.processors
            room.mt_weighted[name] = share_now + flavor.processors * mt.hs06_per_processor
            if name in probes:
                probed.add(name)
                continue
            heapq.heappush(heap, (room.mt_weighted[name] / tier.shares[name], name))

    def run(self) -> Plan:
        self.merge()
        self.decide_machines()
        self.enforce_limits()
        if self.obs.policy is None:
            self.bound_deletes()
            self.create()
        else:
            self.make_room(self.obs.policy)
            self.bound_deletes()
            self.create_by_policy(self.obs.policy)
        return Plan(space=self.space.name, actions=tuple(self.actions),
                    notes=tuple(dict.fromkeys(self.notes)), aborts=dict(self.aborts))


def plan(space: Space, observation: Observation, now: float, names: NameSource, *,
         max_deletes: int | None = None) -> Plan:
    """Decide one pass over one space. Pure: same inputs (and names), same plan.

    `max_deletes` lowers the per-pass bound; `max_deletes=0` plans creations for a pass whose
    deletions are already done: every machine, however ended, then counts against the limits,
    since no deletion in this plan will be carried out.
    """
    return _Planner(space, observation, now, names, max_deletes).run()
