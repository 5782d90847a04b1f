"""Demand signals: how much of a community's work is waiting, read from its workload
system (docs/demand.md). One module per source (`slurm`, `htcondor`, `command`, `url`), the
documented JSON object the last two print (`payload`), and the reading shared by every
space and host through the state directory (`cache`). `gather` is what a pass calls; it
never raises: a source that fails gives a reading that says why, and the planner probes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from vcyclectl.config import Config, Space
from vcyclectl.config.demand import DemandSource
from vcyclectl.core.provisioning import DemandReading
from vcyclectl.demand.cache import cached_reading
from vcyclectl.demand.payload import Counts, Unavailable

__all__ = ["Counts", "Unavailable", "gather", "last_readings", "read_source"]


def read_source(source: DemandSource) -> Counts:
    """Ask the source now (bounded by its `timeout_seconds`); `Unavailable` says why not.

    Each source's module is imported by name, only when a community uses it (as the cloud
    registry does), so the HTCondor bindings load only for an `htcondor` source."""
    import importlib

    module = importlib.import_module(f"vcyclectl.demand.{source.source}")
    counts: Counts = module.read(source)
    return counts


def gather(config: Config, space: Space,
           clock: Callable[[], float] = time.time) -> dict[str, DemandReading]:
    """The readings for one pass over `space`: per machinetype of a community with a
    `demand:` block, that community's reading (read at most once per `max_age_seconds` by
    all spaces and hosts together)."""
    out: dict[str, DemandReading] = {}
    by_community: dict[str, DemandReading] = {}
    for name in sorted(space.machinetypes):
        for community in config.communities.values():
            if community.demand is None or not community.covers(space.name, name):
                continue
            if community.name not in by_community:
                by_community[community.name] = cached_reading(
                    Path(config.state_dir), community.name, community.demand, read_source,
                    clock)
            out[name] = by_community[community.name]
    return out


def last_readings(config: Config, space: Space, now: float) -> dict[str, DemandReading]:
    """What `status` shows: per machinetype, its community's last shared reading, from the
    state directory only (a status never queries a workload system)."""
    from vcyclectl.demand.cache import stored_entry, to_reading

    out: dict[str, DemandReading] = {}
    for name in space.machinetypes:
        for community in config.communities.values():
            if community.demand is None or not community.covers(space.name, name):
                continue
            stored = stored_entry(Path(config.state_dir), community.demand)
            out[name] = to_reading(community.name, community.demand, stored or {
                "unavailable": "not read yet"}, now)
    return out
