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
        """Pair each listed machine with its record. Hot (once per machine per pass; the aim
        is 100,000 machines planned in 0.4 s), so each `_Seen` is built inline."""
        on_cloud = self._on_cloud()
        records = self.obs.records
        reports = self.obs.reports
        hs06 = {name: mt.hs06_per_processor for name, mt in self.space.machinetypes.items()}
        seen = self.seen
        now = self.now
        gone, deleting = MachineState.GONE, MachineState.DELETING
        get_record, get_report, get_hs06 = records.get, reports.get, hs06.get
        add = seen.append
        for name, m in on_cloud.items():
            record = get_record(name)
            state = m.state
            if state is gone:
                if record is not None:
                    self.forget(record, m, "the cloud reports it gone")
                continue
            if record is None:
                record = self.adopt(m)
            elif (record.state is not state and record.deleting_at is None) or \
                    (m.id and record.cloud_id != m.id) or \
                    (m.started_at and not record.started_at) or \
                    (m.processors and m.processors != record.processors) or \
                    (m.zone and m.zone != record.zone):
                # What `update` compares, asked inline: most machines have not moved on,
                # and a call per machine is a tenth of merge at 100,000 (a property test
                # holds this test and `update` together).
                self.update(record, m)
            add(_Seen(
                record.name, record.machinetype, state,
                m.processors or record.processors,
                record.created_at or m.created_at or now,
                m.started_at or record.started_at, m, record, get_report(record.name),
                get_hs06(record.machinetype, 1.0),
                record.deleting_at is not None or state is deleting))
        for record in [r for name, r in records.items() if name not in on_cloud]:
            if rules.intent_in_flight(record, self.space, self.now):
                seen.append(self._unlisted(record))  # counts until it shows or expires
            else:
                self.forget(record, None, "no longer on the cloud")

    def _on_cloud(self) -> dict[str, CloudMachine]:
        """The listing by name, this space's machines only; a name listed twice (Nova's
        lingering DELETED copy) is the present one."""
        machines = self.obs.machines
        on_cloud = {m.name: m for m in machines}
        if len(on_cloud) == len(machines) and {m.space for m in machines} <= {self.space.name}:
            return on_cloud  # the common case, at C speed: no duplicate, no other space
        on_cloud = {}
        for m in machines:
            if m.space != self.space.name:
                continue
            current = on_cloud.get(m.name)
            if current is None or current.state is MachineState.GONE:
                on_cloud[m.name] = m
        return on_cloud

    def _unlisted(self, record: MachineRecord) -> _Seen:
        """A record whose machine the listing does not show (yet): an intent in flight."""
        mt = self.space.machinetypes.get(record.machinetype)
        return _Seen(
            name=record.name, machinetype=record.machinetype, state=MachineState.CREATING,
            processors=record.processors, created_at=record.created_at or self.now,
            started_at=record.started_at, machine=None, record=record,
            report=self.obs.reports.get(record.name),
            hs06_per_processor=mt.hs06_per_processor if mt else 1.0,
            pending_delete=record.deleting_at is not None)

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
