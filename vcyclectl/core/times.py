"""How times are shown: one format for every command, file and report."""

from __future__ import annotations

import time


def iso(timestamp: float | None) -> str | None:
    """ISO 8601 in UTC, second precision, for scripts and people alike."""
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def parse_when(text: str, now: float) -> float:
    """A time an operator typed, as a Unix timestamp: `+2h`, `+1h30m`, `+90s`, `+1d`
    (relative to `now`), ISO 8601 (`2026-12-01T06:00Z`, `2026-12-01 06:00+01:00`; without an
    offset it is UTC, the zone every vcyclectl time is shown in), or a Unix timestamp (what
    Vcycle's `shutdown_time` held). ValueError, saying what is accepted, otherwise."""
    import re
    from datetime import datetime, timezone

    value = text.strip()
    relative = re.fullmatch(r"\+((?:\d+(?:\.\d+)?[smhd])+)", value)
    if relative:
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
        return now + sum(float(n) * units[u]
                         for n, u in re.findall(r"(\d+(?:\.\d+)?)([smhd])", relative.group(1)))
    if re.fullmatch(r"\d{9,11}(\.\d+)?", value):
        return float(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a time: give ISO 8601 (2026-12-01T06:00Z), a "
                         "relative time (+2h, +1h30m, +90s, +1d) or a Unix timestamp") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()
