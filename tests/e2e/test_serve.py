"""`vcyclectl serve` as a real process on loopback, spoken to over HTTP, with `reconcile`
acting on what the VMs reported: MJF values, heartbeats, shutdown messages, hostile
requests, and the whole loop with simulated `local` VMs reporting through `serve`.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from vcyclectl.vm import tokens

SPACE = "demo.local"
MSG_NO_WORK = "300 No more work available from task queue"


# -- helpers ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cli(config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "vcyclectl", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"vcyclectl {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def names(config: Path, machinetype: str | None = None) -> list[str]:
    """Machines not being deleted (`list` still shows those until the cloud drops them)."""
    args = ["list", "-o", "json"] + (["--machinetype", machinetype] if machinetype else [])
    return [r["name"] for r in json.loads(cli(config, *args).stdout) if r["state"] != "deleting"]


class Serve:
    """`vcyclectl serve` in a subprocess on a free loopback port; stderr kept for checks."""

    def __init__(self, config: Path, port: int, *extra: str) -> None:
        self.port = port
        self.log = config.parent / f"serve-{port}.log"
        self._log_handle = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vcyclectl", "--config", str(config), "serve", "--listen",
             f"127.0.0.1:{port}", "--workers", "1", "--threads", "4", *extra],
            stdout=self._log_handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("serve did not start:\n" + self.log.read_text())
            time.sleep(0.05)

    def request(self, method: str, path: str, body: bytes | None = None,
                token: str | None = None, headers: dict[str, str] | None = None
                ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            sent = dict(headers or {})
            if token is not None:
                sent["Authorization"] = f"Bearer {token}"
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_handle.close()


def write_config(tmp: Path, port: int, machinetypes: str, *, local: str = "",
                 top: str = "") -> Path:
    config = tmp / "vcyclectl.yaml"
    config.write_text(f"""\
state_dir: ./state
feedback_url: http://127.0.0.1:{port}
{top}
defaults:
  min_pass_interval_seconds: 0
  backoff_seconds: 600
  max_wallclock_seconds: 3600
spaces:
  {SPACE}:
    cloud: local
    processors_limit: 8
    local:
      processors: 32
      boot_seconds: 0
      job_seconds: 3600
      no_work_probability: 0
{local}
    machinetypes:
{machinetypes}
""")
    return config


def outputs_dir(tmp: Path, name: str) -> Path:
    return tmp / "state" / "spaces" / SPACE / "joboutputs" / name


def url(name: str, section: str, leaf: str) -> str:
    return f"/machines/{SPACE}/{name}/{section}/{leaf}"


def finished(tmp: Path) -> list[dict[str, Any]]:
    path = tmp / "state" / "spaces" / SPACE / "finished.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def serve_factory() -> Iterator[Any]:
    started: list[Serve] = []

    def start(config: Path, port: int, *extra: str) -> Serve:
        server = Serve(config, port, *extra)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# -- MJF -----------------------------------------------------------------------------------
def test_mjf_keys_over_http_and_a_drain_moves_shutdowntime(tmp_path: Path,
                                                           serve_factory: Any) -> None:
    port = free_port()
    config = write_config(tmp_path, port, """\
      lhcb:
        processors_limit: 4
        hs06_per_processor: 10.0
        drain_grace_seconds: 120
        max_wallclock_seconds: 7200
""", local="      processors_per_machine: 4")
    cli(config, "reconcile")
    [name] = names(config)
    record = json.loads(cli(config, "inspect", name, "-o", "json").stdout)["record"]
    server: Serve = serve_factory(config, port)
    token = tokens.machine_token(tmp_path / "state", name)

    def get(section: str, key: str) -> tuple[int, str]:
        status, body = server.request("GET", url(name, section, key), token=token)
        return status, body.decode()

    shutdown = str(int(record["created_at"] + 7200))
    assert get("machinefeatures", "total_cpu") == (200, "4")
    assert get("machinefeatures", "hs06") == (200, "40")
    assert get("machinefeatures", "jobslots") == (200, "1")
    assert get("machinefeatures", "phys_cores") == (200, "4")
    assert get("machinefeatures", "log_cores") == (200, "4")
    assert get("machinefeatures", "grace_secs") == (200, "120")
    assert get("machinefeatures", "shutdowntime") == (200, shutdown)
    assert get("jobfeatures", "allocated_cpu") == (200, "4")
    assert get("jobfeatures", "hs06_job") == (200, "40")
    assert get("jobfeatures", "wall_limit_secs") == (200, "7200")
    assert get("jobfeatures", "cpu_limit_secs") == (200, str(4 * 7200))
    assert get("jobfeatures", "shutdowntime_job") == (200, shutdown)
    assert get("jobfeatures", "job_id") == (200, name)
    assert get("jobfeatures", "jobstart_secs")[0] == 200
    assert get("jobfeatures", "max_rss_bytes")[0] == 404  # flavor memory not recorded
    assert get("machinefeatures", "no_such_key")[0] == 404
    assert get("jobfeatures", "total_cpu")[0] == 404  # a machine key is not a job key

    before = time.time()
    cli(config, "drain", name, "--reason", "test")
    status, value = get("machinefeatures", "shutdowntime")
    assert status == 200 and int(before) + 120 - 1 <= int(value) <= int(time.time()) + 120
    assert get("jobfeatures", "shutdowntime_job") == (200, value)


# -- heartbeats and shutdown messages -------------------------------------------------------
def test_reported_heartbeat_and_shutdown_message_drive_the_next_pass(tmp_path: Path,
                                                                     serve_factory: Any) -> None:
    port = free_port()
    config = write_config(tmp_path, port, """\
      hb:
        processors_limit: 1
        heartbeat_file: heartbeat
        heartbeat_seconds: 1.0
        fizzle_seconds: 0.2
        local: {heartbeat: false}
      quit:
        processors_limit: 1
        fizzle_seconds: 0.05
        local: {heartbeat: false, job_seconds: 0.4}
""")
    cli(config, "reconcile")
    [hb] = names(config, "hb")
    [quit_] = names(config, "quit")
    server: Serve = serve_factory(config, port)
    state = tmp_path / "state"
    hb_token = tokens.machine_token(state, hb)
    assert server.request("PUT", url(quit_, "joboutputs", "shutdown_message"),
                          MSG_NO_WORK.encode() + b"\nmore detail\n",
                          tokens.machine_token(state, quit_))[0] == 204
    beating = threading.Event()
    statuses: list[int] = []

    def heartbeat_loop() -> None:  # what the VM's cron does, every 0.2 s here
        while not beating.is_set():
            statuses.append(server.request("PUT", url(hb, "joboutputs", "heartbeat"),
                                           b"%.3f\n" % time.time(), hb_token)[0])
            beating.wait(0.2)

    beater = threading.Thread(target=heartbeat_loop)
    beater.start()
    try:
        time.sleep(0.55)  # `quit` has stopped on the cloud; `hb` is past fizzle_seconds
        cli(config, "reconcile")
    finally:
        beating.set()
        beater.join()
    assert statuses and set(statuses) == {204}

    assert names(config, "hb") == [hb]  # kept alive by the heartbeat it sent
    assert names(config, "quit") == []  # in backoff: no replacement
    rows = {r["machinetype"]: r for r in json.loads(cli(config, "status", "-o", "json").stdout)}
    assert rows["quit"]["backoff_until"] is not None
    assert rows["hb"]["backoff_until"] is None
    [ended] = [e for e in finished(tmp_path) if e["name"] == quit_]
    assert ended["message"] == MSG_NO_WORK and ended["abort"] is True

    shown = json.loads(cli(config, "inspect", hb, "-o", "json").stdout)
    assert shown["joboutputs"] == ["heartbeat"] and shown["heartbeat_at"]

    time.sleep(1.1)  # no heartbeat for longer than heartbeat_seconds
    cli(config, "reconcile")
    assert hb not in names(config, "hb")
    shown = json.loads(cli(config, "inspect", hb, "-o", "json").stdout)
    assert shown["state"] == "deleting"
    assert shown["record"]["message"] == "700 Heartbeat file not updated"
    assert [e["message"] for e in finished(tmp_path) if e["name"] == hb] == \
        ["700 Heartbeat file not updated"]
    # An ended machine can no longer write, even with its own token.
    assert server.request("PUT", url(hb, "joboutputs", "heartbeat"), b"1", hb_token)[0] == 404
    assert server.request("GET", url(hb, "machinefeatures", "total_cpu"), None,
                          hb_token)[0] == 404


# -- hostile requests ------------------------------------------------------------------------
def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in ("lock", "holder.json")}


def raw_exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        out = b""
        while not out.endswith(b"\n") or b"\r\n\r\n" not in out:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


def test_hostile_requests_are_refused_and_write_nothing(tmp_path: Path,
                                                        serve_factory: Any) -> None:
    port = free_port()
    config = write_config(tmp_path, port, """\
      lhcb:
        processors_limit: 2
""")
    cli(config, "reconcile")
    a, b = names(config)
    state = tmp_path / "state"
    ta, tb = tokens.machine_token(state, a), tokens.machine_token(state, b)
    server: Serve = serve_factory(config, port, "--max-upload-bytes", "65536",
                           "--max-machine-bytes", "150000")
    before = snapshot(state)

    def put(path: str, body: bytes = b"x", token: str | None = ta) -> int:
        return server.request("PUT", path, body, token)[0]

    # Tokens: none, another machine's, malformed, wrong scheme.
    assert put(url(a, "joboutputs", "heartbeat"), token=None) == 403
    assert put(url(a, "joboutputs", "heartbeat"), token=tb) == 403
    assert put(url(a, "joboutputs", "heartbeat"), token="0" * 64) == 403
    assert put(url(a, "joboutputs", "heartbeat"), token=ta.upper()) == 403
    assert server.request("PUT", url(a, "joboutputs", "heartbeat"), b"x",
                          headers={"Authorization": f"Basic {ta}"})[0] == 403
    assert server.request("GET", url(a, "machinefeatures", "total_cpu"), token=tb)[0] == 403
    # Paths out of the machine's folder, and file names that are not plain names.
    for bad in (f"/machines/{SPACE}/{a}/joboutputs/../{b}/joboutputs/x",
                f"/machines/{SPACE}/{a}/joboutputs/..%2F{b}%2Fx",
                f"/machines/{SPACE}/{a}/joboutputs/%2e%2e",
                f"/machines/{SPACE}/{a}/joboutputs/.hidden",
                f"/machines/{SPACE}/{a}/joboutputs/a%00b",
                f"/machines/{SPACE}/{a}/joboutputs/a%5Cb",
                f"/machines/{SPACE}/{a}/joboutputs/" + "x" * 200,
                f"/machines/{SPACE}/{a}/joboutputs/",
                f"/machines/{SPACE}/{a}/joboutputs//etc/passwd",
                f"/machines/{SPACE}/..%2F{b}/joboutputs/x",
                f"/machines/{SPACE}/{a.upper()}/joboutputs/x",
                f"/machines/..%2Fspaces/{a}/joboutputs/x",
                f"/machines/{SPACE}",
                f"/machines/{SPACE}/{a}/machinefeatures/total_cpu/extra"):
        assert put(bad) == 400, bad
    # Unknown machine (with the token it would have) and unknown space: 404.
    ghost = "vcyclectl-demo-local-lhcb-0000000000"
    assert put(url(ghost, "joboutputs", "heartbeat"),
               token=tokens.machine_token(state, ghost)) == 404
    assert put(f"/machines/other.space/{a}/joboutputs/heartbeat") == 404
    assert put("/elsewhere") == 404
    assert put(url(a, "nosection", "x")) == 404
    # Wrong methods.
    assert server.request("GET", url(a, "joboutputs", "heartbeat"), token=ta)[0] == 405
    assert server.request("POST", url(a, "joboutputs", "heartbeat"), b"x", ta)[0] == 405
    assert put(url(a, "machinefeatures", "total_cpu")) == 405
    # Too big: declared, and actually sent with a length.
    assert server.request("PUT", url(a, "joboutputs", "big"), b"",
                          ta, {"Content-Length": str(2 ** 40)})[0] == 413
    assert put(url(a, "joboutputs", "big"), b"y" * 65537) == 413
    # An endless chunked body (no length): answered 413 after a bounded read.
    assert endless_chunked_status(port, url(a, "joboutputs", "endless"), ta) == 413
    # Malformed HTTP and over-long request lines are the server's 400s.
    assert raw_exchange(port, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert raw_exchange(port, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
                        ).split(b" ")[1] in (b"400", b"414")
    assert snapshot(state) == before  # nothing written by any of the above

    # Within limits: stored 0600; the per-machine quota counts a replaced file once.
    assert put(url(a, "joboutputs", "one"), b"1" * 60000) == 204
    assert put(url(a, "joboutputs", "two"), b"2" * 60000) == 204
    assert put(url(a, "joboutputs", "three"), b"3" * 60000) == 413
    assert put(url(a, "joboutputs", "one"), b"4" * 60000) == 204
    folder = outputs_dir(tmp_path, a)
    assert sorted(p.name for p in folder.iterdir()) == ["one", "two"]
    assert (folder / "one").read_bytes() == b"4" * 60000
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in folder.iterdir())
    assert not outputs_dir(tmp_path, b).exists()
    # Requests are logged, tokens never.
    server.stop()
    logged = server.log.read_text()
    assert f"/machines/{SPACE}/{a}/joboutputs/one" in logged
    assert ta not in logged and tb not in logged


def test_heartbeat_and_shutdown_message_are_accepted_at_the_quota(tmp_path: Path,
                                                                  serve_factory: Any) -> None:
    """A VM that filled its quota once got 413 for its heartbeat and its shutdown message,
    was killed for a missing heartbeat and its shutdown reason was lost (issue 22)."""
    port = free_port()
    config = write_config(tmp_path, port, """\
      lhcb:
        processors_limit: 1
        heartbeat_file: alive
""")
    cli(config, "reconcile")
    (a,) = names(config)
    token = tokens.machine_token(tmp_path / "state", a)
    server: Serve = serve_factory(config, port, "--max-upload-bytes", "2048",
                                  "--max-machine-bytes", "3000", "--max-machine-files", "2")

    def put(leaf: str, body: bytes) -> int:
        return server.request("PUT", url(a, "joboutputs", leaf), body, token)[0]

    assert put("log1", b"1" * 1500) == 204
    assert put("log2", b"2" * 1400) == 204
    assert put("log3", b"3") == 413  # the quota is full: files and bytes
    assert put("heartbeat", b"x") == 413  # not this machinetype's heartbeat file
    for _ in range(3):  # replaced each time, never counted against the quota
        assert put("alive", b"%f\n" % time.time()) == 204
    long_message = (MSG_NO_WORK + "\n").encode() + b"z" * 10000  # over --max-upload-bytes
    assert put("shutdown_message", long_message) == 204
    folder = outputs_dir(tmp_path, a)
    assert (folder / "shutdown_message").read_bytes() == long_message[:4096]
    assert sorted(p.name for p in folder.iterdir()) == ["alive", "log1", "log2",
                                                        "shutdown_message"]
    shown = json.loads(cli(config, "inspect", a, "-o", "json").stdout)
    assert MSG_NO_WORK in json.dumps(shown)


class Dripper:
    """A slow client on its own connection: sends `head` then one byte every `interval`
    seconds of `tail`, as long as the server keeps the connection."""

    def __init__(self, port: int, head: bytes, tail: bytes, interval: float) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.head, self.tail, self.interval = head, tail, interval
        self.closed_after: float | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.drip, daemon=True)
        self.thread.start()

    def drip(self) -> None:
        """Between bytes, watch the socket: the server closing it (or answering) ends it."""
        started = time.monotonic()
        try:
            self.sock.sendall(self.head)
            for byte in self.tail:
                readable, _, _ = select.select([self.sock], [], [], self.interval)
                if self.stop.is_set():
                    return
                if readable:
                    break  # closed by the server (or answered): the request is over
                self.sock.sendall(bytes([byte]))
            else:
                self.sock.recv(1)
        except OSError:
            pass
        self.closed_after = time.monotonic() - started

    def close(self) -> None:
        self.stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=5)


def test_slow_clients_do_not_stop_heartbeats(tmp_path: Path, serve_factory: Any) -> None:
    """16 connections sending a byte every 3 s once held every worker thread, so real
    heartbeats timed out; a slow body did the same (issue 22)."""
    port = free_port()
    config = write_config(tmp_path, port, """\
      lhcb:
        processors_limit: 1
""")
    cli(config, "reconcile")
    (a,) = names(config)
    token = tokens.machine_token(tmp_path / "state", a)
    server: Serve = serve_factory(config, port, "--request-timeout", "4")
    path = url(a, "joboutputs", "heartbeat")
    slow_head = [Dripper(port, b"", f"PUT {path} HTTP/1.1\r\nHost: x\r\n".encode(), 3.0)
                 for _ in range(12)]
    slow_body = [Dripper(port, (f"PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                                f"{token}\r\nContent-Length: 64\r\n\r\n").encode(), b"7" * 64,
                         3.0) for _ in range(4)]
    try:
        time.sleep(2.0)  # every worker thread (1 worker x 4 threads) is now taken
        took = []
        for _ in range(6):
            started = time.monotonic()
            assert server.request("PUT", path, b"%f\n" % time.time(), token)[0] == 204
            took.append(time.monotonic() - started)
            time.sleep(0.5)
        # The first waits while the queue of slow clients is cut down (about a second per
        # thread's worth of them); then heartbeats go straight through.
        assert took[0] < 5.0 and max(took[1:]) < 1.0, took
        deadline = time.monotonic() + 15
        while any(d.closed_after is None for d in slow_head + slow_body) and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        # Each slow request was cut --request-timeout (4 s) after a thread took it up, or
        # sooner for being one slow request too many; none lived to send the whole of it
        # (that would take 2-3 minutes at a byte every 3 s).
        for d in slow_head + slow_body:
            assert d.closed_after is not None and d.closed_after < 12.0, d.closed_after
    finally:
        for d in slow_head + slow_body:
            d.close()
    assert (outputs_dir(tmp_path, a) / "heartbeat").read_bytes() != b"7" * 64


def endless_chunked_status(port: int, path: str, token: str) -> int:
    """Send chunks without end (bounded here at 8 MiB) while reading the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    stop = threading.Event()

    def feed() -> None:
        chunk = b"%x\r\n%s\r\n" % (65536, b"z" * 65536)
        try:
            for _ in range(128):
                if stop.is_set():
                    return
                sock.sendall(chunk)
        except OSError:
            return

    sock.sendall(f"PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n".encode())
    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        head = b""
        while b"\r\n" not in head:
            data = sock.recv(4096)
            if not data:
                break
            head += data
        return int(head.split(b" ")[1])
    finally:
        stop.set()
        sock.close()
        feeder.join(timeout=10)


# -- the whole loop: simulated VMs report through serve ----------------------------------------
def test_local_machines_report_through_serve_over_http(tmp_path: Path,
                                                       serve_factory: Any) -> None:
    port = free_port()
    config = write_config(tmp_path, port, """\
      work:
        processors_limit: 2
        heartbeat_file: heartbeat
        heartbeat_seconds: 0.5
        fizzle_seconds: 0.1
        local: {job_seconds: 6}  # longer than a pass on a loaded machine: a pass sees it run
      idle:
        processors_limit: 1
        fizzle_seconds: 0.05
        local: {job_seconds: 1.0, no_work_probability: 1.0}
""", local=f"      report_url: http://127.0.0.1:{port}")
    cli(config, "reconcile")  # makes the state directory (serve refuses a path without one)
    serve_factory(config, port)
    deadline = time.monotonic() + 60
    seen_work: set[str] = set()
    while time.monotonic() < deadline:
        cli(config, "reconcile")
        seen_work.update(names(config, "work"))
        done = [e for e in finished(tmp_path) if e["machinetype"] == "work"]
        if len(done) >= 2 and any(e["machinetype"] == "idle" for e in finished(tmp_path)):
            break
        time.sleep(0.2)
    ended = finished(tmp_path)
    work = [e for e in ended if e["machinetype"] == "work"]
    idle = [e for e in ended if e["machinetype"] == "idle"]
    # Work machines lived past heartbeat_seconds only thanks to heartbeats sent over HTTP,
    # and their "200" reached the reconciler only through serve (the driver hides both).
    assert len(work) >= 2 and {e["message"] for e in work} == {"200 Intended work completed ok"}
    assert all(e["stopped_at"] - e["started_at"] > 0.5 for e in work)
    assert [e["message"] for e in idle] == [MSG_NO_WORK] and idle[0]["abort"] is True
    rows = {r["machinetype"]: r for r in json.loads(cli(config, "status", "-o", "json").stdout)}
    assert rows["idle"]["backoff_until"] is not None
    beats = 0
    for entry in work:
        folder = outputs_dir(tmp_path, entry["name"])
        assert (folder / "shutdown_message").read_text() == "200 Intended work completed ok\n"
        if (folder / "heartbeat").exists():  # absent only if no pass saw it running
            beats += 1
            assert float((folder / "heartbeat").read_text()) > entry["started_at"]
    assert beats >= 1


def test_without_serve_reporting_machines_fail_their_heartbeat(tmp_path: Path) -> None:
    """The control for the test above: with report_url set and nobody listening, the
    driver supplies no heartbeat, so the reconciler ends the machine for it."""
    port = free_port()
    config = write_config(tmp_path, port, """\
      work:
        processors_limit: 1
        heartbeat_seconds: 0.3
        fizzle_seconds: 0.1
""", local=f"      report_url: http://127.0.0.1:{port}")
    cli(config, "reconcile")
    time.sleep(0.5)
    cli(config, "reconcile")
    assert [e["message"] for e in finished(tmp_path)] == ["700 Heartbeat file not updated"]


def test_cleanup_removes_outputs_of_long_ended_machines(tmp_path: Path) -> None:
    from vcyclectl.core.model import MachineState
    from vcyclectl.core.records import MachineRecord
    from vcyclectl.state.outputs import cleanup_outputs
    from vcyclectl.state.store import StateDir

    store = StateDir(tmp_path).space(SPACE)
    store.ensure()
    now = time.time()
    live = MachineRecord(name="live", space=SPACE, machinetype="m", state=MachineState.RUNNING,
                         processors=1, created_at=now - 9000)
    ending = live.with_changes(name="ending", deleting_at=now - 10, finished=True)
    for name in ("live", "ending", "gone-old", "gone-new"):
        (store.joboutputs_dir / name).mkdir()
        (store.joboutputs_dir / name / "heartbeat").write_text("1")
        os.utime(store.joboutputs_dir / name, (now - 7200, now - 7200))
    os.utime(store.joboutputs_dir / "gone-new", (now - 60, now - 60))
    removed = cleanup_outputs(store, {"live": live, "ending": ending}, now, keep_seconds=3600)
    assert sorted(removed) == ["gone-old"]
    assert sorted(p.name for p in store.joboutputs_dir.iterdir()) == ["ending", "gone-new", "live"]
    removed = cleanup_outputs(store, {"live": live}, now + 3700, keep_seconds=3600)
    assert sorted(removed) == ["ending", "gone-new"]


def test_serves_https_directly_with_tls_cert_and_key(tmp_path: Path) -> None:
    import ssl

    port = free_port()
    config = write_config(tmp_path, port, "      lhcb: {processors_limit: 1}\n")
    cli(config, "reconcile")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    log = tmp_path / "serve.log"
    with open(log, "wb") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "vcyclectl", "--config", str(config),
                                 "serve", "--listen", f"127.0.0.1:{port}", "--workers", "1",
                                 "--tls-cert", str(cert), "--tls-key", str(key)],
                                stdout=handle, stderr=subprocess.STDOUT)
    try:
        context = ssl.create_default_context(cafile=str(cert))
        [name] = names(config)
        deadline = time.monotonic() + 15
        while True:
            try:
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
                conn.request("GET", url(name, "machinefeatures", "jobslots"), headers={
                    "Authorization": f"Bearer {tokens.machine_token(tmp_path / 'state', name)}"})
                resp = conn.getresponse()
                assert (resp.status, resp.read()) == (200, b"1")
                break
            except (ConnectionError, ssl.SSLError):
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_healthz_is_503_while_the_state_directory_cannot_be_read(tmp_path: Path,
                                                                 serve_factory: Any) -> None:
    """A load balancer must stop sending VMs to a host whose shared state dir is gone."""
    port = free_port()
    config = write_config(tmp_path, port, "      lhcb: {processors_limit: 1}\n")
    state, unmounted = tmp_path / "state", tmp_path / "state-elsewhere"
    cli(config, "reconcile")  # (serve on a fresh state dir: tests/e2e/test_serve_fresh.py)
    server: Serve = serve_factory(config, port)
    assert server.request("GET", "/healthz") == (200, b"ok\n")
    state.rename(unmounted)
    state.mkdir()  # the bare mount point of an unmounted share
    status, body = server.request("GET", "/healthz")
    assert status == 503 and f"{state} is not initialised".encode() in body
    assert list(state.iterdir()) == []  # serve wrote nothing into it
    state.rmdir()
    state.mkdir()
    cli(config, "reconcile")  # another state directory now sits at the same path
    status, body = server.request("GET", "/healthz")
    assert status == 503 and b"is now state directory" in body
    shutil.rmtree(state)
    unmounted.rename(state)
    assert server.request("GET", "/healthz") == (200, b"ok\n")
