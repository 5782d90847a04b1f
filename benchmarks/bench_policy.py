"""The provisioning policy's figures.

Prints:
1. simulated months per CPU second: the IRIS case (examples/iris.yaml, four months of
   10-minute passes with the real planner), with and without the what-if plans that
   measure how long priority work waits on backfill;
2. planner time per pass with 50 communities and 100,000 machines (one space; 45 priority
   communities in 5 priority levels, 5 backfill communities; a budget paced and checked;
   backfill making room), next to the same pass without a policy, median of several runs;
   and the time to compute the policy itself (`policy.space_policy`).

Run: `.venv/bin/python benchmarks/bench_policy.py` (about a minute).
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vcyclectl import config  # noqa: E402
from vcyclectl.config import Budget, Community, Config, Machinetype, Space  # noqa: E402
from vcyclectl.core.model import CloudMachine, Flavor, MachineState  # noqa: E402
from vcyclectl.core.names import random_names  # noqa: E402
from vcyclectl.core.planner import Observation, plan  # noqa: E402
from vcyclectl.core.provisioning import space_policy  # noqa: E402
from vcyclectl.core.records import MachineRecord  # noqa: E402
from vcyclectl.policy.simulate import Simulation, load_demand  # noqa: E402

COMMUNITIES = 50
MACHINES = 100_000
NOW = config.parse_when("2027-01-15")


def months_per_cpu_second(check_latency: bool) -> tuple[float, float, int]:
    cfg = config.load(REPO / "examples" / "iris.yaml")
    budget = cfg.budgets["commercial"]
    demand = load_demand(REPO / "examples" / "iris-demand.yaml", budget.start_at, budget.end_at)
    report = Simulation(cfg, demand, budget.start_at, budget.end_at, step_seconds=600.0,
                        check_latency=check_latency).run()
    return report.months_per_cpu_second, report.cpu_seconds, report.passes


def fleet_scenario(seed: int = 1) -> tuple[Config, Space, Observation]:
    """50 communities (one machinetype each), 100,000 one-processor machines, a budget."""
    rng = random.Random(seed)
    names = [f"c{i:02d}" for i in range(COMMUNITIES)]
    mts = {n: Machinetype(name=n, flavors=("od",) if i < 45 else ("spot",),
                          processors_limit=4000 if i < 45 else None,
                          fizzle_seconds=600.0, backoff_seconds=600.0,
                          max_wallclock_seconds=86400.0, drain_grace_seconds=3600.0)
           for i, n in enumerate(names)}
    communities = {n: Community(n, (n,), priority=i % 5, target_share=rng.choice([1.0, 2.0]),
                                backfill=i >= 45) for i, n in enumerate(names)}
    space = Space(name="bench", processors_limit=MACHINES + 2000, max_creates_per_pass=500,
                  max_deletes_per_pass=500, machinetypes=mts)
    budget = Budget(amount=10_000_000.0, start="2027-01-01", end="2027-03-31",
                    spaces=("bench",), name="big")
    cfg = Config(state_dir=Path("/nonexistent"), spaces={"bench": space},
                 communities=communities, budgets={"big": budget})
    machines: list[CloudMachine] = []
    records: dict[str, MachineRecord] = {}
    for i in range(MACHINES):
        mt = names[i % COMMUNITIES] if rng.random() < 0.5 else names[45 + i % 5]
        created = NOW - rng.uniform(10, 80_000)
        roll = rng.random()
        state = (MachineState.STARTING if roll < 0.03 else MachineState.STOPPED if roll < 0.05
                 else MachineState.RUNNING)
        flavor = "od" if mt < "c45" else "spot"
        m = CloudMachine(id=f"id{i}", name=f"vcyclectl-bench-{mt}-{i:010d}", space="bench",
                         machinetype=mt, state=state, processors=1, created_at=created,
                         started_at=created + 60, heartbeat_at=NOW, flavor=flavor,
                         stopped_at=NOW - 5 if state is MachineState.STOPPED else None)
        machines.append(m)
        records[m.name] = MachineRecord(name=m.name, space="bench", machinetype=mt, state=state,
                                        processors=1, created_at=created, cloud_id=m.id,
                                        started_at=m.started_at, flavor=flavor,
                                        price_per_hour=0.04 if flavor == "od" else 0.015)
    obs = Observation(machines=machines, records=records,
                      flavors=(Flavor("od", 1, price_per_hour=0.04),
                               Flavor("spot", 1, price_per_hour=0.015, spot=True)))
    return cfg, space, obs


def planner_seconds(runs: int = 5) -> tuple[float, float, float, int]:
    cfg, space, obs = fleet_scenario()
    started = time.perf_counter()
    policy = space_policy(cfg, space, NOW, finished_spend=2_000_000.0)
    policy_seconds = time.perf_counter() - started
    with_policy = replace(obs, policy=policy)
    timed: dict[str, list[float]] = {"plain": [], "policy": []}
    actions = 0
    for r in range(runs):
        for label, observation in (("plain", obs), ("policy", with_policy)):
            names = random_names("bench", random.Random(r))
            started = time.perf_counter()
            p = plan(space, observation, NOW, names)
            timed[label].append(time.perf_counter() - started)
            if label == "policy":
                actions = len(p.actions)
    return (statistics.median(timed["policy"]), statistics.median(timed["plain"]),
            policy_seconds, actions)


def main() -> None:
    fast, fast_cpu, passes = months_per_cpu_second(check_latency=False)
    checked, checked_cpu, _ = months_per_cpu_second(check_latency=True)
    print(f"simulate: IRIS case, {passes} passes of 10 minutes (4 months): "
          f"{fast:.2f} simulated months per CPU second ({fast_cpu:.1f} s); "
          f"{checked:.2f} with the wait measurement ({checked_cpu:.1f} s)")
    with_policy, plain, policy_seconds, actions = planner_seconds()
    print(f"planner: {MACHINES:,} machines / {COMMUNITIES} communities with budget and "
          f"backfill: {with_policy * 1000:.0f} ms per pass ({actions} actions); "
          f"without a policy: {plain * 1000:.0f} ms; computing the policy: "
          f"{policy_seconds * 1000:.2f} ms")


if __name__ == "__main__":
    main()
