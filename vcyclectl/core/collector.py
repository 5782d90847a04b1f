"""Holding off Python's cyclic garbage collector while a burst of long-lived objects is made.

A pass builds one small object per machine (listing, records, the planner's view) and frees
them all by reference counting when it ends; they hold no cycles. Meanwhile every few
hundred allocations the collector would scan them again, and each full collection walks
every live object: a third of the planner's time at 100,000 machines, and about 40 ms of a
no-op pass over 10,000 (issue 17). Held off, the collector runs again at the next
allocation threshold after the burst, so cyclic garbage made meanwhile (an SDK's, a
traceback's) is still collected, only later.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def paused() -> Iterator[None]:
    """The collector off inside the block, and back as it was after (nesting is fine)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
