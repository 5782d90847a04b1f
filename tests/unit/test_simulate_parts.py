"""The simulator's shortcuts equal what they stand for: the what-ifs' stopped view equals
`dataclasses.replace`, and the policy cached across a pass equals `space_policy` made
afresh when only the ended machines' spend moved."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from vcyclectl import config
from vcyclectl.core.model import CloudMachine, MachineState
from vcyclectl.core.provisioning import space_policy
from vcyclectl.policy.simulate import Demand, Simulation, as_stopped

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_a_stopped_view_is_the_view_replaced() -> None:
    view = CloudMachine(id="i", name="m", space="s", machinetype="a",
                        state=MachineState.RUNNING, processors=16, created_at=1.0,
                        started_at=2.0, flavor="f", zone="local", spot=True, heartbeat_at=3.0,
                        raw={"k": 1})
    stopped = as_stopped(view, 50.0)
    assert stopped == replace(view, state=MachineState.STOPPED, stopped_at=50.0,
                              shutdown_message="200 Intended work completed ok")
    assert stopped.raw == {"k": 1} and view.state is MachineState.RUNNING


def test_the_policy_after_machines_end_is_the_one_made_afresh() -> None:
    cfg = config.load(EXAMPLES / "iris.yaml")
    budget = cfg.budgets["commercial"]
    simulation = Simulation(cfg, Demand(always=frozenset({"lhcb"})), budget.start_at,
                            budget.start_at + 86400)
    sim = simulation.spaces[0]
    now = budget.start_at + 3600
    first = simulation.policy_for(sim, now)
    sim.ledger.add({"created_at": budget.start_at, "finished_at": now, "price_per_hour": 0.64,
                    "processors": 16, "machinetype": "ska"})
    second = simulation.policy_for(sim, now)
    assert second != first
    assert second == space_policy(cfg, sim.space, now, finished_spend=0.64)
