"""Target shares over time: the planner driving a simulated fleet whose machines end on their
own settles at the configured ratio under a full limit."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from vcyclectl.config import Machinetype, Space
from vcyclectl.core.model import CloudMachine, Flavor, MachineState
from vcyclectl.core.names import random_names
from vcyclectl.core.planner import Observation, plan
from vcyclectl.core.records import MachineRecord


def simulate(space: Space, steps: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    names = random_names("s", rng)
    now = 0.0
    machines: dict[str, CloudMachine] = {}
    ends: dict[str, float] = {}
    records: dict[str, MachineRecord] = {}
    for _ in range(steps):
        now += 10.0
        for name, m in list(machines.items()):
            if m.state is MachineState.RUNNING and now >= ends[name]:
                machines[name] = replace(m, state=MachineState.STOPPED, stopped_at=ends[name],
                                         shutdown_message="200 Intended work completed ok")
        obs = Observation(machines=list(machines.values()), records=records,
                          flavors=(Flavor("one", 1),))
        p = plan(space, obs, now, names)
        for a in p.deletes:
            machines.pop(a.name, None)
            records.pop(a.name, None)
        for a in p.creates:
            machines[a.name] = CloudMachine(
                id=a.name, name=a.name, space="s", machinetype=a.machinetype,
                state=MachineState.RUNNING, processors=a.processors, created_at=now,
                started_at=now, heartbeat_at=now)
            records[a.name] = MachineRecord(name=a.name, space="s", machinetype=a.machinetype,
                                            state=MachineState.RUNNING, processors=a.processors,
                                            created_at=now, cloud_id=a.name, started_at=now)
            ends[a.name] = now + rng.uniform(50, 400)
    counts: dict[str, int] = {}
    for m in machines.values():
        if m.state is MachineState.RUNNING:
            counts[m.machinetype] = counts.get(m.machinetype, 0) + m.processors
    return counts


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shares_one_to_three_settle_under_a_full_limit(seed: int) -> None:
    mts = {"low": Machinetype(name="low", target_share=1, hs06_per_processor=10.0),
           "high": Machinetype(name="high", target_share=3, hs06_per_processor=10.0)}
    space = Space(name="s", processors_limit=40, machinetypes=mts)
    counts = simulate(space, steps=300, seed=seed)
    assert sum(counts.values()) >= 39
    assert abs(counts["low"] - 10) <= 1 and abs(counts["high"] - 30) <= 1, counts


def test_hs06_weighting_over_time() -> None:
    """Equal shares but one machinetype's processors are twice as powerful: half the
    processors go to it, so the hs06 delivered is equal."""
    mts = {"fast": Machinetype(name="fast", target_share=1, hs06_per_processor=20.0),
           "slow": Machinetype(name="slow", target_share=1, hs06_per_processor=10.0)}
    counts = simulate(Space(name="s", processors_limit=30, machinetypes=mts), 300, seed=4)
    assert abs(counts["fast"] - 10) <= 1 and abs(counts["slow"] - 20) <= 1, counts
