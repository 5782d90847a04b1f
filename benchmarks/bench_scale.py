"""Scale (issue 15): 100 `local` spaces with 100,000 machines in all, 4 host processes
running `vcyclectl reconcile` on a compressed one-minute cycle (cron's tick, every
`--cycle` seconds here), and how one pass grows with the machines in its space.

Prints, from the same run:
- per cycle: spaces reconciled (at least one pass that finished `done`), passes done and
  skipped (locked by another host, or passed under min_pass_interval_seconds ago), and
  whether every space was reconciled;
- pass time per space (median and 95th percentile, as `reconcile` reports it) and CPU
  per space pass (the hosts' CPU, start-up included, divided by the passes they did);
- state directory bytes per machine (`spaces/`, not the simulated cloud);
- a no-op pass over one space of 1,000, 10,000 and 100,000 machines (in-process, median
  of 3): wall and CPU per machine, and the growth ratio per tenfold (10 is linear).

The fleet is written in bulk (as bench_reconcile.py does); machines were created over the
last `--job` seconds and run about that long, so every cycle some end and are replaced.

    .venv/bin/python benchmarks/bench_scale.py                # 100 spaces, 3 cycles of 30 s
    .venv/bin/python benchmarks/bench_scale.py --cycle 60 --cycles 5
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vcyclectl import config as config_module  # noqa: E402
from vcyclectl.core.model import MachineState  # noqa: E402
from vcyclectl.core.records import MachineRecord  # noqa: E402
from vcyclectl.reconcile import reconcile_space  # noqa: E402
from vcyclectl.state.files import append_lines, ensure_dir  # noqa: E402
from vcyclectl.state.store import StateDir  # noqa: E402

DONE = re.compile(r"^(\S+): created \d+, deleted \d+, adopted \d+, forgot \d+ in ([0-9.]+)s",
                  re.M)
SKIPPED = re.compile(r"^(\S+): skipped", re.M)


def config_text(spaces: int, per_space: int, job: float) -> str:
    lines = ["state_dir: state", "spaces:"]
    for i in range(spaces):
        lines += [f"  s{i:03d}.local:", "    cloud: local", f"    processors_limit: {per_space}",
                  "    max_creates_per_pass: 1000",
                  f"    local: {{processors: {per_space * 2}, boot_seconds: 1, job_seconds: "
                  f"{job}, no_work_probability: 0, failure_probability: 0}}",
                  "    machinetypes:",
                  "      a: {target_share: 1, max_wallclock_seconds: 100000}",
                  "      b: {target_share: 1, max_wallclock_seconds: 100000}"]
    return "\n".join(lines) + "\n"


def populate(root: Path, spaces: int, per_space: int, job: float) -> Path:
    """Write the fleet straight into the simulated cloud and the records, as passes would."""
    cfg_path = root / "scale.yaml"
    cfg_path.write_text(config_text(spaces, per_space, job))
    cfg = config_module.load(cfg_path)
    state_id = StateDir(cfg.state_dir).open(create=True)
    rng = random.Random(1)
    now = time.time()
    for space in cfg.spaces:
        cloud_lines, record_lines = [], []
        for i in range(per_space):
            mt = "ab"[i % 2]
            created = now - rng.uniform(0, job)  # a steady state: some end every cycle
            name = f"vcyclectl-{space.replace('.', '-')}-{mt}-{uuid.uuid4().hex[:10]}"
            entry = {"id": uuid.uuid4().hex, "name": name, "space": space, "machinetype": mt,
                     "processors": 1, "flavor": "local-1", "created_at": created,
                     "state_id": state_id}
            cloud_lines.append({"put": entry})
            record_lines.append({"put": MachineRecord(
                name=name, space=space, machinetype=mt, state=MachineState.RUNNING,
                processors=1, created_at=created, flavor="local-1", cloud_id=entry["id"],
                started_at=created + 1, zone="local").to_record()})
        append_lines(ensure_dir(cfg.state_dir / "local" / space) / "machines.jsonl",
                     cloud_lines, sync=False)
        store = StateDir(cfg.state_dir).space(space)
        store.ensure()
        append_lines(store.records_file, record_lines, sync=False)
    return cfg_path


def vcyclectl() -> list[str]:
    script = Path(sys.executable).parent / "vcyclectl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "vcyclectl"]


class Cycle:
    """What the hosts did in one cycle."""

    def __init__(self) -> None:
        self.done: dict[str, list[float]] = {}
        self.skipped = 0
        self.cpu = 0.0
        self.lock = threading.Lock()

    def host(self, cfg: Path, delay: float) -> None:
        time.sleep(delay)  # cron starts the hosts within a second of each other
        proc = subprocess.Popen([*vcyclectl(), "--config", str(cfg), "reconcile"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        err = proc.stderr.read() if proc.stderr else ""
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
        with self.lock:
            self.cpu += usage.ru_utime + usage.ru_stime
            for space, seconds in DONE.findall(err):
                self.done.setdefault(space, []).append(float(seconds))
            self.skipped += len(SKIPPED.findall(err))


def run_hosts(cfg: Path, spaces: int, hosts: int, cycle: float, cycles: int) -> None:
    all_passes: list[float] = []
    cpu = 0.0
    every = True
    for n in range(1, cycles + 1):
        started = time.monotonic()
        c = Cycle()
        threads = [threading.Thread(target=c.host, args=(cfg, random.uniform(0, 1)))
                   for _ in range(hosts)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.monotonic() - started
        passes = [s for v in c.done.values() for s in v]
        all_passes += passes
        cpu += c.cpu
        ok = len(c.done) == spaces and took <= cycle
        every &= ok
        print(f"cycle {n}: {len(c.done)}/{spaces} spaces reconciled, {len(passes)} passes "
              f"done, {c.skipped} skipped (locked elsewhere, or passed under "
              f"min_pass_interval_seconds ago), hosts finished in {took:.1f}s "
              f"of the {cycle:g}s cycle, host CPU {c.cpu:.1f}s: "
              f"{'every space' if ok else 'NOT every space'} within the cycle", flush=True)
        time.sleep(max(0.0, cycle - took))
    passes_done = len(all_passes)
    print(f"every space reconciled every cycle: {'yes' if every else 'NO'}")
    print(f"pass time per space: median {statistics.median(all_passes) * 1000:.0f} ms, p95 "
          f"{statistics.quantiles(all_passes, n=20)[18] * 1000:.0f} ms "
          f"({passes_done} passes); CPU per space pass (host start-up included): "
          f"{cpu / passes_done * 1000:.0f} ms")


def state_bytes(state: Path) -> int:
    return sum(p.stat().st_size for p in (state / "spaces").rglob("*") if p.is_file())


def growth(sizes: list[int]) -> None:
    """A no-op pass over one space of each size, in-process (median of 3)."""
    previous: tuple[int, float, float] | None = None
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            cfg_path = populate(Path(tmp), 1, n, job=10**7)
            cfg = config_module.load(cfg_path)
            space = cfg.spaces["s000.local"]
            state_id = StateDir(cfg.state_dir).open(create=False)
            reconcile_space(cfg, space, state_id)  # the first pass settles the records
            walls, cpus = [], []
            for _ in range(3):
                started, cpu = time.perf_counter(), time.process_time()
                result = reconcile_space(cfg, space, state_id)
                walls.append(time.perf_counter() - started)
                cpus.append(time.process_time() - cpu)
                assert result.outcome == "done", result.summary()
            wall, cpu = statistics.median(walls), statistics.median(cpus)
            ratio = "" if previous is None else (
                f"; x{wall / previous[1]:.1f} wall, x{cpu / previous[2]:.1f} CPU for "
                f"x{n / previous[0]:.0f} machines")
            print(f"one space of {n:>7,} machines: pass {wall * 1000:7.0f} ms wall, "
                  f"{cpu * 1000:7.0f} ms CPU ({cpu / n * 1e6:.1f} us CPU per machine){ratio}",
                  flush=True)
            previous = (n, wall, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", type=int, default=100)
    parser.add_argument("--machines", type=int, default=100_000, help="in all the spaces")
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--cycle", type=float, default=30.0,
                        help="seconds standing for cron's minute (default 30)")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--job", type=float, default=1800.0,
                        help="machines run about this long (seconds)")
    parser.add_argument("--growth", default="1000,10000,100000",
                        help="machines per space for the growth figure ('' to skip)")
    args = parser.parse_args()
    per_space = args.machines // args.spaces
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        cfg = populate(Path(tmp), args.spaces, per_space, args.job)
        print(f"{args.spaces} spaces x {per_space:,} machines = {args.spaces * per_space:,} "
              f"written in {time.monotonic() - started:.1f}s; {args.hosts} hosts, a "
              f"{args.cycle:g}s cycle standing for cron's minute", flush=True)
        run_hosts(cfg, args.spaces, args.hosts, args.cycle, args.cycles)
        machines = sum(len(StateDir(Path(tmp) / "state").space(f"s{i:03d}.local").records())
                       for i in range(args.spaces))
        size = state_bytes(Path(tmp) / "state")
        print(f"state directory (spaces/): {size / 1e6:.1f} MB for {machines:,} machines = "
              f"{size / machines:.0f} bytes per machine (records, events, finished journals)")
    if args.growth:
        growth([int(n) for n in args.growth.split(",")])


if __name__ == "__main__":
    main()
