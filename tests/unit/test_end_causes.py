"""Who ended a machine decides whether it is an abort (issue 15): only an end the VM chose
(its own shutdown, with a 300-699 message or within `fizzle_seconds`) or a failed start
puts its machinetype into backoff; a machine stopped or deleted through the cloud's API
by someone else is replaced at once, and spot pre-emption keeps its own reason."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from vcyclectl.config import Machinetype, Space
from vcyclectl.core import rules
from vcyclectl.core.model import Action, ActionKind, CloudMachine, Flavor, MachineState, Plan
from vcyclectl.core.names import random_names
from vcyclectl.core.planner import Observation, plan
from vcyclectl.core.records import MachineRecord, Report

NOW = 1_000_000.0
MT = Machinetype(name="a", fizzle_seconds=600, backoff_seconds=600)
SPACE = Space(name="s", processors_limit=1, machinetypes={"a": MT})


def young(state: MachineState, **kw: object) -> CloudMachine:
    """A machine that started 60 s ago and ended 30 s ago: well within fizzle_seconds."""
    return CloudMachine(id="i-1", name="x", space="s", machinetype="a", state=state,
                        processors=1, created_at=NOW - 70, started_at=NOW - 60,
                        stopped_at=NOW - 30, **kw)  # type: ignore[arg-type]


def record_of(m: CloudMachine) -> MachineRecord:
    return MachineRecord(name=m.name, space="s", machinetype="a", state=MachineState.RUNNING,
                         processors=1, created_at=m.created_at or NOW, cloud_id=m.id,
                         started_at=m.started_at)


def planned(machines: list[CloudMachine], records: dict[str, MachineRecord],
            reports: dict[str, Report] | None = None) -> Plan:
    return plan(SPACE, Observation(machines=machines, records=records, reports=reports or {},
                                   flavors=(Flavor("small", 1),)),
                NOW, random_names("s", random.Random(1)))


def ended(p: Plan) -> Action:
    [action] = [a for a in p.actions if a.kind in (ActionKind.DELETE, ActionKind.FORGET)]
    return action


@pytest.mark.parametrize("state", [MachineState.STOPPED, MachineState.GONE])
def test_ended_through_the_api_is_replaced_without_backoff(state: MachineState) -> None:
    m = young(state, ended_by=rules.END_API, state_reason="Client.UserInitiatedShutdown")
    p = planned([m], {"x": record_of(m)})
    action = ended(p)
    assert not action.abort and not p.aborts
    assert "someone else through the cloud's API" in action.reason
    assert "Client.UserInitiatedShutdown" in action.reason and "without backoff" in action.reason
    if state is MachineState.GONE:  # already gone: its place is free in this very pass
        assert len(p.creates) == 1


@pytest.mark.parametrize("state", [MachineState.STOPPED, MachineState.GONE])
def test_the_vms_own_quick_end_is_an_abort(state: MachineState) -> None:
    m = young(state, ended_by=rules.END_VM, state_reason="Client.InstanceInitiatedShutdown")
    p = planned([m], {"x": record_of(m)})
    assert ended(p).abort and p.aborts == {"a": NOW - 30} and not p.creates


def test_a_failed_start_is_an_abort() -> None:
    m = young(MachineState.GONE, ended_by=rules.END_START,
              state_reason="Server.InsufficientInstanceCapacity")
    p = planned([m], {"x": record_of(m)})
    assert ended(p).abort and "failed to start" in ended(p).reason and not p.creates


def test_provider_retirement_is_not_an_abort() -> None:
    m = young(MachineState.STOPPED, ended_by=rules.END_CLOUD, state_reason="Server.ScheduledStop")
    p = planned([m], {"x": record_of(m)})
    assert not ended(p).abort and "provider" in ended(p).reason and not p.aborts


def test_vanished_from_the_listing_is_someone_elses_deletion() -> None:
    m = young(MachineState.RUNNING)
    p = planned([], {"x": record_of(m)})
    action = ended(p)
    assert action.kind is ActionKind.FORGET and not action.abort and len(p.creates) == 1
    assert "deleted by someone else" in action.reason


def test_an_abort_message_the_vm_wrote_still_counts_when_someone_else_deleted_it() -> None:
    m = young(MachineState.RUNNING)
    reports = {"x": Report(shutdown_message="300 No more work available from task queue")}
    p = planned([], {"x": record_of(m)}, reports)
    assert ended(p).abort and "after an abort message" in ended(p).reason


def test_spot_preemption_keeps_its_own_reason() -> None:
    m = young(MachineState.GONE, preempted=True, spot=True, ended_by=rules.END_API,
              state_reason="Server.SpotInstanceTermination")
    action = ended(planned([m], {"x": record_of(m)}))
    assert action.preempted and not action.abort and action.reason == "pre-empted by the cloud"


def test_unknown_cause_stop_keeps_the_fizzle_rule() -> None:
    """A stop the cloud does not explain (OpenStack SHUTOFF, the local cloud's stop) is the
    VM's own, as before: within fizzle_seconds and without a message it is an abort."""
    m = young(MachineState.STOPPED)
    assert ended(planned([m], {"x": record_of(m)})).abort
    done = replace(m, shutdown_message="200 Intended work completed ok")
    assert not ended(planned([done], {"x": record_of(done)})).abort


@pytest.mark.parametrize("ended_by,gone,message,lived,abort", [
    (None, False, None, 10.0, True), (None, False, None, 1000.0, False),
    (None, True, None, 10.0, False), (rules.END_VM, True, None, 10.0, True),
    (rules.END_VM, True, "200 ok", 10.0, False), (rules.END_API, False, None, 10.0, False),
    (rules.END_API, False, "500 site problem", 10.0, True), (rules.END_START, True, None, None, True),
    (rules.END_CLOUD, True, None, 10.0, False), (None, False, "600 grid", 5000.0, True),
])
def test_end_is_abort_table(ended_by: str | None, gone: bool, message: str | None,
                            lived: float | None, abort: bool) -> None:
    assert rules.end_is_abort(message=message, lived=lived, fizzle_seconds=600, failed=False,
                              ended_by=ended_by, gone=gone)[0] is abort
