"""Whose turn it is: several hosts run `reconcile` from cron against one state directory,
and each space needs one pass per interval, not one per host.

Two rules, both cheap and both decided from the shared state directory:
- a space whose last pass (by any host) finished less than `min_pass_interval_seconds`
  ago is skipped; this is read with the space's lock held, so two hosts can never both
  find it due and both pass it (the second one to get the lock sees the first one's end);
- each invocation visits the spaces in its own shuffled order (seeded by host, process and
  minute), so hosts started by the same cron tick spread over the spaces instead of all
  queueing behind the first one's lock.
"""

from __future__ import annotations

import os
import random
import socket
import time
from typing import Any, Mapping, Sequence, TypeVar

T = TypeVar("T")


def too_soon(last_pass: Mapping[str, Any] | None, interval: float, now: float) -> str | None:
    """Why this space is not due yet (its last pass finished under `interval` ago), or None.

    Any finished pass counts, whatever its outcome (a failing cloud is asked once per
    interval too, not once per host), except one that ran out of `max_pass_seconds`: it
    was cut short, and the next host carries on at once. A `finished_at` in the future by
    more than the interval (a host whose clock was far ahead wrote it) is not trusted: the
    space is due, so a bad clock can delay a space by one interval at most, never stop it.
    """
    if interval <= 0 or not last_pass or last_pass.get("deadline_passed"):
        return None  # a pass cut short by its deadline hands over at once
    finished = last_pass.get("finished_at")
    if not isinstance(finished, (int, float)) or isinstance(finished, bool):
        return None
    age = now - float(finished)
    if age >= interval or age < -interval:
        return None
    host = last_pass.get("host") or "another host"
    return (f"last pass finished {max(age, 0.0):.0f}s ago on {host} "
            f"(min_pass_interval_seconds {interval:g}; --force passes anyway)")


def visiting_order(items: Sequence[T], *, host: str | None = None, pid: int | None = None,
                   now: float | None = None) -> list[T]:
    """`items` shuffled by a seed of this host, this process and the current minute."""
    seed = (f"{host if host is not None else socket.gethostname()}:"
            f"{pid if pid is not None else os.getpid()}:"
            f"{int((now if now is not None else time.time()) // 60)}")
    order = list(items)
    random.Random(seed).shuffle(order)
    return order
