"""Logs for collectors and journald (issue 18): `--log-format json` gives one JSON object per
record; under systemd each record reaches journald natively with its priority and fields
(SPACE, PASS_ID, ...); `serve`'s access log is on stderr in the same format."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

import pytest

from vcyclectl import log

BROKEN = """\
state_dir: state
spaces:
  alpha.local:
    cloud: local
    processors_limit: 4
    local: {processors: 100, api_error_probability: 1.0}
    machinetypes:
      lhcb: {}
"""


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    yield
    log.setup(False, False, "auto")


def _journal_fields(datagram: bytes) -> dict[str, str]:
    """Parse journald's native protocol (both the `K=V` and the length-prefixed form)."""
    out: dict[str, str] = {}
    rest = datagram
    while rest:
        line, _, tail = rest.partition(b"\n")
        if b"=" in line:
            key, _, value = line.partition(b"=")
            out[key.decode()] = value.decode()
            rest = tail
        else:
            (size,) = struct.unpack("<Q", tail[:8])
            out[line.decode()] = tail[8:8 + size].decode()
            rest = tail[8 + size + 1:]
    return out


def test_json_format_one_object_per_record_with_fields(write_config: Callable[..., Path],
                                                        tmp_path: Path) -> None:
    config = write_config(BROKEN)
    done = subprocess.run([sys.executable, "-m", "vcyclectl", "--log-format", "json", "-q",
                           "--config", str(config), "reconcile"], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 1
    records = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    failed = [r for r in records if r["message"] == "space failed"]
    assert failed and failed[0]["level"] == "error" and failed[0]["space"] == "alpha.local"
    assert len(failed[0]["pass"]) == 8 and failed[0]["time"].endswith("Z")
    assert "alpha.local: FAILED" in done.stderr  # the one-line summary stays for people


def test_json_format_redacts_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    log.setup(False, False, "json")
    log.warning("cloud unreachable", space="a.b", url="https://bob:hunter2@keystone:5000/v3")
    record = json.loads(capsys.readouterr().err)
    assert record["space"] == "a.b" and "hunter2" not in json.dumps(record)


def test_journal_format_sends_priority_and_fields_natively(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    path = tmp_path / "journal.socket"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as journal:
        journal.bind(str(path))
        journal.settimeout(5)
        monkeypatch.setattr(log, "JOURNAL_SOCKET", str(path))
        log.setup(False, True, "journal")
        log.error("space failed", space="alpha.local", reason="listing failed\nsecond line")
        fields = _journal_fields(journal.recv(65536))
    assert fields["PRIORITY"] == "3" and fields["SPACE"] == "alpha.local"
    assert fields["PASS_ID"] == log.PASS_ID and fields["SYSLOG_IDENTIFIER"] == "vcyclectl"
    assert fields["REASON"] == "listing failed\nsecond line"
    assert fields["MESSAGE"].startswith("space failed space=alpha.local")


def test_journal_format_without_a_socket_falls_back_to_priority_prefixed_stderr(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(log, "JOURNAL_SOCKET", str(tmp_path / "absent.socket"))
    log.setup(False, False, "journal")
    log.warning("delete failed", space="alpha.local")
    line = capsys.readouterr().err.strip()
    assert line.startswith("<4>") and "delete failed space=alpha.local" in line


def test_auto_format_is_text_off_systemd(capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    log.setup(False, False, "auto")
    log.warning("delete failed", space="alpha.local")
    line = capsys.readouterr().err.strip()
    assert f" WARNING pass={log.PASS_ID} delete failed space=alpha.local" in line


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_access_log_is_on_stderr_in_the_chosen_format(write_config: Callable[..., Path],
                                                            tmp_path: Path) -> None:
    config = write_config("state_dir: state\nfeedback_url: http://127.0.0.1:1\nspaces: {}\n")
    subprocess.run([sys.executable, "-m", "vcyclectl", "--config", str(config), "reconcile"],
                   check=True, capture_output=True, timeout=120)
    port = _free_port()
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "vcyclectl", "--log-format", "json",
                                 "--config", str(config), "serve", "--listen",
                                 f"127.0.0.1:{port}", "--workers", "1"],
                                stdout=stdout, stderr=stderr)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz?token=s3cret",
                                                timeout=5) as reply:
                        assert reply.status == 200
                        break
                except OSError:
                    assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
                    time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    assert out.read_text() == ""
    records = [json.loads(line) for line in err.read_text().splitlines()]
    requests = [r for r in records if r["message"] == "request"]
    assert requests and requests[-1]["path"] == "/healthz" and requests[-1]["status"] == 200
    assert any("Listening at" in r["message"] for r in records)  # gunicorn's own, same format
    assert "s3cret" not in err.read_text()
    assert os.path.exists(tmp_path / "state")
