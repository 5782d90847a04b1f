"""Planning time for 10,000 and 100,000 machines in 50 machinetypes: the planner is pure and
should grow linearly (issue 17's aims: 100,000 in <= 0.4 s, growth 10k -> 100k <= 11x).
Prints the median and the fastest of several runs of `planner.plan` (CPU time; on a
shared machine the fastest is the steadier figure).

It also prints the growth of a floor: the least any per-machine planner does (index the
machines by name, look every record up, read two fields of every machine), timed the same
way on the same objects. Past the CPU's caches (100,000 machines with their records are
tens of MB; 10,000 fit in a few MB of L2), every walk over the machines costs more per
machine, so that floor itself grows more than 10x; the planner's growth is read against it.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vcyclectl.config import Machinetype, Space  # noqa: E402
from vcyclectl.core import collector  # noqa: E402
from vcyclectl.core.model import CloudMachine, Flavor, MachineState  # noqa: E402
from vcyclectl.core.names import random_names  # noqa: E402
from vcyclectl.core.planner import Observation, plan  # noqa: E402
from vcyclectl.core.records import MachineRecord, Report  # noqa: E402

NOW = 2_000_000_000.0
TYPES = 50


def scenario(machines: int, seed: int = 1) -> tuple[Space, Observation]:
    """A busy space: mostly running machines, some starting, some stopped, some to adopt,
    some records whose machines are gone, heartbeats to check, a few over wallclock."""
    rng = random.Random(seed)
    mts = {f"mt{i:02d}": Machinetype(name=f"mt{i:02d}", target_share=rng.choice([1, 2, 3]),
                                     hs06_per_processor=rng.choice([10.0, 12.5]),
                                     heartbeat_seconds=600, fizzle_seconds=300,
                                     max_wallclock_seconds=86400)
           for i in range(TYPES)}
    space = Space(name="bench", processors_limit=machines + machines // 20,
                  max_starting_processors=machines // 10, max_creates_per_pass=500,
                  max_deletes_per_pass=500, machinetypes=mts)
    cloud: list[CloudMachine] = []
    records: dict[str, MachineRecord] = {}
    reports: dict[str, Report] = {}
    names = list(mts)
    for i in range(machines):
        mt = names[i % TYPES]
        roll = rng.random()
        state = (MachineState.STARTING if roll < 0.05 else MachineState.STOPPED if roll < 0.07
                 else MachineState.RUNNING)
        created = NOW - rng.uniform(10, 90000)
        m = CloudMachine(id=f"id{i}", name=f"vcyclectl-bench-{mt}-{i:010d}", space="bench",
                         machinetype=mt, state=state, processors=1, created_at=created,
                         started_at=created + 60, stopped_at=NOW - 5 if roll < 0.07 else None)
        cloud.append(m)
        if rng.random() > 0.001:
            records[m.name] = MachineRecord(name=m.name, space="bench", machinetype=mt,
                                            state=state, processors=1, created_at=created,
                                            cloud_id=m.id, started_at=m.started_at)
        reports[m.name] = Report(heartbeat_at=NOW - rng.uniform(0, 700))
    for i in range(machines // 1000):
        records[f"vcyclectl-bench-gone-{i}"] = MachineRecord(
            name=f"vcyclectl-bench-gone-{i}", space="bench", machinetype=names[0],
            state=MachineState.RUNNING, processors=1, created_at=NOW - 1000)
    return space, Observation(machines=cloud, records=records, reports=reports,
                              flavors=(Flavor("one", 1),))


def timings(machines: int, runs: int) -> tuple[float, float, int]:
    """(median, fastest) CPU seconds of `runs` plans, and the plan's number of actions."""
    space, obs = scenario(machines)
    times = []
    actions = 0
    for r in range(runs):
        names = random_names("bench", random.Random(r))
        started = time.process_time()
        p = plan(space, obs, NOW, names)
        times.append(time.process_time() - started)
        actions = len(p.actions)
    return statistics.median(times), min(times), actions


def floor(obs: Observation) -> float:
    """CPU seconds of the least a pass over these machines does (see the module docstring)."""
    started = time.process_time()
    by_name = {m.name: m for m in obs.machines}
    found = 0
    for name in obs.records:
        if by_name.get(name) is not None:
            found += 1
    for m in obs.machines:
        if m.created_at > 0 and m.processors:
            found += 1
    return time.process_time() - started


def floor_timings(machines: int, runs: int) -> float:
    """The fastest of `runs` floors, with the collector off as `plan` has it."""
    _, obs = scenario(machines)
    with collector.paused():
        return min(floor(obs) for _ in range(runs))


def main() -> None:
    small, small_min, small_actions = timings(10_000, 9)
    large, large_min, large_actions = timings(100_000, 7)
    print(f"planner: 10,000 machines / {TYPES} machinetypes: {small * 1000:.1f} ms median, "
          f"{small_min * 1000:.1f} ms fastest ({small_actions} actions)")
    print(f"planner: 100,000 machines / {TYPES} machinetypes: {large * 1000:.1f} ms median, "
          f"{large_min * 1000:.1f} ms fastest ({large_actions} actions; aim <= 400 ms)")
    print(f"growth for 10x the machines: {large / small:.1f}x median, "
          f"{large_min / small_min:.1f}x fastest (linear = 10x; aim <= 11x)")
    small_floor, large_floor = floor_timings(10_000, 9), floor_timings(100_000, 7)
    print(f"floor (index by name, look up records, walk machines): {small_floor * 1000:.1f} ms "
          f"and {large_floor * 1000:.1f} ms fastest, growth {large_floor / small_floor:.1f}x; "
          f"planner growth / floor growth: "
          f"{(large_min / small_min) / (large_floor / small_floor):.2f}")


if __name__ == "__main__":
    main()
