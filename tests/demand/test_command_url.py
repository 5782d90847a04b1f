"""The `command` and `url` demand sources end to end: `vcyclectl reconcile` and `plan` on the
`local` cloud, reading a real script and a real HTTP server on loopback. Good readings steer
the plan in one pass; a timeout, bad JSON, a refused token or a missing token file give a
clear reason in the plan, exit 0, and never delete a machine."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import Run

VC = Callable[..., Run]
TOKEN = "s3cret-demand-token-0123456789"


def config(demand: str | None, *, fizzle: int = 600) -> str:
    """ska (priority, its demand read from `demand`) and lhcb (backfill) on 4-CPU machines."""
    return f"""\
state_dir: state
defaults:
  backoff_seconds: 600
  fizzle_seconds: {fizzle}
spaces:
  cloud.local:
    cloud: local
    processors_limit: 40
    local:
      processors: 100
      boot_seconds: 0
      job_seconds: 3600
      no_work_probability: 0
      flavors: [{{name: four, processors: 4}}]
    machinetypes:
      ska: {{flavors: [four]}}
      lhcb: {{flavors: [four]}}
communities:
  ska:
    machinetypes: [ska]
    priority: 10
{f"    demand: {demand}" if demand else ""}
  lhcb: {{machinetypes: [lhcb], backfill: true, make_room: delete}}
"""


def script(tmp_path: Path, body: str, name: str = "queue.sh") -> Path:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def plan_json(vc: VC, cfg: Path) -> dict[str, object]:
    result = vc("--config", cfg, "plan", "-o", "json")
    assert result.code == 0, result.err
    return dict(json.loads(result.out)[0])


def decided(shown: dict[str, object]) -> list[tuple[str, str, str]]:
    """A plan's actions without the random names of machines it would create."""
    return sorted((str(a["action"]), str(a["machinetype"]),
                   "" if a["action"] == "create" else str(a["name"]))
                  for a in shown["actions"])  # type: ignore[attr-defined]


def fleet(vc: VC, cfg: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in json.loads(vc("--config", cfg, "list", "-o", "json").out):
        out.setdefault(str(m["machinetype"]), []).append(str(m["name"]))
    return out


def test_command_source_gives_the_waiting_work_in_one_pass_then_nothing_when_drained(
        vc: VC, write_config: Callable[..., Path], tmp_path: Path) -> None:
    queue = tmp_path / "waiting"
    queue.write_text("12")
    cmd = script(tmp_path, f'echo "{{\\"waiting_processors\\": $(cat {queue}), '
                           f'\\"running_processors\\": 4}}"')
    cfg = write_config(config(f"{{source: command, argv: [{cmd}], max_age_seconds: 0}}"))
    assert vc("--config", cfg, "reconcile").code == 0
    first = fleet(vc, cfg)
    assert len(first["ska"]) == 3  # 12 CPUs on 4-CPU machines, in one pass
    assert len(first["lhcb"]) == 7  # backfill takes the rest
    shown = plan_json(vc, cfg)
    assert shown["demand"]["ska"]["waiting_processors"] == 12  # type: ignore[index]
    assert shown["demand"]["ska"]["age_seconds"] < 60  # type: ignore[index]
    assert ("ska: command: 12 CPUs waiting from queue.sh; 12 processors on their way: no "
            "more machines") in shown["notes"]  # they boot: not asked for again

    queue.write_text("0")  # the queue drained
    shown = plan_json(vc, cfg)
    assert "ska: command: 0 CPUs waiting from queue.sh: no new machines" in shown["notes"]
    assert vc("--config", cfg, "reconcile").code == 0
    assert fleet(vc, cfg)["ska"] == first["ska"]  # none new, none deleted

    status = json.loads(vc("--config", cfg, "status", "-o", "json").out)
    ska = next(r for r in status if r["machinetype"] == "ska")
    assert ska["demand"]["waiting_processors"] == 0 and ska["demand"]["age_seconds"] >= 0


def test_shared_reading_is_reused_until_max_age(
        vc: VC, write_config: Callable[..., Path], tmp_path: Path) -> None:
    count = tmp_path / "count"
    cmd = script(tmp_path, f'echo x >> {count}; echo \'{{"waiting_jobs": 2, '
                           f'"processors_per_job": 8}}\'')
    cfg = write_config(config(f"{{source: command, argv: [{cmd}], max_age_seconds: 3600}}"))
    assert vc("--config", cfg, "reconcile").code == 0
    for _ in range(2):
        assert plan_json(vc, cfg)["demand"]["ska"]["waiting_processors"] == 16  # type: ignore[index]
    assert count.read_text().count("x") == 1  # one read per interval, whoever asks
    cached = list((tmp_path / "state" / "demand").glob("command-*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text())["waiting"] == 16


@pytest.mark.parametrize("body, reason", [
    ("sleep 30; echo '{\"waiting_processors\": 4}'", "slow.sh: timed out after 0.5s"),
    ("echo 'not json'", "slow.sh: bad JSON: Expecting value"),
    ("echo '{\"waiting_processors\": -3}'",
     "slow.sh: bad JSON: waiting_processors must be a whole number >= 0, got -3"),
    ("echo oops >&2; exit 3", "slow.sh: exited with 3: oops"),
])
def test_a_failing_command_falls_back_to_probing_without_deleting(
        vc: VC, write_config: Callable[..., Path], tmp_path: Path, body: str,
        reason: str) -> None:
    good = script(tmp_path, "echo '{\"waiting_processors\": 8}'", "good.sh")
    cfg = write_config(config(f"{{source: command, argv: [{good}], max_age_seconds: 0}}"))
    assert vc("--config", cfg, "reconcile").code == 0
    before = fleet(vc, cfg)
    bad = script(tmp_path, body, "slow.sh")
    cfg = write_config(config(f"{{source: command, argv: [{bad}], max_age_seconds: 0, "
                              "timeout_seconds: 0.5}"))
    started = time.monotonic()
    shown = plan_json(vc, cfg)
    assert time.monotonic() - started < 20  # the sleeping script was killed, not waited for
    assert shown["demand"]["ska"]["unavailable"].startswith(reason)  # type: ignore[index]
    assert any(n.startswith(f"ska: no demand signal (command from slow.sh: {reason}")
               and n.endswith("probing for work as without one") for n in shown["notes"])
    today = plan_json(vc, write_config(config(None), "without-demand.yaml"))
    assert decided(shown) == decided(today)  # exactly today's probing, nothing else deleted
    assert not [a for a in shown["actions"] if a["machinetype"] == "ska" and  # type: ignore[index]
                a["action"] == "delete"]
    assert vc("--config", cfg, "reconcile").code == 0
    after = fleet(vc, cfg)
    assert set(before["ska"]) <= set(after.get("ska", []))
    assert set(before["lhcb"]) <= set(after.get("lhcb", []))


# -- url --------------------------------------------------------------------------------------
@dataclass
class Served:
    """What the test server answers, and what it was asked."""

    body: bytes = b'{"waiting_processors": 20}'
    delay: float = 0.0
    seen_auth: list[str] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[tuple[str, Served]]:
    served = Served()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            served.seen_auth.append(self.headers.get("Authorization", ""))
            time.sleep(served.delay)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.send_response(401)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(served.body)

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a client that gave up (the timeout case) is what the test wants

    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/demand/ska", served
    finally:
        httpd.shutdown()
        httpd.server_close()


def url_config(url: str, token_file: Path, **extra: object) -> str:
    more = "".join(f", {k}: {v}" for k, v in extra.items())
    return config(f"{{source: url, url: '{url}', token_file: {token_file}, "
                  f"max_age_seconds: 0{more}}}")


def test_url_source_with_a_bearer_token_steers_the_plan(
        vc: VC, write_config: Callable[..., Path], tmp_path: Path,
        server: tuple[str, Served]) -> None:
    url, served = server
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    cfg = write_config(url_config(url, token))
    result = vc("--config", cfg, "reconcile")
    assert result.code == 0
    assert len(fleet(vc, cfg)["ska"]) == 5  # 20 CPUs waiting
    assert served.seen_auth[-1] == f"Bearer {TOKEN}"
    shown = plan_json(vc, cfg)
    assert shown["demand"]["ska"]["source"] == "url"  # type: ignore[index]
    assert TOKEN not in json.dumps(shown) and TOKEN not in result.out + result.err


def test_url_failures_are_reasons_not_crashes(
        vc: VC, write_config: Callable[..., Path], tmp_path: Path,
        server: tuple[str, Served]) -> None:
    url, served = server
    token = tmp_path / "token"
    token.write_text(TOKEN)
    cfg = write_config(url_config(url, token))
    assert vc("--config", cfg, "reconcile").code == 0
    before = fleet(vc, cfg)

    today = decided(plan_json(vc, write_config(config(None), "without-demand.yaml")))

    def reason(cfg: Path) -> str:
        shown = plan_json(vc, cfg)
        assert decided(shown) == today  # a failing source: today's plan, no other deletion
        return str(shown["demand"]["ska"]["unavailable"])  # type: ignore[index]

    missing = tmp_path / "no-such-token"
    assert reason(write_config(url_config(url, missing), "missing.yaml")).startswith(
        f"cannot read token_file {missing}: No such file or directory")
    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-the-token")
    assert reason(write_config(url_config(url, wrong), "wrong.yaml")).startswith("HTTP 401")
    served.body = b"<html>busy</html>"
    assert reason(cfg).startswith("bad JSON")
    served.body, served.delay = b'{"waiting_processors": 4}', 3.0
    assert reason(write_config(url_config(url, token, timeout_seconds=0.5),
                               "slow.yaml")).startswith(
        "timed out after 0.5s")
    result = vc("--config", tmp_path / "missing.yaml", "reconcile")
    assert result.code == 0 and TOKEN not in result.out + result.err
    after = fleet(vc, cfg)
    assert set(before["ska"]) <= set(after["ska"])


def test_bad_demand_blocks_are_config_errors_with_file_line_and_key(
        vc: VC, write_config: Callable[..., Path]) -> None:
    cases = [
        ("{source: command}", "communities.ska.demand.argv", "needs argv"),
        ("{source: url, url: 'http://example.org/x', token_file: t}",
         "communities.ska.demand.url", "only over https://"),
        ("{source: slurm, partiton: euclid}", "communities.ska.demand.partiton",
         "did you mean 'partition'"),
        ("{source: slurm, argv: [x]}", "communities.ska.demand.argv", "for a command source"),
        ("{source: lsf}", "communities.ska.demand.source", "must be"),
        ("{source: command, argv: [x], timeout_seconds: 0}",
         "communities.ska.demand.timeout_seconds", "at least 0.1"),
    ]
    for block, key, words in cases:
        cfg = write_config(config(block))
        result = vc("--config", cfg, "config", "check")
        assert result.code == 2, (block, result.out, result.err)
        assert key in result.err and words in result.err and "vcyclectl.yaml:" in result.err


def test_a_machinetype_of_its_own_with_a_signal_and_no_communities(
        vc: VC, write_config: Callable[..., Path], tmp_path: Path) -> None:
    cmd = script(tmp_path, "echo '{\"waiting_processors\": 12}'")
    cfg = write_config(f"""\
state_dir: state
spaces:
  cloud.local:
    cloud: local
    processors_limit: 40
    local: {{processors: 100, boot_seconds: 0, job_seconds: 3600, no_work_probability: 0,
             flavors: [{{name: four, processors: 4}}]}}
    machinetypes:
      ska: {{flavors: [four], target_share: 10,
             demand: {{source: command, argv: [{cmd}], max_age_seconds: 0}}}}
      other: {{flavors: [four]}}
""")
    assert vc("--config", cfg, "reconcile").code == 0
    made = fleet(vc, cfg)
    assert len(made["ska"]) == 3 and len(made["other"]) == 7  # its share would be 36
    shown = plan_json(vc, cfg)
    assert shown["demand"]["ska"]["waiting_processors"] == 12  # type: ignore[index]
    status = json.loads(vc("--config", cfg, "status", "-o", "json").out)
    assert next(r for r in status if r["machinetype"] == "ska")["demand"]["source"] == "command"
    assert "demand" not in next(r for r in status if r["machinetype"] == "other")
