"""`simulate` speed on the IRIS case (examples/iris.yaml, iris-demand.yaml) at the default
10-minute step: simulated months per CPU second (issue 17 aims at >= 2). Prints the figure
for a given span, and the digests of the CSV and of the summary, so a speed-up can be
checked to change nothing (run it before and after; the digests must match).

    .venv/bin/python benchmarks/bench_simulate.py                  # IRIS, 30 days
    .venv/bin/python benchmarks/bench_simulate.py --days 120 --step 1800 --signals
    .venv/bin/python benchmarks/bench_simulate.py --config examples/quickstart.yaml --no-demand
    .venv/bin/python benchmarks/bench_simulate.py --split   # CPU in plan() and outside it

`--split` times every `plan()` the simulation asks for (passes, re-plans after deletions,
what-ifs) and prints that beside the CPU spent outside it (the simulator's own bookkeeping);
the timing itself adds a little to both (two clock reads per plan).
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import vcyclectl.policy.simulate as simulate_module  # noqa: E402
from vcyclectl import config  # noqa: E402
from vcyclectl.policy.simulate import (Simulation, demand_from_campaigns,  # noqa: E402
                                       load_demand)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--step", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", type=Path, default=EXAMPLES / "iris.yaml")
    parser.add_argument("--demand", type=Path, default=EXAMPLES / "iris-demand.yaml")
    parser.add_argument("--no-demand", action="store_true",
                        help="demand from the config's campaigns (what `simulate` does "
                             "without --demand)")
    parser.add_argument("--signals", action="store_true", help="simulate --signals")
    parser.add_argument("--no-latency", action="store_true",
                        help="without the backfill-wait what-ifs (check_latency)")
    parser.add_argument("--tail", action="store_true",
                        help="run on until budgeted machines end (what `simulate` does)")
    parser.add_argument("--every-pass", action="store_true",
                        help="plan every step (no skipping of quiet passes): the reference")
    parser.add_argument("--split", action="store_true",
                        help="also print the CPU spent in plan() and outside it")
    args = parser.parse_args()
    in_plan = [0.0, 0]
    if args.split:
        names = vars(simulate_module)  # the planner as `simulate` calls it
        plan = names["plan"]

        def timed_plan(*a: object, **k: object) -> object:
            t = time.process_time()
            try:
                return plan(*a, **k)
            finally:
                in_plan[0] += time.process_time() - t
                in_plan[1] += 1

        names["plan"] = timed_plan
    cfg = config.load(args.config)
    budgets = list(cfg.budgets.values())
    start = budgets[0].start_at if budgets else 1796083200.0  # 2026-12-01
    end = start + args.days * 86400
    demand = (demand_from_campaigns(cfg) if args.no_demand else
              load_demand(args.demand, start, budgets[0].end_at if budgets else end))
    extra: dict[str, Any] = {}
    if "skip_quiet" in inspect.signature(Simulation).parameters:
        extra["skip_quiet"] = not args.every_pass
    simulation = Simulation(cfg, demand, start, end, step_seconds=args.step, seed=args.seed,
                            check_latency=not args.no_latency, tail=args.tail,
                            signals=args.signals, **extra)
    report = simulation.run()
    with tempfile.TemporaryDirectory() as tmp:
        report.write_csv(Path(tmp) / "s.csv")
        digest = hashlib.sha256((Path(tmp) / "s.csv").read_bytes()).hexdigest()[:16]
    summary = dict(report.summary(), no_work_spend=simulation.no_work_spend,
                   no_work_machines=simulation.no_work_machines)
    for volatile in ("cpu_seconds", "months_per_cpu_second"):
        summary.pop(volatile)
    summary_digest = hashlib.sha256(json.dumps(summary, sort_keys=True).encode()).hexdigest()
    print(f"simulate {args.config.stem}, {args.days:g} days at {args.step:g} s steps: "
          f"{report.passes} passes ({report.planned} planned) in {report.cpu_seconds:.2f} CPU s = "
          f"{report.months_per_cpu_second:.2f} simulated months per CPU second (aim >= 2); "
          f"csv sha256 {digest}; summary sha256 {summary_digest[:16]}")
    if args.split:
        print(f"  plan(): {in_plan[0]:.2f} CPU s in {in_plan[1]} calls "
              f"({1000 * in_plan[0] / max(in_plan[1], 1):.2f} ms each); outside plan(): "
              f"{report.cpu_seconds - in_plan[0]:.2f} CPU s")


if __name__ == "__main__":
    main()
