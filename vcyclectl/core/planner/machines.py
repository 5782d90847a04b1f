"""Step 2: per machine, whether it ends (stopped, failed, past its wallclock, no fresh
heartbeat, stuck starting, drained and past its shutdown time, over a lowered limit), and
the per-pass bound on deletions."""

from __future__ import annotations

import operator

from vcyclectl.config import Machinetype
from vcyclectl.core import rules
from vcyclectl.core.model import Action, ActionKind, MachineState
from vcyclectl.core.planner.base import (_BROKEN, _DRAINED, _ENDED, _OVER_LIMIT, MSG_FAILED,
                                         MSG_HEARTBEAT, MSG_OVER_LIMIT, MSG_REQUESTED,
                                         MSG_WALLCLOCK, _Seen)
from vcyclectl.core.planner.observe import _Observing


class _Deciding(_Observing):
    def decide_machines(self) -> None:
        """Each machine on the cloud: ended, broken (wallclock, stuck starting, heartbeat),
        drained past its shutdown time, or kept. Hot (once per machine per pass: 100,000
        machines in 0.4 s is the aim), so the per-machinetype limits are looked up once and
        the tests a healthy machine passes are inline; making a deletion is the rare path."""
        machinetypes = self.space.machinetypes
        limits = {name: (mt, mt.max_wallclock_seconds, mt.fizzle_seconds,
                         mt.heartbeat_limit if mt.heartbeat_checked else None)
                  for name, mt in machinetypes.items()}
        untrusted = self.obs.clock_untrusted
        drains = self.obs.drains
        drained = bool(drains.space or drains.machinetypes or drains.machines)
        now = self.now
        create_timeout = self.space.create_timeout_seconds
        deleting, stopped, failed = MachineState.DELETING, MachineState.STOPPED, \
            MachineState.FAILED
        starting, running = MachineState.STARTING, MachineState.RUNNING
        for s in self.seen:
            m = s.machine
            if m is None or m.state is deleting:
                continue
            if s.record is not None and s.record.deleting_at is not None:
                self.delete(s, _ENDED, "deletion asked in an earlier pass, still on the cloud",
                            s.record.message)
                continue
            state = s.state
            if state is stopped or state is failed:  # MachineState.is_ended, inline
                self.end_stopped(s, machinetypes.get(s.machinetype))
                continue
            limit = limits.get(s.machinetype)
            if limit is None:
                continue  # handled by limits: an unconfigured machinetype has a limit of 0
            if untrusted:
                self.notes.append(f"time-based deletions withheld: {untrusted}")
                continue
            mt, wallclock, fizzle, heartbeat_limit = limit
            if drained and self.end_drained(s, mt):
                continue
            age = now - s.created_at
            if age > wallclock:
                self.delete(s, _BROKEN, f"ran {age:.0f}s, over max_wallclock_seconds "
                            f"({wallclock:g})", MSG_WALLCLOCK)
            elif state is starting:
                if age > create_timeout:
                    self.aborts[s.machinetype] = max(self.aborts.get(s.machinetype, 0.0), now)
                    self.delete(s, _BROKEN, f"still starting after {age:.0f}s "
                                f"(create_timeout_seconds {create_timeout:g})", MSG_FAILED,
                                abort=True)
            elif state is running and heartbeat_limit is not None and \
                    s.started_at is not None and now - s.started_at > fizzle:
                beat = s.report.heartbeat_at if s.report is not None else None
                if m.heartbeat_at is not None and (beat is None or m.heartbeat_at > beat):
                    beat = m.heartbeat_at  # the latest of what it reported and what is listed
                if beat is None or now - beat > heartbeat_limit:
                    ago = "never" if beat is None else f"{now - beat:.0f}s ago"
                    self.delete(s, _BROKEN, f"heartbeat {ago}, limit {heartbeat_limit:g}s",
                                MSG_HEARTBEAT)

    def end_drained(self, s: _Seen, mt: Machinetype) -> bool:
        """Delete a drained machine past its shutdown time; True if it was."""
        mark = self.obs.drains.for_machine(s.name, s.machinetype, mt.drain_grace_seconds)
        if mark is None or self.now < mark.shutdown_at(mt.drain_grace_seconds):
            return False
        self.delete(s, _DRAINED, f"drained ({mark.reason or 'no reason given'}) and past "
                    f"its shutdown time", MSG_REQUESTED)
        return True

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
            abort, why = rules.end_is_abort(
                message=message, lived=lived, fizzle_seconds=mt.fizzle_seconds if mt else 0.0,
                failed=False, ended_by=m.ended_by, gone=False)
            abort = abort and mt is not None
            if why:
                reason += (f" [{m.state_reason}]" if m.state_reason else "") + f": {why}"
        if abort:
            end = m.stopped_at or self.now
            self.aborts[s.machinetype] = max(self.aborts.get(s.machinetype, 0.0), end)
        self.delete(s, _ENDED, reason, message, abort=abort)

    def delete(self, s: _Seen, priority: int, reason: str, message: str | None, *,
               abort: bool = False, preempted: bool = False) -> None:
        """Mark `s` leaving; its action is made in `bound_deletes` if the bound keeps it (a
        fleet that lost its heartbeats can have tens of thousands cut)."""
        s.leaving = True
        self.leaving_changes += 1
        self.deletes.append((priority, -s.created_at, s.name, s, reason, message, abort,
                             preempted))

    # -- limits -------------------------------------------------------------------------
    def enforce_limits(self) -> None:
        """Delete newest first where a limit was lowered below what exists now."""
        used_by_type: dict[str, int] = {}
        for s in self.seen:
            if s.pending_delete or not s.leaving:  # `_Seen.counts`, inline: hot
                used_by_type[s.machinetype] = used_by_type.get(s.machinetype, 0) + s.processors
        trimmed = False
        for name, used in sorted(used_by_type.items()):
            mt = self.space.machinetypes.get(name)
            limit = 0 if mt is None else mt.processors_limit
            if limit is None or used <= limit:
                continue
            why = ("machinetype no longer configured" if mt is None
                   else f"over lowered processors_limit of {name} ({used} > {limit})")
            self._trim([s for s in self.seen if s.machinetype == name and s.counts],
                       used - limit, why)
            trimmed = True
        used = sum(s.processors for s in self.seen if s.counts) if trimmed \
            else sum(used_by_type.values())
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
        self.deletes.sort(key=_DELETE_ORDER)
        limit = min(self.space.max_deletes_per_pass, self.max_deletes)
        kept = self.deletes[:limit]
        cut = self.deletes[limit:]
        if cut:
            self.notes.append(f"deletions capped {len(self.deletes)} → {limit} by "
                              f"max_deletes_per_pass; the rest wait for the next pass")
            for d in cut:
                d[3].leaving = False  # still there: counts against limits until deleted
            self.leaving_changes += 1
        self.actions.extend(
            Action(ActionKind.DELETE, s.name, s.machinetype, reason, processors=s.processors,
                   machine=s.machine, message=message, abort=abort, preempted=preempted)
            for _, _, _, s, reason, message, abort, preempted in kept)


#: Which deletions a bound keeps: ended before broken before drained before over a limit
#: (`_ENDED`...), then the oldest, then by name.
_DELETE_ORDER = operator.itemgetter(0, 1, 2)
