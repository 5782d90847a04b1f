"""The planner's merge asks inline whether a listed machine moved on from its record, and
calls `update` only then (a call per machine was a tenth of merge at 100,000): the inline
test must never miss a change `update` would make, nor invent one (issue 17)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vcyclectl.config import Machinetype, Space
from vcyclectl.core.model import ActionKind, CloudMachine, MachineState
from vcyclectl.core.names import random_names
from vcyclectl.core.planner import Observation, _Planner, plan
from vcyclectl.core.records import MachineRecord

NOW = 2_000_000_000.0
SPACE = Space(name="s", processors_limit=100, machinetypes={"mt": Machinetype(name="mt")})
STATES = st.sampled_from([s for s in MachineState if s is not MachineState.GONE])


@st.composite
def pairs(draw: st.DrawFn) -> tuple[MachineRecord, CloudMachine]:
    machine = CloudMachine(
        id=draw(st.sampled_from(["", "i-1", "i-2"])), name="m-1", space="s", machinetype="mt",
        state=draw(STATES), processors=draw(st.sampled_from([0, 1, 2])), created_at=NOW - 50,
        started_at=draw(st.sampled_from([None, 0.0, NOW - 40])),
        zone=draw(st.sampled_from([None, "", "z1", "z2"])))
    record = MachineRecord(
        name="m-1", space="s", machinetype="mt", state=draw(STATES),
        processors=draw(st.sampled_from([1, 2])), created_at=NOW - 50,
        cloud_id=draw(st.sampled_from([None, "i-1", "i-2"])),
        started_at=draw(st.sampled_from([None, 0.0, NOW - 40])),
        zone=draw(st.sampled_from([None, "z1", "z2"])),
        deleting_at=draw(st.sampled_from([None, NOW - 10])))
    return record, machine


@settings(max_examples=500, deadline=None)
@given(pairs())
def test_merge_updates_exactly_when_update_would(pair: tuple[MachineRecord, CloudMachine]
                                                  ) -> None:
    record, machine = pair
    obs = Observation(machines=[machine], records={record.name: record})
    direct = _Planner(SPACE, obs, NOW, random_names("s"), None)
    direct.update(record, machine)  # the rule itself, asked directly
    merged = _Planner(SPACE, obs, NOW, random_names("s"), None)
    merged.merge()
    assert [a for a in merged.actions if a.kind is ActionKind.UPDATE] == direct.actions
    updates = [a for a in plan(SPACE, obs, NOW, random_names("s")).actions
               if a.kind is ActionKind.UPDATE]
    assert [a.changes for a in updates] == [a.changes for a in direct.actions]
