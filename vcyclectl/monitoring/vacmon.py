"""VacMon: the machine-status messages Vcycle sent, so a site's VacMon collector keeps its
view. As Vcycle did, one JSON datagram over UDP per machine that ended, to every
`vacmon_hostport` (`host:port`), with Vcycle's field names (`message_type: machine_status`,
VacQuery 01.02). Fire and forget: a collector that is down costs nothing but a log line."""

from __future__ import annotations

import json
import socket
import time
from typing import Any, Iterable, Mapping

from vcyclectl import __version__, log
from vcyclectl.config import Config
from vcyclectl.monitoring.fleet import hostname

VACQUERY_VERSION = "01.02"


def site_of(space: str) -> str:
    """Vcycle's default site name: the space name without its first label."""
    return space.split(".", 1)[1] if "." in space else space


def machine_message(entry: Mapping[str, Any], *, factory: str, now: float) -> dict[str, Any]:
    """One `finished.jsonl` line as Vcycle's `machine_status` message."""
    started, stopped = entry.get("started_at"), entry.get("stopped_at")
    wall = int(stopped - started) if isinstance(started, (int, float)) and \
        isinstance(stopped, (int, float)) else 0
    message: dict[str, Any] = {
        "message_type": "machine_status",
        "daemon_version": f"vcyclectl {__version__} reconcile",
        "vacquery_version": f"VacQuery {VACQUERY_VERSION}",
        "cookie": "0",
        "space": entry.get("space"),
        "site": site_of(str(entry.get("space", ""))),
        "factory": factory,
        "num_machines": 1,
        "time_sent": int(now),
        "machine": entry.get("name"),
        "state": "Failed" if str(entry.get("reason", "")).startswith("failed") else "Shut down",
        "uuid": entry.get("cloud_id") or entry.get("name"),
        "created_time": _int(entry.get("created_at")),
        "started_time": _int(started),
        "heartbeat_time": None,
        "num_processors": entry.get("processors"),
        "cpu_seconds": max(0, wall),
        "cpu_percentage": 100.0,
        "machinetype": entry.get("machinetype"),
    }
    if entry.get("hs06"):
        message["hs06"] = entry["hs06"]
    if entry.get("message"):
        message["shutdown_message"] = entry["message"]
        message["shutdown_time"] = _int(stopped)
    return message


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) else None


def send_finished(config: Config, entries: Iterable[Mapping[str, Any]]) -> int:
    """Send one message per ended machine to each collector; how many datagrams went."""
    targets = [_split(hp) for hp in config.vacmon_hostport]
    messages = [json.dumps(machine_message(e, factory=hostname(), now=time.time())).encode()
                for e in entries]
    sent = 0
    if not messages or not targets:
        return 0
    for host, port in targets:
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_DGRAM)[0]
            with socket.socket(family, kind, proto) as sock:
                for data in messages:
                    sock.sendto(data, address)
                    sent += 1
        except OSError as exc:
            log.warning("VacMon message not sent", collector=f"{host}:{port}", error=str(exc))
    return sent


def _split(hostport: str) -> tuple[str, int]:
    host, _, port = hostport.rpartition(":")
    return host, int(port)
