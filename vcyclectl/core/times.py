"""How times are shown: one format for every command, file and report."""

from __future__ import annotations

import time


def iso(timestamp: float | None) -> str | None:
    """ISO 8601 in UTC, second precision, for scripts and people alike."""
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
