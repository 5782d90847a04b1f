"""`simulate` speed on the IRIS case (examples/iris.yaml, iris-demand.yaml) at the default
10-minute step: simulated months per CPU second (issue 17 aims at >= 2). Prints the figure
for a given span, and the CSV's digest so a speed-up can be checked to change nothing."""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vcyclectl import config  # noqa: E402
from vcyclectl.policy.simulate import Simulation, load_demand  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--step", type=float, default=600.0)
    args = parser.parse_args()
    cfg = config.load(EXAMPLES / "iris.yaml")
    budget = cfg.budgets["commercial"]
    end = budget.start_at + args.days * 86400
    demand = load_demand(EXAMPLES / "iris-demand.yaml", budget.start_at, budget.end_at)
    report = Simulation(cfg, demand, budget.start_at, end, step_seconds=args.step,
                        check_latency=True, tail=False).run()
    with tempfile.TemporaryDirectory() as tmp:
        report.write_csv(Path(tmp) / "s.csv")
        digest = hashlib.sha256((Path(tmp) / "s.csv").read_bytes()).hexdigest()[:16]
    print(f"simulate IRIS, {args.days:g} days at {args.step:g} s steps: {report.passes} passes "
          f"in {report.cpu_seconds:.2f} CPU s = {report.months_per_cpu_second:.2f} simulated "
          f"months per CPU second (aim >= 2); csv sha256 {digest}")


if __name__ == "__main__":
    main()
