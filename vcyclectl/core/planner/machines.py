"""Step 2: per machine, whether it ends (stopped, failed, past its wallclock, no fresh
heartbeat, stuck starting, drained and past its shutdown time, over a lowered limit), and
the per-pass bound on deletions."""

from __future__ import annotations

from vcyclectl.config import Machinetype
from vcyclectl.core import rules
from vcyclectl.core.model import Action, ActionKind, MachineState
from vcyclectl.core.planner.base import (_BROKEN, _DRAINED, _ENDED, _OVER_LIMIT, MSG_FAILED,
                                         MSG_HEARTBEAT, MSG_OVER_LIMIT, MSG_REQUESTED,
                                         MSG_WALLCLOCK, _Seen)
from vcyclectl.core.planner.observe import _Observing


class _Deciding(_Observing):
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

    def end_if_unhealthy(self, s: _Seen, mt: Machinetype) -> None:
        if self.obs.clock_untrusted:
            self.notes.append(f"time-based deletions withheld: {self.obs.clock_untrusted}")
            return
        age = self.now - s.created_at
        drains = self.obs.drains
        mark = (drains.for_machine(s.name, s.machinetype, mt.drain_grace_seconds)
                if drains.space or drains.machinetypes or drains.machines else None)
        if mark is not None:
            shutdown_time = mark.shutdown_at(mt.drain_grace_seconds)
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
