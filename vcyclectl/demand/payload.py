"""What a source reports, and the small JSON object a `command` prints and a `url` serves
(docs/demand.md):

    {"waiting_processors": 96, "running_processors": 32}
    {"waiting_jobs": 12, "processors_per_job": 8, "running_jobs": 4}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: The most a command or URL may answer; a demand object is a few dozen bytes.
MAX_BYTES = 64 * 1024


class Unavailable(Exception):
    """The source gave no usable reading; the message says why (never a secret)."""


@dataclass(frozen=True)
class Counts:
    """Processors of work waiting (and running, when the source says)."""

    waiting: int
    running: int | None = None


def _count(obj: dict[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Unavailable(f"bad JSON: {key} must be a whole number >= 0, got {value!r}")
    return value


def parse(raw: bytes) -> Counts:
    """The counts in a demand object, or `Unavailable` naming what is wrong with it."""
    if len(raw) > MAX_BYTES:
        raise Unavailable(f"bad JSON: answer longer than {MAX_BYTES} bytes")
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Unavailable(f"bad JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise Unavailable(f"bad JSON: expected an object, got {type(obj).__name__}")
    waiting = _count(obj, "waiting_processors")
    running = _count(obj, "running_processors")
    per_job = _count(obj, "processors_per_job")
    jobs = _count(obj, "waiting_jobs")
    running_jobs = _count(obj, "running_jobs")
    if waiting is None and jobs is None:
        raise Unavailable("bad JSON: needs waiting_processors, or waiting_jobs (with "
                          "processors_per_job, default 1)")
    if waiting is None:
        waiting = (jobs or 0) * (per_job if per_job is not None else 1)
    if running is None and running_jobs is not None:
        running = running_jobs * (per_job if per_job is not None else 1)
    return Counts(waiting=waiting, running=running)
