"""Step 1: merge the cloud's listing with the records: adopt tagged machines with no
record, update records the cloud has moved on, forget records whose machine is gone
(noting an end the VM chose as an abort for backoff)."""

from __future__ import annotations

from vcyclectl.core import rules
from vcyclectl.core.model import Action, ActionKind, CloudMachine, MachineState
from vcyclectl.core.planner.base import _PlannerBase, _Seen
from vcyclectl.core.records import MachineRecord


class _Observing(_PlannerBase):
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
            if rules.intent_in_flight(record, self.space, self.now):
                self.seen.append(self._seen(None, record))  # counts until it shows or expires
            else:
                self.forget(record, None, "no longer on the cloud")

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
                abort, how = rules.end_is_abort(
                    message=message, lived=lived, fizzle_seconds=mt.fizzle_seconds,
                    failed=False,
                    ended_by=m.ended_by if m else None, gone=True)
                if how:
                    why += (f" [{m.state_reason}]" if m and m.state_reason else "") + f": {how}"
                if abort:
                    self.aborts[record.machinetype] = max(self.aborts.get(record.machinetype, 0),
                                                          end)
        self.actions.append(Action(ActionKind.FORGET, record.name, record.machinetype,
                                   ("pre-empted by the cloud" if preempted else why),
                                   processors=record.processors, machine=m, message=message,
                                   abort=abort, preempted=preempted))
