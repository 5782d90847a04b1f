"""Failover, measured (issue 15): 3 simulated cron hosts over 4 local spaces (each listing
takes LIST seconds, so a pass is long enough to be caught in the middle); one host's
process is SIGKILLed mid-pass, then another's is SIGSTOPped mid-pass and resumed with
SIGCONT once past its deadline. Printed: the time until another process finished a pass
over the space that was in hand, against the aims: within one cron tick (+ a pass) after
the dead process's lock is gone (a kill drops it at once on a local or NFSv4 filesystem,
after the lease or session time when a whole host vanishes: docs/operations.md); for a
frozen process, which holds its lock while frozen, within one tick (+ a pass) of its
resuming, since its watchdog ends it at once (or its deadline check does, and a pass cut
short by its deadline does not count for min_pass_interval_seconds).

Time is scaled down: cron every TICK seconds, min_pass_interval_seconds 3/4 of it,
max_pass_seconds MAX_PASS. Usage: .venv/bin/python benchmarks/failover.py [ROUNDS]
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cronhosts import Host, space_config  # noqa: E402

from vcyclectl.state.lock import holder_path, is_locked, read_holder  # noqa: E402

TICK = 6.0
INTERVAL = 0.75 * TICK
MAX_PASS = 8.0
GRACE = 2.0  # reconcile/deadline.grace_seconds(MAX_PASS)
LIST = 1.0
SPACES = [f"f{i}.local" for i in range(4)]


def last_pass(state: Path, space: str) -> dict[str, Any]:
    try:
        data = json.loads((state / "spaces" / space / "last_pass.json").read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def catch_mid_pass(state: Path, host: Host, timeout: float = 60) -> tuple[int, str]:
    """Wait until one of `host`'s processes holds a space's lock: (pid, space)."""
    end = time.time() + timeout
    while time.time() < end:
        pids = {p.pid for p in host.running()}
        for space in SPACES:
            folder = state / "spaces" / space
            holder = read_holder(holder_path(folder))
            if holder and holder.pid in pids and is_locked(folder) and \
                    time.time() - holder.since < LIST / 2:
                return holder.pid, space
        time.sleep(0.02)
    raise RuntimeError(f"{host.name} never caught mid-pass")


def taken_over(state: Path, space: str, after: float, not_pid: int,
               timeout: float = 120) -> float:
    """When another process first finished a pass over `space` after `after`."""
    end = time.time() + timeout
    while time.time() < end:
        last = last_pass(state, space)
        if last.get("finished_at", 0) > after and last.get("pid") != not_pid and \
                last.get("outcome") == "done":
            return float(last["finished_at"])
        time.sleep(0.05)
    raise RuntimeError(f"{space} not taken over within {timeout}s")


def one_round(number: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        cfg = Path(tmp) / "c.yaml"
        cfg.write_text(space_config(state, SPACES, interval=INTERVAL, max_pass=MAX_PASS,
                                    list_seconds=LIST))
        hosts = [Host(f"host{h}-{number}", cfg, TICK) for h in range(3)]
        first = time.time() + 0.5
        for host in hosts:
            host.start(first)
        try:
            time.sleep(2 * TICK)  # every space passed a few times
            victim = hosts[0]
            pid, space = catch_mid_pass(state, victim)
            victim.dead = True  # the whole host is gone: its cron starts nothing more
            killed_at = time.time()
            os.kill(pid, signal.SIGKILL)
            kill_s = taken_over(state, space, killed_at, pid) - killed_at

            frozen_host = hosts[1]
            pid, space = catch_mid_pass(state, frozen_host)
            frozen_at = time.time()
            os.kill(pid, signal.SIGSTOP)
            time.sleep(MAX_PASS + GRACE + 0.5)
            resumed_at = time.time()
            os.kill(pid, signal.SIGCONT)
            freeze_s = taken_over(state, space, frozen_at, pid) - frozen_at
            after_resume = freeze_s - (resumed_at - frozen_at)
        finally:
            for host in hosts:
                host.stop()
    print(f"round {number}: killed mid-pass -> taken over after {kill_s:5.1f}s; frozen "
          f"mid-pass -> taken over {freeze_s:5.1f}s after the freeze "
          f"({after_resume:4.1f}s after SIGCONT)")
    return kill_s, freeze_s, after_resume


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print(f"3 hosts, cron every {TICK:g}s, {len(SPACES)} local spaces, listing {LIST:g}s, "
          f"min_pass_interval_seconds {INTERVAL:g}, max_pass_seconds {MAX_PASS:g} "
          f"(+ {GRACE:g}s watchdog grace)")
    figures = [one_round(n) for n in range(rounds)]
    kills, freezes, resumes = zip(*figures)
    a_pass = len(SPACES) * LIST  # a process may visit every other space first
    frozen_for = MAX_PASS + GRACE + 0.5
    print(f"kill:   median {statistics.median(kills):.1f}s, worst {max(kills):.1f}s "
          f"(aim: <= one tick + a pass = {TICK + a_pass:g}s)")
    print(f"freeze: median {statistics.median(freezes):.1f}s, worst {max(freezes):.1f}s "
          f"from SIGSTOP, of which {frozen_for:g}s frozen holding the lock (past "
          f"max_pass_seconds + grace); worst {max(resumes):.1f}s from SIGCONT (aim: <= one "
          f"tick + a pass = {TICK + a_pass:g}s; from SIGSTOP <= max_pass_seconds + grace + "
          f"one tick + a pass = {MAX_PASS + GRACE + TICK + a_pass:g}s)")

if __name__ == "__main__":
    main()
