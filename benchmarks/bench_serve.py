"""Load benchmark for `vcyclectl serve` on loopback: N machines heartbeating.

Makes a state directory with N machine records (default 10,000) in one space, each with
the heartbeat file an earlier heartbeat left (the steady state; `--first-heartbeats` for
none), starts `vcyclectl serve` as a real process on a free 127.0.0.1 port, and drives
heartbeats from client processes at a fixed offered rate (open loop: each request has a
scheduled send time and its latency is measured from that time, so a stalled server is
not hidden by a client that waits). Every machine PUTs `joboutputs/heartbeat` with its own
token, in turn. Prints, per run, sustained requests/s, p50/p90/p99/max latency and serve's
CPU time per request (user + system of all its processes: what a change saves, even on a
machine busy with other work, where latency is set by CPU contention), then the spread of
p99 over the runs; exits 1 if the aim (default 1,000 req/s with a median p99 under 50 ms)
is missed or any request fails. The first line names the filesystem the state directory
is on: the default is the system temp dir, which may be tmpfs on some machines.

For before/after figures in one run, `--baseline DIR` also runs `serve` from an older
copy of the package (`git archive main vcyclectl | tar -x -C DIR`) and `--compare-root
/dev/shm` this checkout with the state directory on tmpfs, interleaved round by round
(`--rounds N`), so that both see the same background load. `--compare-granian` also runs
this checkout's WSGI app under granian (a Rust HTTP server, if installed; not a
dependency of vcyclectl) with the same workers and threads: what gunicorn's own
per-request work costs, for a decision on the server (see benchmarks/README.md).

Bounded in count and time: at most --requests requests, at most --seconds of load per run.

    .venv/bin/python benchmarks/bench_serve.py [--machines 10000] [--rate 1000]
        [--seconds 10] [--requests 12000] [--clients 2] [--connections 16]
        [--state-root DIR] [--baseline DIR] [--compare-root DIR] [--rounds N]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SPACE = "bench.local"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_state(root: Path, machines: int, *, heartbeated: bool = True
               ) -> tuple[Path, list[str]]:
    """A state directory with `machines` running records, written as one journal append,
    and (`heartbeated`, the steady state) each machine's joboutputs folder with the
    heartbeat file an earlier heartbeat left: without it every request of a 10-second run
    over 10,000 machines would be a machine's first, which makes a folder and a file."""
    from vcyclectl.core.model import MachineState
    from vcyclectl.core.records import MachineRecord
    from vcyclectl.state.store import StateDir

    state = root / "state"
    StateDir(state).open(create=True)
    store = StateDir(state).space(SPACE)
    store.ensure()
    now = time.time()
    names = [f"vcyclectl-bench-local-work-{i:010d}" for i in range(machines)]
    store.put_records(MachineRecord(name=n, space=SPACE, machinetype="work",
                                    state=MachineState.RUNNING, processors=1, created_at=now,
                                    started_at=now) for n in names)
    if heartbeated:
        for n in names:
            folder = store.machine_outputs_dir(n)
            folder.mkdir(mode=0o700, parents=True)
            (folder / "heartbeat").write_bytes(b"%.3f\n" % now)
            os.chmod(folder / "heartbeat", 0o600)
    config = root / "bench.yaml"
    config.write_text(f"""\
state_dir: {state}
spaces:
  {SPACE}:
    cloud: local
    processors_limit: {machines}
    machinetypes:
      work: {{heartbeat_file: heartbeat, heartbeat_seconds: 600}}
""")
    return config, names


def client(port: int, jobs: list[tuple[str, str]], rate: float, seconds: float,
           connections: int, out: "multiprocessing.queues.Queue[tuple[list[float], int]]"
           ) -> None:
    """Open-loop load from one process: `connections` keep-alive connections share the
    process's schedule (request i is due at start + i / rate)."""
    start = time.perf_counter() + 0.2
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    next_index = [0]

    def worker() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine: list[float] = []
        failed = 0
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= len(jobs):
                break
            due = start + i / rate
            if due - start > seconds:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            path, token = jobs[i]
            try:
                conn.request("PUT", path, body=b"%.3f\n" % time.time(),
                             headers={"Authorization": f"Bearer {token}"})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 204:
                    failed += 1
            except (OSError, http.client.HTTPException):
                failed += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            mine.append(time.perf_counter() - due)
        conn.close()
        with lock:
            latencies.extend(mine)
            errors += failed

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((latencies, errors))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


@dataclass(frozen=True)
class Run:
    """One load run's figures."""

    label: str
    requests: int
    seconds: float
    errors: int
    written: int
    p50: float
    p90: float
    p99: float
    worst: float
    cpu_ms: float  # serve's CPU time (user + system, all its processes) per request
    load: str  # the machine's 1-minute load average when the run began: the background

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


#: Starts `vcyclectl` from the package copy in the folder given as its first argument,
#: ahead of this checkout (which is on sys.path as the working directory and through the
#: editable install): `--baseline` runs an older copy.
_FROM_FOLDER = ("import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); "
                "sys.argv[0] = 'vcyclectl'; "
                "runpy.run_module('vcyclectl', run_name='__main__', alter_sys=True)")


def serve_command(code: str | None) -> list[str]:
    """How to start `vcyclectl`: this checkout, or the package copy in folder `code`."""
    if code is None:
        return [sys.executable, "-m", "vcyclectl"]
    return [sys.executable, "-c", _FROM_FOLDER, code]


def granian_app() -> object:
    """The feedback app for `--compare-granian` (granian's `--factory`), from the
    configuration the run wrote; its journal is read now, as a `serve` worker does."""
    from vcyclectl.config.load import load
    from vcyclectl.feedback.app import FeedbackApp

    app = FeedbackApp(load(Path(os.environ["BENCH_SERVE_CONFIG"])))
    app.warm()
    return app


def server_command(args: argparse.Namespace, label: str, code: str | None, config: Path,
                   port: int) -> tuple[list[str], dict[str, str] | None]:
    """The server process of one variant, and its environment (None: this one's)."""
    if label == "granian":
        env = dict(os.environ, BENCH_SERVE_CONFIG=str(config),
                   PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), os.getcwd()]))
        return [sys.executable, "-m", "granian", "--interface", "wsgi", "--factory",
                "bench_serve:granian_app", "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(args.workers), "--blocking-threads", str(args.threads),
                "--no-ws", "--log-level", "warning"], env
    return [*serve_command(code), "--config", str(config), "serve", "--listen",
            f"127.0.0.1:{port}", "--workers", str(args.workers), "--threads",
            str(args.threads), *([] if args.access_log else ["--no-access-log"])], None


def run_once(args: argparse.Namespace, label: str, code: str | None,
             state_root: str | None) -> Run:
    """A fresh state directory, one `serve`, one open-loop load; then the figures."""
    from vcyclectl.vm.tokens import machine_token

    load = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="bench-serve-", dir=state_root) as tmp:
        root = Path(tmp)
        config, names = make_state(root, args.machines, heartbeated=not args.first_heartbeats)
        state = root / "state"
        total = min(args.requests, int(args.rate * args.seconds))
        jobs = [(f"/machines/{SPACE}/{n}/joboutputs/heartbeat", machine_token(state, n))
                for n in (names[i % len(names)] for i in range(total))]
        port = free_port()
        log = open(root / "serve.log", "wb")
        command, env = server_command(args, label, code, config, port)
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_until_up(port, server)
            cpu_before = process_tree_cpu(server.pid)
            queue: multiprocessing.queues.Queue[tuple[list[float], int]] = \
                multiprocessing.Queue()
            per_client = args.rate / args.clients
            procs = [multiprocessing.Process(
                target=client, args=(port, jobs[c::args.clients], per_client, args.seconds,
                                     max(1, args.connections // args.clients), queue))
                for c in range(args.clients)]
            began = time.perf_counter()
            for p in procs:
                p.start()
            latencies: list[float] = []
            errors = 0
            for _ in procs:
                got, failed = queue.get(timeout=args.seconds + 120)
                latencies.extend(got)
                errors += failed
            for p in procs:
                p.join(timeout=10)
            elapsed = time.perf_counter() - began - 0.2
            cpu = process_tree_cpu(server.pid) - cpu_before
        finally:
            server.terminate()
            server.wait(timeout=20)
            log.close()
        written = sum(1 for n in names if (state / "spaces" / SPACE / "joboutputs" / n /
                                           "heartbeat").exists())
    p50, p90, p99 = (percentile(latencies, p) * 1000 for p in (50, 90, 99))
    return Run(label, len(latencies), elapsed, errors, written, p50, p90, p99,
               max(latencies) * 1000, cpu * 1000 / max(1, len(latencies)), f"{load:.1f}")


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its children (gunicorn's
    master and workers): unlike latency, hardly moved by other work on a shared machine,
    so it shows what a change saves even when the machine is busy."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            with open(f"/proc/{current}/task/{current}/children") as handle:
                pending.extend(int(child) for child in handle.read().split())
        except (OSError, ValueError, IndexError):
            continue
    return total


def filesystem_of(path: str) -> str:
    """The filesystem type and device holding `path` (longest mount point in
    /proc/mounts), so a figure says whether it was taken on a disk or on tmpfs."""
    real = os.path.realpath(path)
    best = ("?", "?", "")
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                device, point, kind = line.split()[:3]
                inside = real == point or real.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best[2]):
                    best = (kind, device, point)
    except OSError:
        pass
    return f"{best[0]} ({best[1]} on {best[2] or '?'})"


def show(run: Run) -> None:
    print(f"  {run.label:9s} {run.requests} requests in {run.seconds:.2f}s: "
          f"{run.rate:.0f} req/s, errors {run.errors}, files {run.written}, load "
          f"{run.load}, serve CPU {run.cpu_ms:.2f} ms/request; latency ms "
          f"p50 {run.p50:.1f}  p90 {run.p90:.1f}  p99 {run.p99:.1f}  max {run.worst:.1f}",
          flush=True)


def summary(label: str, runs: list[Run]) -> None:
    p99s = sorted(r.p99 for r in runs)
    print(f"{label:9s} p99 over {len(runs)} runs: min {p99s[0]:.1f}  median "
          f"{statistics.median(p99s):.1f}  max {p99s[-1]:.1f} ms; p50 median "
          f"{statistics.median(r.p50 for r in runs):.1f} ms; req/s median "
          f"{statistics.median(r.rate for r in runs):.0f}; serve CPU median "
          f"{statistics.median(r.cpu_ms for r in runs):.2f} ms/request")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--machines", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="offered requests/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="load duration cap")
    parser.add_argument("--requests", type=int, default=12_000, help="request count cap")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--connections", type=int, default=16, help="connections in all")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--state-root", default=None,
                        help="where to make the state directory (default: the system temp "
                             "dir); its filesystem's write latency dominates the tail")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs of each variant, interleaved (A B A B ...)")
    parser.add_argument("--baseline", default=None, metavar="DIR",
                        help="also run serve from the vcyclectl package copy in DIR (e.g. "
                             "`git archive main vcyclectl | tar -x -C DIR`), alternating "
                             "with this checkout, for before/after figures in one run")
    parser.add_argument("--compare-root", default=None, metavar="DIR",
                        help="also run this checkout with the state directory under DIR "
                             "(e.g. /dev/shm, tmpfs), interleaved: what the disk costs")
    parser.add_argument("--access-log", action="store_true",
                        help="serve with its access log on, as it runs by default (written "
                             "to a file beside the state directory)")
    parser.add_argument("--compare-granian", action="store_true",
                        help="also run this checkout's app under granian (if installed), "
                             "interleaved: gunicorn's own share of the CPU per request")
    parser.add_argument("--first-heartbeats", action="store_true",
                        help="start with no joboutputs, so every request is a machine's "
                             "first heartbeat (default: each has heartbeated before)")
    parser.add_argument("--aim-rate", type=float, default=1000.0)
    parser.add_argument("--aim-p99-ms", type=float, default=50.0)
    args = parser.parse_args()

    where = args.state_root or tempfile.gettempdir()
    print(f"state on {where}: {filesystem_of(where)}; machines {args.machines} "
          f"({'first heartbeats' if args.first_heartbeats else 'heartbeated before'}), offered "
          f"{args.rate:.0f} req/s, workers {args.workers}x{args.threads} threads, "
          f"cores {os.cpu_count()}", flush=True)
    variants: list[tuple[str, str | None, str | None]] = [("this", None, args.state_root)]
    if args.baseline:
        variants.insert(0, ("baseline", os.path.abspath(args.baseline), args.state_root))
    if args.compare_root:
        print(f"this-cmp: state on {args.compare_root}: {filesystem_of(args.compare_root)}")
        variants.append(("this-cmp", None, args.compare_root))
    if args.compare_granian:
        variants.append(("granian", None, args.state_root))
    runs: dict[str, list[Run]] = {label: [] for label, _, _ in variants}
    for _ in range(args.rounds):
        for label, code, root in variants:
            run = run_once(args, label, code, root)
            runs[label].append(run)
            show(run)
    for label, _, _ in variants:
        summary(label, runs[label])
    if args.baseline:
        ratio = (statistics.median(r.p99 for r in runs["this"])
                 / statistics.median(r.p99 for r in runs["baseline"]))
        cpu = (statistics.median(r.cpu_ms for r in runs["this"])
               / statistics.median(r.cpu_ms for r in runs["baseline"]))
        print(f"this/baseline (medians): p99 {ratio:.2f}, serve CPU per request {cpu:.2f}")
    if args.compare_granian:
        cpu = (statistics.median(r.cpu_ms for r in runs["granian"])
               / statistics.median(r.cpu_ms for r in runs["this"]))
        print(f"granian/this (medians): serve CPU per request {cpu:.2f}")
    mine = runs["this"]
    ok = all(r.errors == 0 and r.rate >= 0.95 * args.aim_rate for r in mine) and \
        statistics.median(r.p99 for r in mine) < args.aim_p99_ms
    print("aim (%.0f req/s, median p99 < %.0f ms, no errors): %s" % (
        args.aim_rate, args.aim_p99_ms, "met" if ok else "MISSED"))
    return 0 if ok else 1


def wait_until_up(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("serve exited during start-up")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("serve did not start within 30 s")


if __name__ == "__main__":
    sys.exit(main())
