"""Load benchmark for `vcyclectl serve` on loopback: N machines heartbeating.

Makes a state directory with N machine records (default 10,000) in one space, starts
`vcyclectl serve` as a real process on a free 127.0.0.1 port, and drives heartbeats from
client processes at a fixed offered rate (open loop: each request has a scheduled send
time and its latency is measured from that time, so a stalled server is not hidden by a
client that waits). Every machine PUTs `joboutputs/heartbeat` with its own token, in turn.
Prints sustained requests/s and p50/p90/p99/max latency; exits 1 if the aim (default
1,000 req/s with p99 under 50 ms) is missed or any request fails.

Bounded in count and time: at most --requests requests, at most --seconds of load.

    .venv/bin/python benchmarks/bench_serve.py [--machines 10000] [--rate 1000]
        [--seconds 10] [--requests 12000] [--clients 2] [--connections 16]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SPACE = "bench.local"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_state(root: Path, machines: int) -> tuple[Path, list[str]]:
    """A state directory with `machines` running records, written as one journal append."""
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
                             "dir); its filesystem's fsync latency dominates the tail")
    parser.add_argument("--aim-rate", type=float, default=1000.0)
    parser.add_argument("--aim-p99-ms", type=float, default=50.0)
    args = parser.parse_args()

    from vcyclectl.vm.tokens import machine_token

    with tempfile.TemporaryDirectory(prefix="bench-serve-", dir=args.state_root) as tmp:
        root = Path(tmp)
        config, names = make_state(root, args.machines)
        state = root / "state"
        total = min(args.requests, int(args.rate * args.seconds))
        jobs = [(f"/machines/{SPACE}/{n}/joboutputs/heartbeat", machine_token(state, n))
                for n in (names[i % len(names)] for i in range(total))]
        port = free_port()
        log = open(root / "serve.log", "wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "vcyclectl", "--config", str(config), "serve", "--listen",
             f"127.0.0.1:{port}", "--workers", str(args.workers), "--threads",
             str(args.threads), "--no-access-log"], stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_up(port, server)
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
        finally:
            server.terminate()
            server.wait(timeout=20)
            log.close()
        written = sum(1 for n in names if (state / "spaces" / SPACE / "joboutputs" / n /
                                           "heartbeat").exists())

    done = len(latencies)
    achieved = done / elapsed if elapsed > 0 else 0.0
    p50, p90, p99 = (percentile(latencies, p) * 1000 for p in (50, 90, 99))
    print(f"state on {args.state_root or tempfile.gettempdir()}; "
          f"machines {args.machines}, heartbeat files written {written}, "
          f"workers {args.workers}x{args.threads} threads, cores {os.cpu_count()}")
    print(f"requests {done} in {elapsed:.2f}s: {achieved:.0f} req/s sustained "
          f"(offered {args.rate:.0f}), errors {errors}")
    print(f"latency ms: p50 {p50:.1f}  p90 {p90:.1f}  p99 {p99:.1f}  "
          f"max {max(latencies) * 1000:.1f}")
    ok = errors == 0 and achieved >= 0.95 * args.aim_rate and p99 < args.aim_p99_ms
    print("aim (%.0f req/s, p99 < %.0f ms): %s" % (args.aim_rate, args.aim_p99_ms,
                                                   "met" if ok else "MISSED"))
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
