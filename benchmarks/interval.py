"""One pass per space per interval, whoever gets there first (issue 15): 4 hosts on a
simulated one-minute cron over 8 local spaces, with `min_pass_interval_seconds` 0 (every
host passes every space it can lock: the behaviour before) and then at 3/4 of the tick
(45 s of a 60 s cron, the default). Time is scaled down: one "minute" is TICK seconds, so
the whole run takes about 2 x MINUTES x TICK seconds.

Printed per mode: passes per space per minute (passes that listed the cloud; skipped ones
cost nothing), cloud API calls per space per minute and per pass (list, flavors, create,
delete, retries included, as each process counted them), skipped passes by reason, and the
ratio after / before. Usage: .venv/bin/python benchmarks/interval.py [TICK] [MINUTES]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cronhosts import Host, space_config  # noqa: E402

HOSTS = 4
SPACES = [f"s{i}.local" for i in range(8)]


def run(mode: str, interval: float, tick: float, minutes: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "c.yaml"
        cfg.write_text(space_config(Path(tmp) / "state", SPACES, interval=interval,
                                    max_pass=max(tick, 5.0), list_seconds=0.05))
        hosts = [Host(f"host{h}", cfg, tick) for h in range(HOSTS)]
        first = time.time() + 1.0
        for host in hosts:
            host.start(first)
        time.sleep(1.0 + minutes * tick)
        for host in hosts:
            host.stop()
        results = [r for host in hosts for r in host.results]
    passes = [r for r in results if r["outcome"] in ("done", "failed")]
    calls = sum(sum(r.get("calls", {}).values()) for r in results)
    skipped = Counter(r.get("skipped") or "?" for r in results if r["outcome"] == "skipped")
    space_minutes = len(SPACES) * minutes
    figures = {"passes": len(passes) / space_minutes, "calls": calls / space_minutes,
               "calls_per_pass": calls / max(1, len(passes)),
               "failed": sum(r["outcome"] == "failed" for r in results)}
    print(f"{mode:>28}: {figures['passes']:5.2f} passes/space/minute, "
          f"{figures['calls']:6.2f} API calls/space/minute ({figures['calls_per_pass']:.2f} "
          f"per pass), skipped {dict(skipped)}, failed {figures['failed']}, "
          f"{len(results)} space visits by {HOSTS} hosts")
    return figures


def main() -> None:
    tick = float(sys.argv[1]) if len(sys.argv) > 1 else 8.0
    minutes = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    print(f"{HOSTS} hosts, cron every {tick:g}s (= one minute), {len(SPACES)} local spaces, "
          f"{minutes} minutes per mode")
    before = run("min_pass_interval_seconds 0", 0.0, tick, minutes)
    after = run(f"min_pass_interval_seconds {0.75 * tick:g}", 0.75 * tick, tick, minutes)
    print(f"after / before: passes {after['passes'] / before['passes']:.2f}, API calls "
          f"{after['calls'] / before['calls']:.2f} (aim: about 1 pass and the calls of one "
          "pass per space per minute)")


if __name__ == "__main__":
    main()
