"""When each community has work, for `simulate` and `schedule`: from a demand profile
(YAML), from random bursts, or from the announced campaigns; and how much of it is waiting
(a queue-length model), which `simulate --signals` hands the planner as demand readings."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from vcyclectl.config import Config, parse_when

DAY = 86400.0
#: Waiting work of a community with no `levels:` entry: more than any space could give.
UNLIMITED = 1_000_000


@dataclass(frozen=True)
class Demand:
    """When each community has work: `always` ones always, others inside their windows."""

    windows: Mapping[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    always: frozenset[str] = frozenset()
    #: Processors of work a community offers while it has work (the queue-length model).
    levels: Mapping[str, int] = field(default_factory=dict)

    def has_work(self, community: str, t: float) -> bool:
        if community in self.always:
            return True
        return any(a <= t < b for a, b in self.windows.get(community, ()))

    def waiting(self, community: str, t: float, running: int) -> int:
        """Processors of work waiting at `t`: inside a window, what the community offers
        (`levels`, else without bound) beyond what it already runs; outside, none."""
        if not self.has_work(community, t):
            return 0
        return max(0, self.levels.get(community, UNLIMITED) - running)


def load_demand(path: Path, start: float, end: float) -> Demand:
    """Read a demand profile (YAML; examples/iris-demand.yaml):

        always: [lhcb]
        windows:
          ska: [{start: 2026-12-03, end: 2026-12-09}]
        bursts:                       # or random bursts, reproducible by seed
          lsst: {mean_gap_days: 9, mean_length_days: 3, seed: 2}
        levels:                       # processors of work offered while it has work
          ska: 160                    # (default: more than any space gives)
    """
    import yaml

    from vcyclectl.errors import ConfigError

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read demand profile: {exc}", file=str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError("a demand profile is a mapping", file=str(path))
    windows: dict[str, list[tuple[float, float]]] = {}
    for community, entries in (data.get("windows") or {}).items():
        for entry in entries or []:
            windows.setdefault(str(community), []).append(
                (parse_when(str(entry["start"])), parse_when(str(entry["end"]), end=True)))
    for community, spec in (data.get("bursts") or {}).items():
        windows.setdefault(str(community), []).extend(bursts(
            start, end, float(spec.get("mean_gap_days", 10)),
            float(spec.get("mean_length_days", 3)), int(spec.get("seed", 0))))
    levels = data.get("levels") or {}
    if not isinstance(levels, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in levels.values()):
        raise ConfigError("levels: processors per community, whole numbers >= 0",
                          file=str(path), key="levels")
    return Demand(windows={k: tuple(sorted(v)) for k, v in windows.items()},
                  always=frozenset(str(c) for c in data.get("always") or ()),
                  levels={str(k): int(v) for k, v in levels.items()})


def bursts(start: float, end: float, mean_gap_days: float, mean_length_days: float,
           seed: int) -> list[tuple[float, float]]:
    """Bursty demand: exponential gaps and lengths, the same for the same seed."""
    rng = random.Random(seed)
    out: list[tuple[float, float]] = []
    t = start + rng.expovariate(1 / mean_gap_days) * DAY
    while t < end:
        length = max(0.25, rng.expovariate(1 / mean_length_days)) * DAY
        out.append((t, min(end, t + length)))
        t += length + rng.expovariate(1 / mean_gap_days) * DAY
    return out


def demand_from_campaigns(config: Config) -> Demand:
    """The published plan's assumption: backfill always has work, the others inside their
    campaigns (what communities tell us ahead is all we know of their future work)."""
    windows: dict[str, list[tuple[float, float]]] = {}
    for campaign in config.campaigns:
        windows.setdefault(campaign.community, []).append((campaign.start_at, campaign.end_at))
    return Demand(windows={k: tuple(v) for k, v in windows.items()},
                  always=frozenset(n for n, c in config.communities.items() if c.backfill))
