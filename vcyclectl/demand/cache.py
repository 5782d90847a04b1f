"""One reading per source per `max_age_seconds`, shared by every space and host through the
state directory: `STATE_DIR/demand/SOURCE-KEY.json` (docs/state.md), written atomically.

A failed read is kept too (for at most `FAILURE_REUSE_SECONDS`), so a source that times out
costs one timeout per interval, not one per space per pass; the last good reading is kept
beside it so the plan can say how old the last thing the source said is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from vcyclectl import log
from vcyclectl.config.demand import DemandSource
from vcyclectl.core.provisioning import DemandReading
from vcyclectl.demand.payload import Counts, Unavailable
from vcyclectl.state.files import read_json, write_json

FORMAT_VERSION = 1
#: A failure is re-tried after this long even when `max_age_seconds` is longer.
FAILURE_REUSE_SECONDS = 60.0
_MAX_REASON = 300


def cache_file(state_dir: Path, source: DemandSource) -> Path:
    return state_dir / "demand" / f"{source.key}.json"


def where(source: DemandSource) -> str:
    """Where the signal comes from, as plan reasons say it ("in partition euclid")."""
    if source.source == "slurm":
        parts = [f"in partition {source.partition}" if source.partition else "",
                 f"for account {source.account}" if source.account else ""]
        return " ".join(p for p in parts if p)
    if source.source == "htcondor":
        return f"in schedd {source.schedd}" if source.schedd else "in the local schedd"
    if source.source == "command":
        return f"from {os.path.basename(source.argv[0])}"
    from urllib.parse import urlsplit

    return f"from {urlsplit(source.url or '').hostname}"


def to_reading(community: str, source: DemandSource, stored: dict[str, Any],
               now: float) -> DemandReading:
    """The planner's view of a stored entry: a failure, or a reading with its age."""
    reason = str(stored.get("unavailable") or "")
    if reason:
        good = stored.get("last_good_at")
        if isinstance(good, (int, float)):
            reason += f"; last good reading {now - good:.0f}s ago"
    return DemandReading(
        community=community, source=source.source, where=where(source),
        taken_at=float(stored.get("taken_at", 0.0)), max_age_seconds=source.max_age_seconds,
        waiting=int(stored.get("waiting", 0)), running=stored.get("running"),
        unavailable=reason, headroom=source.headroom,
        headroom_processors=source.headroom_processors, join_seconds=source.join_seconds)


def stored_entry(state_dir: Path, source: DemandSource) -> dict[str, Any] | None:
    """The last entry any host wrote for this source (None if none, or unreadable)."""
    try:
        value = read_json(cache_file(state_dir, source))
    except OSError:
        return None
    if not isinstance(value, dict) or value.get("format_version") != FORMAT_VERSION:
        return None
    return value


def cached_reading(state_dir: Path, community: str, source: DemandSource,
                   read: Callable[[DemandSource], Counts],
                   clock: Callable[[], float]) -> DemandReading:
    """The reading for this pass: the shared one while it is young enough, else a new read
    (kept for the others). Never raises: a failure is a reading that says why."""
    now = clock()
    stored = stored_entry(state_dir, source)
    if stored is not None:
        age = now - float(stored.get("taken_at", 0.0))
        reuse = source.max_age_seconds if not stored.get("unavailable") else \
            min(source.max_age_seconds, FAILURE_REUSE_SECONDS)
        if 0 <= age < reuse:
            return to_reading(community, source, stored, now)
    entry: dict[str, Any] = {"format_version": FORMAT_VERSION, "source": source.source,
                             "where": where(source)}
    try:
        counts = read(source)
        entry.update(taken_at=clock(), waiting=counts.waiting, running=counts.running,
                     last_good_at=clock())
    except Unavailable as exc:
        entry.update(taken_at=clock(), unavailable=str(exc)[:_MAX_REASON])
    except Exception as exc:  # noqa: BLE001 - a source's bug must not stop the pass
        entry.update(taken_at=clock(),
                     unavailable=f"{type(exc).__name__}: {exc}"[:_MAX_REASON])
    if entry.get("unavailable"):
        log.warning("demand source unavailable", community=community, source=source.source,
                    reason=entry["unavailable"])
        if stored is not None and stored.get("last_good_at") is not None:
            entry["last_good_at"] = stored["last_good_at"]
            entry["waiting"], entry["running"] = stored.get("waiting", 0), stored.get("running")
    try:
        write_json(cache_file(state_dir, source), entry)
    except OSError as exc:  # a read-only share: this pass still uses what it read
        log.warning("demand reading not cached", community=community, error=str(exc))
    return to_reading(community, source, entry, clock())
