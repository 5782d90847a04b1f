"""One read-only snapshot of the fleet from the shared state directory, for the metrics,
the status page and `status`: per space and machinetype, machines by state, processors
against limits, target and actual share, backoff and drain, heartbeats, the last pass, the
lock holder, recent end reasons, and the budget lines.

The per-machinetype rows are the ones `status` prints (`machinetype_status`), so the page,
the metrics and the table never disagree; which machines count and whether a machinetype is
in backoff come from `core.rules`, as they do for the planner.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from vcyclectl.config import Config, Space
from vcyclectl.core import rules
from vcyclectl.core.machinestate import MachineState
from vcyclectl.core.records import Drains, MachineRecord
from vcyclectl.core.times import iso
from vcyclectl.state.files import read_lines
from vcyclectl.state.lock import holder_path, is_locked, read_holder
from vcyclectl.state.store import SpaceState, StateDir

#: How much of the end of each journal the page and the metrics read (events, finished):
#: the journals are append-only and may hold years; a week of a large fleet fits easily.
JOURNAL_TAIL_BYTES = 32 * 1024 * 1024
DAY = 86400.0
#: The end reasons (shutdown codes) shown and called out cover the last day.
END_CODES_SECONDS = DAY


def record_state(rec: MachineRecord) -> str:
    """The state shown for a record: `deleting` once a deletion was asked."""
    if rec.deleting_at is not None:
        return MachineState.DELETING.value
    return rec.state.value


def machinetype_status(space: Space, records: Mapping[str, MachineRecord],
                       backoff: Mapping[str, float], drains: Drains,
                       now: float) -> list[dict[str, Any]]:
    """The per-machinetype part of `status`, pure: which machines count against limits and
    whether a machinetype is in backoff come from `rules`, as they do for the planner."""
    counted = [r for r in records.values() if rules.record_counts(r, space, now)]
    hs06_total = sum(r.processors * _hs06(space, r) for r in counted)
    shares = rules.normalised_shares({n: mt.target_share
                                      for n, mt in space.machinetypes.items()})
    rows: list[dict[str, Any]] = []
    for name, mt in sorted(space.machinetypes.items()):
        mine = [r for r in records.values() if r.machinetype == name]
        states: dict[str, int] = {}
        for r in mine:
            states[record_state(r)] = states.get(record_state(r), 0) + 1
        used = sum(r.processors for r in counted if r.machinetype == name)
        until = rules.backoff_until(mt, backoff)
        rows.append({
            "space": space.name, "machinetype": name, "machines": len(mine),
            "states": states, "processors": used,
            "processors_limit": mt.processors_limit if mt.processors_limit is not None
            else space.processors_limit,
            "space_processors_limit": space.processors_limit,
            "target_share": round(shares[name], 4),
            "actual_share": round(used * mt.hs06_per_processor / hs06_total, 4)
            if hs06_total else 0.0,
            "backoff_until": iso(until) if until > now else None,
            "drained": _drained(drains, name, now),
        })
    return rows


def _drained(drains: Drains, machinetype: str, now: float) -> bool:
    """No new machines now: a drain scheduled ahead (`drain --at`) counts from its time."""
    mark = drains.for_machinetype(machinetype)
    return mark is not None and mark.in_force(now)


def _hs06(space: Space, r: MachineRecord) -> float:
    mt = space.machinetypes.get(r.machinetype)
    return mt.hs06_per_processor if mt else 1.0


@dataclass
class Heartbeats:
    """Of a machinetype's running machines that must send heartbeats: how many did within
    the limit, and when the newest arrived (through `serve`, or the local cloud)."""

    checked: int = 0
    fresh: int = 0
    latest: float | None = None


@dataclass
class SpaceView:
    name: str
    rows: list[dict[str, Any]]
    last_pass: dict[str, Any]
    lock: str
    drained: bool
    heartbeats: dict[str, Heartbeats]
    #: machinetype -> shutdown message code ("500", or "none") -> machines ended in a day
    end_codes: dict[str, Counter[str]] = field(default_factory=dict)
    #: (time, space, machinetype, +1 or -1) from the journals, oldest first, for the chart
    changes: list[tuple[float, str, int]] = field(default_factory=list)
    records: dict[str, MachineRecord] = field(default_factory=dict)


@dataclass
class Fleet:
    now: float
    spaces: list[SpaceView]
    budgets: list[dict[str, Any]]
    history_seconds: float


def snapshot(config: Config, spaces: Iterable[Space] | None = None, *, now: float | None = None,
             history_seconds: float = 0.0, budgets: bool = True,
             probe_locks: bool = True) -> Fleet:
    """Read the fleet. `history_seconds` > 0 also reads that much of the journals (end
    reasons, and the changes the chart needs); metrics read none of it.

    `probe_locks` takes and drops each space's lock to see whether a pass holds it, as
    `status` does; `serve` must not (a scrape every few seconds could make a pass skip a
    space), so it shows the last holder from the holder file instead."""
    now = time.time() if now is None else now
    root = StateDir(config.state_dir)
    views = [_space_view(space, root.space(space.name), now, history_seconds, probe_locks)
             for space in (config.spaces.values() if spaces is None else spaces)]
    budget_lines: list[dict[str, Any]] = []
    if budgets and config.budgets:
        from vcyclectl.policy.budget import budget_rows

        budget_lines = budget_rows(config, now)
    return Fleet(now=now, spaces=views, budgets=budget_lines, history_seconds=history_seconds)


def _space_view(space: Space, store: SpaceState, now: float, history: float,
                probe_locks: bool) -> SpaceView:
    records = store.records()
    drains = store.drains()
    view = SpaceView(
        name=space.name, rows=machinetype_status(space, records, store.backoff(), drains, now),
        last_pass=store.last_pass() or {}, lock=lock_text(store.path, probe_locks),
        drained=drains.space is not None, heartbeats=heartbeats(space, store, records, now),
        records=dict(records))
    if history > 0:
        since = now - history
        for entry in tail_lines(store.finished_file):
            ended = entry.get("finished_at")
            if not isinstance(ended, (int, float)) or ended < since:
                continue
            if ended >= now - END_CODES_SECONDS:
                code = shutdown_code(entry.get("message"))
                view.end_codes.setdefault(str(entry.get("machinetype")), Counter())[code] += 1
            view.changes.append((float(ended), str(entry.get("machinetype")), -1))
        for entry in tail_lines(store.events_file):
            when = entry.get("t")
            if entry.get("event") in ("create", "adopt") and isinstance(when, (int, float)) \
                    and when >= since:
                view.changes.append((float(when), str(entry.get("machinetype")), +1))
        view.changes.sort()
    return view


def lock_text(space_dir: Path, probe: bool = True) -> str:
    """`host:pid` of the pass holding the space's lock, `held`, or `free`; without `probe`,
    `last held by host:pid` (or `unknown`) from the holder file alone."""
    holder = read_holder(holder_path(space_dir))
    if not probe:
        return f"last held by {holder.host}:{holder.pid}" if holder else "unknown"
    if not is_locked(space_dir):
        return "free"
    return f"{holder.host}:{holder.pid}" if holder else "held"


def heartbeats(space: Space, store: SpaceState, records: Mapping[str, MachineRecord],
               now: float) -> dict[str, Heartbeats]:
    out = {name: Heartbeats() for name in space.machinetypes}
    files = {r.name: space.machinetypes[r.machinetype].heartbeat_name
             for r in records.values() if r.machinetype in space.machinetypes}
    reports = store.reports(files)
    for rec in records.values():
        mt = space.machinetypes.get(rec.machinetype)
        if mt is None:
            continue
        beat = reports[rec.name].heartbeat_at if rec.name in reports else None
        hb = out[mt.name]
        if beat is not None and (hb.latest is None or beat > hb.latest):
            hb.latest = beat
        if mt.heartbeat_checked and record_state(rec) == MachineState.RUNNING.value:
            hb.checked += 1
            if beat is not None and now - beat <= mt.heartbeat_limit:
                hb.fresh += 1
    return out


def shutdown_code(message: Any) -> str:
    """The Vac-style code of a shutdown message ("500 Problem ..." -> "500"), or "none"."""
    if not isinstance(message, str):
        return "none"
    head = message.strip().split(" ", 1)[0]
    return head if len(head) == 3 and head.isdigit() else "other"


def tail_lines(path: Path, most: int = JOURNAL_TAIL_BYTES) -> list[dict[str, Any]]:
    """The JSON lines in the last `most` bytes of a journal, starting at a whole line."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return []
    offset = 0
    if size > most:
        with open(path, "rb") as handle:
            handle.seek(size - most)
            handle.readline()  # the rest of a line cut in two
            offset = handle.tell()
    lines, _ = read_lines(path, offset)
    return [line for line in lines if isinstance(line, dict)]


def hostname() -> str:
    return os.uname().nodename
