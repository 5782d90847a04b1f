"""`drain TARGET --at TIME` end to end on the `local` cloud with a real `vcyclectl serve`:
the time shows in MJF from the moment it is scheduled, machines are still made before it
(and told it), none are made or kept from it on, and `undrain` cancels."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from vcyclectl.vm import tokens

from tests.e2e.test_serve import SPACE, cli, free_port, names, serve_factory, url, write_config

__all__ = ["serve_factory"]  # the fixture, used by name below

MACHINETYPES = """\
      lhcb:
        processors_limit: 2
        drain_grace_seconds: 600
        max_wallclock_seconds: 7200
"""


def drain_mark(tmp: Path) -> dict[str, Any]:
    path = tmp / "state" / "spaces" / SPACE / "drains" / "machinetype-lhcb.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def drained(config: Path) -> bool:
    rows = json.loads(cli(config, "status", "-o", "json").stdout)
    return bool(next(r for r in rows if r["machinetype"] == "lhcb")["drained"])


def shutdowntime(server: Any, tmp: Path, name: str) -> int:
    status, body = server.request("GET", url(name, "machinefeatures", "shutdowntime"),
                                  token=tokens.machine_token(tmp / "state", name))
    assert status == 200, body
    return int(body)


def test_a_scheduled_drain_shows_in_mjf_and_stops_replacement_at_its_time(
        tmp_path: Path, serve_factory: Any) -> None:
    port = free_port()
    config = write_config(tmp_path, port, MACHINETYPES)
    cli(config, "drain", f"{SPACE}/lhcb", "--at", "+4s", "--reason", "downtime")
    at = drain_mark(tmp_path)["at"]
    assert at > time.time()

    cli(config, "reconcile")  # before its time: machines are still made ...
    made = names(config)
    assert len(made) == 2
    server = serve_factory(config, port)
    for name in made:  # ... and each is told the drain's time as its shutdowntime
        assert shutdowntime(server, tmp_path, name) == int(at)
    shown = json.loads(cli(config, "inspect", made[0], "-o", "json").stdout)
    assert shown["draining"] is True and shown["drain_reason"] == "downtime"
    assert not drained(config)  # status: still making machines

    time.sleep(max(0.0, at - time.time()) + 0.2)
    cli(config, "reconcile")  # its time has come: machines end and none replace them
    assert names(config) == []
    assert drained(config)
    [plan] = json.loads(cli(config, "plan", "-o", "json").stdout)
    assert plan["outcome"] == "done"
    assert not [a for a in plan["actions"] if a["action"] == "create"]
    assert "lhcb: drained, no new machines" in plan["notes"]
    cli(config, "reconcile")
    assert names(config) == []

    cli(config, "undrain", f"{SPACE}/lhcb")
    cli(config, "reconcile")
    assert len(names(config)) == 2


def test_undrain_cancels_a_scheduled_drain_before_its_time(tmp_path: Path,
                                                           serve_factory: Any) -> None:
    port = free_port()
    config = write_config(tmp_path, port, MACHINETYPES)
    cli(config, "reconcile")
    [first, _] = names(config)
    server = serve_factory(config, port)
    wallclock_end = shutdowntime(server, tmp_path, first)
    cli(config, "drain", f"{SPACE}/lhcb", "--at", "+1h")
    assert shutdowntime(server, tmp_path, first) == int(drain_mark(tmp_path)["at"])
    assert shutdowntime(server, tmp_path, first) < wallclock_end
    cli(config, "drain", f"{SPACE}/lhcb", "--at", "+30m")  # rescheduled earlier
    assert abs(drain_mark(tmp_path)["at"] - (time.time() + 1800)) < 60
    cli(config, "undrain", f"{SPACE}/lhcb")
    assert shutdowntime(server, tmp_path, first) == wallclock_end


def test_bad_times_are_usage_errors(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port(), MACHINETYPES)
    for bad, says in (("tomorrow", "ISO 8601"), ("2001-01-01T00:00Z", "in the past")):
        proc = cli(config, "drain", f"{SPACE}/lhcb", "--at", bad, check=False)
        assert proc.returncode == 2 and "--at" in proc.stderr and says in proc.stderr


def test_an_immediate_drain_is_not_postponed_but_a_scheduled_one_can_be_brought_forward(
        tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port(), MACHINETYPES)
    cli(config, "drain", f"{SPACE}/lhcb", "--at", "+1h")
    proc = cli(config, "drain", f"{SPACE}/lhcb")  # now, after all
    assert "now holds at once" in proc.stderr and "at" not in drain_mark(tmp_path)
    proc = cli(config, "drain", f"{SPACE}/lhcb", "--at", "+2h")
    assert "already drained" in proc.stderr and "undrain first" in proc.stderr
    assert "at" not in drain_mark(tmp_path)  # an immediate drain is never put off
