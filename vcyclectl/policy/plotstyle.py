"""What the pictures share, so the status page, the schedule page and the `simulate` PNG
read alike: the colour-blind-safe palette, 1-2-5 axis ticks, and the order communities are
stacked in (priority at the bottom, backfill on top, labelled as backfill).

Here, below `monitoring/` in the layers, so that `policy/` (the schedule page, the PNG) and
`monitoring/` (the status page) take them from one place.
"""

from __future__ import annotations

import math
from typing import Iterable

from vcyclectl.config import Config

#: Okabe & Ito (2008), "Color Universal Design": colour-blind-safe, in a readable order.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000")
DASHES = ("", "6 3", "2 2", "8 3 2 3", "1 3", "10 4")
MAX_TICKS = 10


def nice_axis(peak: float, *, whole: bool = True) -> tuple[float, float]:
    """(top, step) of an axis from 0: step is 1, 2 or 5 times a power of ten (at least 1
    when `whole`: whole machines), at most MAX_TICKS steps, top the first multiple of step
    at or above the peak, and top <= 1.25 * peak whenever a 1-2-5 step allows it."""
    if peak <= 0:
        return 1.0, 1.0
    low = 0 if whole else math.floor(math.log10(peak)) - 2
    candidates = sorted(m * 10.0 ** e for e in range(low, low + 14) for m in (1, 2, 5))
    fallback: tuple[float, float] | None = None
    for step in candidates:
        top = math.ceil(peak / step - 1e-9) * step
        if top / step > MAX_TICKS:
            continue
        if top <= 1.25 * peak:
            return top, step
        if fallback is None:
            fallback = (top, step)
    assert fallback is not None
    return fallback


def stack_order(config: Config, communities: Iterable[str]) -> list[str]:
    """Communities bottom to top: highest priority first, backfill last (a machinetype in
    no community counts at priority 0)."""
    def key(name: str) -> tuple[bool, int, str]:
        community = config.communities.get(name)
        if community is None:
            return (False, 0, name)
        return (community.backfill, -community.priority, name)

    return sorted(communities, key=key)


def label(config: Config, community: str) -> str:
    """A community's legend label: backfill says so."""
    found = config.communities.get(community)
    return f"{community} (backfill)" if found is not None and found.backfill else community


def colours(communities: Iterable[str]) -> dict[str, str]:
    """One colour per community, by name order: the same community has the same colour on
    every picture of one configuration."""
    return {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(sorted(communities))}
