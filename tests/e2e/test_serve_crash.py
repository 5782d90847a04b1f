"""`vcyclectl serve` killed with SIGKILL under load loses no heartbeat it answered.

A real `serve` (2 workers) takes heartbeats from many client threads at once; after a
fixed number of answers the whole process group is SIGKILLed while requests are still in
flight. Then the reconcile pass's own observation (`reconcile.observe.observe`, the code
that judges heartbeats) must see, for every heartbeat answered 204, a heartbeat at least
as new as that request, and every answered `shutdown_message`. Deterministic: whatever
the interleaving, the kill lands after a known number of answers, and the check does not
depend on timing (each machine's heartbeat file starts an hour old, and each machine
reports once, so a lost heartbeat shows as an hour stale).

The state directory is in pytest's tmp_path, on the machine's disk (not tmpfs) here.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from vcyclectl.clouds.registry import build_cloud
from vcyclectl.config import load
from vcyclectl.core.model import MachineState
from vcyclectl.core.records import MachineRecord
from vcyclectl.reconcile.observe import observe
from vcyclectl.state.store import StateDir
from vcyclectl.vm import tokens

from tests.e2e.test_serve import free_port

SPACE = "crash.local"
MACHINES = 600
KILL_AFTER = 300  # answers before the SIGKILL
#: Clients send no new request past this many answers until the kill: however late the
#: killing thread runs, the load cannot end (and machines cannot report twice) before it.
HOLD_AFTER = KILL_AFTER + 100
CLIENTS = 12
HOUR = 3600.0
#: The kernel stamps mtimes from a clock read at tick granularity (a few ms behind
#: `time.time()`); a lost heartbeat would be an hour behind.
MTIME_SLACK = 1.0
MESSAGE = "300 No more work available from task queue"


@dataclass
class Answer:
    name: str
    leaf: str
    body: bytes
    sent_at: float
    status: int | None  # None: no answer (the server died first)


def make_state(tmp: Path) -> tuple[Path, list[str]]:
    """A state directory with running machines, each with an hour-old heartbeat file
    (half of them: the other half report for the first time, making their folder)."""
    state = tmp / "state"
    config = tmp / "vcyclectl.yaml"
    config.write_text(f"""\
state_dir: {state}
spaces:
  {SPACE}:
    cloud: local
    processors_limit: {MACHINES}
    machinetypes:
      work: {{heartbeat_file: beat, heartbeat_seconds: 600}}
""")
    StateDir(state).open(create=True)
    store = StateDir(state).space(SPACE)
    store.ensure()
    now = time.time()
    names = [f"vcyclectl-crash-local-work-{i:010d}" for i in range(MACHINES)]
    store.put_records(MachineRecord(name=n, space=SPACE, machinetype="work",
                                    state=MachineState.RUNNING, processors=1,
                                    created_at=now - HOUR, started_at=now - HOUR)
                      for n in names)
    for n in names[::2]:
        folder = store.machine_outputs_dir(n)
        folder.mkdir(mode=0o700)
        beat = folder / "beat"
        beat.write_bytes(b"an older and longer heartbeat value\n")
        os.utime(beat, (now - HOUR, now - HOUR))
    return config, names


def start_serve(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vcyclectl", "--config", str(config), "serve", "--listen",
             f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", "--no-access-log"],
            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.05)
    raise AssertionError("serve did not start:\n" + log.read_text())


def test_sigkilled_serve_loses_no_answered_heartbeat(tmp_path: Path) -> None:
    config, names = make_state(tmp_path)
    state = tmp_path / "state"
    port = free_port()
    server = start_serve(config, port, tmp_path / "serve.log")
    answers: list[Answer] = []
    lock = threading.Lock()
    answered = threading.Semaphore(0)
    killed = threading.Event()

    def client(mine: list[str]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i, name in enumerate(mine):
            with lock:
                hold = sum(a.status is not None for a in answers) >= HOLD_AFTER
            if hold:
                killed.wait(60)
            leaf = "shutdown_message" if i % 10 == 9 else "beat"
            body = (f"{MESSAGE}\n" if leaf == "shutdown_message" else f"{name} {i}\n").encode()
            token = tokens.machine_token(state, name)
            answer = Answer(name, leaf, body, time.time(), None)
            try:
                conn.request("PUT", f"/machines/{SPACE}/{name}/joboutputs/{leaf}", body=body,
                             headers={"Authorization": f"Bearer {token}"})
                response = conn.getresponse()
                response.read()
                answer.status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()  # the server is gone: this and the rest are unanswered
                break
            finally:
                with lock:
                    answers.append(answer)
            answered.release()
        conn.close()

    threads = [threading.Thread(target=client, args=(names[c::CLIENTS],))
               for c in range(CLIENTS)]
    try:
        for t in threads:
            t.start()
        for _ in range(KILL_AFTER):
            assert answered.acquire(timeout=60), "serve stopped answering before the kill"
        os.killpg(server.pid, signal.SIGKILL)  # master and workers, mid-load
        server.wait(timeout=30)
        killed.set()
    finally:
        killed.set()
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
        for t in threads:
            t.join(timeout=60)

    ok = [a for a in answers if a.status is not None]
    assert len(ok) >= KILL_AFTER
    assert {a.status for a in ok} == {204}, {a.status for a in ok}
    assert len(ok) <= HOLD_AFTER + CLIENTS < MACHINES  # the load outlasted the kill

    cfg = load(config)
    space = cfg.spaces[SPACE]
    store = StateDir(state).space(SPACE)
    cloud = build_cloud(cfg, space, StateDir(state).open(create=False))
    reports = observe(space, cloud, store).observation.reports
    for a in ok:
        report = reports.get(a.name)
        assert report is not None, f"{a.name}: answered 204, no report after the kill"
        if a.leaf == "beat":
            assert report.heartbeat_at is not None and \
                report.heartbeat_at >= a.sent_at - MTIME_SLACK, \
                f"{a.name}: heartbeat answered 204 at {a.sent_at} lost (seen: " \
                f"{report.heartbeat_at})"
            assert (store.machine_outputs_dir(a.name) / "beat").read_bytes() == a.body
        else:
            assert report.shutdown_message == MESSAGE, a.name
