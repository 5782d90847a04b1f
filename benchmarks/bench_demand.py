"""Demand signals' figure: the IRIS case (examples/iris.yaml, iris-demand.yaml, four months
of 10-minute passes with the real planner), run twice with the same seed: probing for work
as today, and with demand readings from the profile's queue model (docs/demand.md).

Prints, per run: money spent on machines that ended "300 no work" (and how many), total
spend, how long priority work waited for its machines (ramp-up: from the start of each
demand window until the community ran 90% of the most it ran in it; mean and max), the
longest wait on backfill not asked to make room, and CPU seconds; then the ratios.

Run: `.venv/bin/python benchmarks/bench_demand.py [--days N]` (a few minutes).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vcyclectl import config  # noqa: E402
from vcyclectl.policy.demand import load_demand  # noqa: E402
from vcyclectl.policy.demandsim import compare  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=float, default=None, help="default: the whole budget")
    parser.add_argument("--step", type=float, default=600.0)
    args = parser.parse_args()
    cfg = config.load(REPO / "examples" / "iris.yaml")
    budget = cfg.budgets["commercial"]
    start = budget.start_at
    end = budget.end_at if args.days is None else start + args.days * 86400
    demand = load_demand(REPO / "examples" / "iris-demand.yaml", budget.start_at,
                         budget.end_at)
    figures = compare(cfg, demand, start, end, step_seconds=args.step)
    for mode, f in figures.items():
        waits = ", ".join(f"{c} mean {w['mean'] / 3600:.2f} h max {w['max'] / 3600:.2f} h "
                          f"({w['windows']} windows)" for c, w in f["ramp_up_seconds"].items())
        print(f"{mode:8s} no-work spend GBP {f['no_work_spend']:9.2f} on "
              f"{f['no_work_machines']} machines; spent GBP {f['spent']:.2f}; "
              f"cpu {f['cpu_seconds']:.1f} s")
        print(f"{'':8s} ramp-up: {waits}")
        print(f"{'':8s} max wait on backfill: {f['max_wait_on_backfill_seconds']}")
    p, s = figures["probing"], figures["signals"]
    mean = {c: (s["ramp_up_seconds"][c]["mean"] / w["mean"] if w["mean"] else None)
            for c, w in p["ramp_up_seconds"].items()}
    print(f"ratio signals/probing: no-work spend "
          f"{s['no_work_spend'] / p['no_work_spend'] if p['no_work_spend'] else 0:.3f}, "
          f"ramp-up mean " + ", ".join(f"{c} {r:.2f}" for c, r in mean.items() if r is not None))
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
