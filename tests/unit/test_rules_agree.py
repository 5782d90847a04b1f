"""`status` and the planner cannot disagree on backoff or on which machines count against
limits (issue 13): for random fleets as a pass leaves them (records, the listing that
matches them, recorded aborts), the processors `status` shows per machinetype are those the
planner counted, and its backoff is the planner's once this pass's aborts are recorded."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from vcyclectl.core import rules
from vcyclectl.config import Machinetype, Space
from vcyclectl.core.model import CloudMachine, Flavor, MachineState
from vcyclectl.core.names import random_names
from vcyclectl.core.planner import Observation, plan
from vcyclectl.core.records import Drains, MachineRecord
from vcyclectl.monitoring.fleet import machinetype_status

NOW = 5_000_000.0
RECORDED_STATES = [MachineState.CREATING, MachineState.STARTING, MachineState.RUNNING,
                   MachineState.STOPPED, MachineState.FAILED, MachineState.UNKNOWN]


@st.composite
def fleets(draw: st.DrawFn) -> tuple[Space, Observation, dict[str, MachineRecord]]:
    mts = {name: Machinetype(name=name, target_share=draw(st.sampled_from([0.0, 1.0, 3.0])),
                             backoff_seconds=draw(st.sampled_from([0.0, 600.0, 3600.0])),
                             fizzle_seconds=draw(st.sampled_from([0.0, 300.0])),
                             hs06_per_processor=draw(st.sampled_from([1.0, 10.0])))
           for name in draw(st.lists(st.sampled_from("abc"), min_size=1, unique=True))}
    space = Space(name="s", processors_limit=draw(st.integers(0, 60)), machinetypes=mts,
                  create_timeout_seconds=900.0, intent_timeout_seconds=120.0)
    records: dict[str, MachineRecord] = {}
    listing: list[CloudMachine] = []
    for i in range(draw(st.integers(0, 25))):
        name = f"m{i}"
        mt = draw(st.sampled_from(sorted(mts)))
        state = draw(st.sampled_from(RECORDED_STATES))
        age = draw(st.floats(0, 7200))
        deleting = draw(st.booleans()) if state is not MachineState.CREATING else False
        record = MachineRecord(
            name=name, space="s", machinetype=mt, state=state,
            processors=draw(st.integers(1, 4)), created_at=NOW - age,
            cloud_id=draw(st.sampled_from([None, f"id{i}"])) if state is
            MachineState.CREATING else f"id{i}",
            started_at=NOW - age + 1 if state is not MachineState.CREATING else None,
            deleting_at=NOW - 5 if deleting else None)
        records[name] = record
        if state is not MachineState.CREATING:  # as the last pass saw it on the cloud
            listing.append(CloudMachine(
                id=f"id{i}", name=name, space="s", machinetype=mt,
                state=MachineState.DELETING if deleting else state,
                processors=record.processors, created_at=record.created_at,
                started_at=record.started_at, heartbeat_at=NOW,
                stopped_at=NOW - 1 if state.is_ended else None))
    backoff = {mt: NOW - draw(st.floats(0, 7200)) for mt in mts if draw(st.booleans())}
    obs = Observation(machines=listing, records=records, backoff=backoff,
                      flavors=(Flavor("f", 1), Flavor("f4", 4)))
    return space, obs, records


@settings(deadline=None)
@given(fleets())
def test_status_counts_what_the_planner_counts(fleet: tuple[Space, Observation,
                                                              dict[str, MachineRecord]]) -> None:
    space, obs, records = fleet
    p = plan(space, obs, NOW, random_names("s", random.Random(0)))
    rows = {r["machinetype"]: r for r in machinetype_status(space, records, obs.backoff,
                                                            Drains(), NOW)}
    for name in space.machinetypes:
        assert rows[name]["processors"] == p.counted.get(name, 0), name


@settings(deadline=None)
@given(fleets())
def test_status_backoff_is_the_planners_once_the_pass_is_recorded(
        fleet: tuple[Space, Observation, dict[str, MachineRecord]]) -> None:
    space, obs, records = fleet
    p = plan(space, obs, NOW, random_names("s", random.Random(0)))
    recorded = rules.merged_aborts(obs.backoff, p.aborts)  # what the pass writes
    rows = {r["machinetype"]: r for r in machinetype_status(space, records, recorded,
                                                            Drains(), NOW)}
    for name, mt in space.machinetypes.items():
        in_backoff = NOW < p.backoff_until[name]
        assert (rows[name]["backoff_until"] is not None) == in_backoff, name
        assert rules.in_backoff(mt, NOW, recorded) == in_backoff
        if in_backoff:  # and the planner creates none of it
            assert not [a for a in p.creates if a.machinetype == name]
