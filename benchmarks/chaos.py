"""The chaos campaign (docs/chaos.md): random scenarios against several `vcyclectl
reconcile` hosts sharing one state directory, with an outside monitor checking the
invariants; prints one line per run and the campaign's totals.

    python benchmarks/chaos.py                  # 1,000 runs, fresh seeds
    python benchmarks/chaos.py --runs 50        # fewer
    python benchmarks/chaos.py --seed 1234      # replay one run (the seed a failure printed)
    python benchmarks/chaos.py --minutes 40     # as many runs as fit

Exit status 1 if any invariant was violated (each violation is a bug: find it, pin a test).
Run it as root for the full-filesystem scenarios (a small tmpfs is mounted per run).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.chaos.campaign import RunResult, run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, action="append",
                        help="run exactly this seed (repeatable)")
    parser.add_argument("--minutes", type=float, help="stop starting runs after this long")
    parser.add_argument("--keep", action="store_true", help="keep every run's directory")
    parser.add_argument("--workdir", type=Path, help="where run directories go (default /tmp)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (default 1)")
    args = parser.parse_args()
    fresh = random.SystemRandom()
    seeds = args.seed or [fresh.randrange(10**9) for _ in range(args.runs)]
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else None
    results: list[RunResult] = []
    started = time.monotonic()
    for r in runs(seeds, args, deadline):
        results.append(r)
        status = "ok" if not r.violations else f"VIOLATED ({len(r.violations)})"
        print(f"run {len(results)}: {r.scenario}: {r.kills} kills, {r.freezes} freezes, "
              f"{r.torn_lines} torn, {r.passes} passes, {r.seconds:.1f}s: {status}", flush=True)
        for v in r.violations:
            print(f"    seed {r.seed}: {v}  (kept in {r.workdir})", flush=True)
    print_totals(results, time.monotonic() - started)
    return 1 if any(r.violations for r in results) else 0


def runs(seeds: list[int], args: argparse.Namespace,
         deadline: float | None) -> Iterator[RunResult]:
    """The runs, `--jobs` at a time (each in its own process), in the order they end."""
    if args.jobs <= 1:
        for seed in seeds:
            if deadline is not None and time.monotonic() > deadline:
                return
            yield run(seed, args.workdir, args.keep)
        return
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    pending = list(reversed(seeds))
    with ProcessPoolExecutor(args.jobs) as pool:
        active: set[Future[RunResult]] = set()
        while pending or active:
            while pending and len(active) < args.jobs and (
                    deadline is None or time.monotonic() < deadline):
                active.add(pool.submit(run, pending.pop(), args.workdir, args.keep))
            if not active:
                return
            done, active = wait(active, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()


def print_totals(results: list[RunResult], seconds: float) -> None:
    def total(name: str) -> int:
        return sum(int(getattr(r, name)) for r in results)

    violated = [r.seed for r in results if r.violations]
    print(f"\nchaos campaign: {len(results)} runs in {seconds / 60:.1f} min; "
          f"{total('processes')} host processes, {total('kills')} kills (SIGKILL), "
          f"{total('freezes')} freezes (SIGSTOP/SIGCONT), {total('torn_lines')} torn journal "
          f"lines, {total('full_fs')} runs on a full state filesystem; "
          f"{total('passes')} passes done during the storms and {total('clean_passes')} after, "
          f"{total('skipped')} skipped (locked), "
          f"{total('failed_passes')} failed cleanly; {total('samples')} monitor samples; "
          f"invariant violations: {sum(len(r.violations) for r in results)}"
          + (f" (seeds {violated})" if violated else ""))


if __name__ == "__main__":
    sys.exit(main())
