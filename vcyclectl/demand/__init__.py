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

__all__ = ["Counts", "Unavailable", "gather", "has_sources", "last_readings", "read_source",
           "sources"]


def read_source(source: DemandSource) -> Counts:
    """Ask the source now (bounded by its `timeout_seconds`); `Unavailable` says why not.

    Each source's module is imported by name, only when a community uses it (as the cloud
    registry does), so the HTCondor bindings load only for an `htcondor` source."""
    import importlib

    module = importlib.import_module(f"vcyclectl.demand.{source.source}")
    counts: Counts = module.read(source)
    return counts


def sources(config: Config, space: Space) -> dict[str, tuple[str, DemandSource]]:
    """Per machinetype of `space` with a signal: (the label its reading goes by, the
    source). A machinetype's own `demand:` is its own ceiling; a community's is shared by
    its machinetypes in every space."""
    out: dict[str, tuple[str, DemandSource]] = {}
    for name, mt in sorted(space.machinetypes.items()):
        if mt.demand is not None:
            out[name] = (name, mt.demand)
            continue
        for community in config.communities.values():
            if community.demand is not None and community.covers(space.name, name):
                out[name] = (community.name, community.demand)
    return out


def has_sources(config: Config, space: Space) -> bool:
    return any(c.demand is not None for c in config.communities.values()) or any(
        mt.demand is not None for mt in space.machinetypes.values())


def gather(config: Config, space: Space,
           clock: Callable[[], float] = time.time) -> dict[str, DemandReading]:
    """The readings for one pass over `space`: per machinetype with a signal, its reading
    (read at most once per `max_age_seconds` by all spaces and hosts together)."""
    out: dict[str, DemandReading] = {}
    by_label: dict[str, DemandReading] = {}
    for name, (label, source) in sources(config, space).items():
        if label not in by_label:
            by_label[label] = cached_reading(Path(config.state_dir), label, source,
                                             read_source, clock)
        out[name] = by_label[label]
    return out


def last_readings(config: Config, space: Space, now: float) -> dict[str, DemandReading]:
    """What `status` shows: per machinetype, its last shared reading, from the state
    directory only (a status never queries a workload system)."""
    from vcyclectl.demand.cache import stored_entry, to_reading

    return {name: to_reading(label, source, stored_entry(Path(config.state_dir), source) or {
                "unavailable": "not read yet"}, now)
            for name, (label, source) in sources(config, space).items()}
