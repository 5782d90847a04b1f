"""Machine/Job Features (WLCG MJF, HSF-TN-2016-02) values for one machine, pure.

A VM reads `$MACHINEFEATURES/KEY` and `$JOBFEATURES/KEY` (here URLs under
`FEEDBACK_URL/machines/SPACE/NAME/`) to learn its size, power and deadline. In vcyclectl
one VM is one job (the Vac/Vcycle convention), so machine and job values coincide:
- `total_cpu`, `log_cores`, `phys_cores`, `allocated_cpu`: the machine's processors (a VM
  cannot tell physical from logical cores, so both are the processor count, as in Vac);
- `jobslots`: 1, the whole VM is the job's;
- `hs06`, `hs06_job`: the machine's HEPSPEC06 (processors × `hs06_per_processor`);
- `shutdowntime`, `shutdowntime_job`: Unix time by which the job must have finished: the
  earlier of created_at + `max_wallclock_seconds` and, when drained, the drain mark's time
  + `drain_grace_seconds`, or the time of a drain scheduled ahead (`drain --at`), announced
  from the moment it is scheduled (the planner deletes the machine at that same instant);
- `grace_secs`: `drain_grace_seconds`, the notice a drain gives before `shutdowntime`;
- `wall_limit_secs`: `max_wallclock_seconds`; `cpu_limit_secs`: that × processors;
- `jobstart_secs`: when the machine started (created, until the cloud saw it running);
- `job_id`: the machine's name, unique in the state directory;
- `max_rss_bytes`, `max_swap_bytes`, `max_disk_bytes`: only when the record carries the
  flavor's `memory_mb` / `swap_mb` / `disk_gb`; MJF says a value that is not known is absent,
  so these answer 404 otherwise rather than a made-up number.

Pure: no I/O and no clock, so `serve` and tests compute the same answers from the same
record, machinetype and drain mark.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from vcyclectl.config import Machinetype
from vcyclectl.core.records import DrainMark, MachineRecord

MACHINE_KEYS = ("total_cpu", "hs06", "shutdowntime", "grace_secs", "jobslots", "phys_cores",
                "log_cores")
JOB_KEYS = ("allocated_cpu", "hs06_job", "wall_limit_secs", "cpu_limit_secs", "max_rss_bytes",
            "max_swap_bytes", "max_disk_bytes", "jobstart_secs", "shutdowntime_job", "job_id")
SECTIONS = {"machinefeatures": MACHINE_KEYS, "jobfeatures": JOB_KEYS}

MIB = 1024 * 1024
GIB = 1024 * MIB


def shutdown_time(rec: MachineRecord, mt: Machinetype, drain: DrainMark | None) -> int:
    """When the machine must be done: wallclock end, brought forward by a drain."""
    end = rec.created_at + mt.max_wallclock_seconds
    if drain is not None:
        end = min(end, drain.shutdown_at(mt.drain_grace_seconds))
    return int(math.floor(end))


def hs06_of(rec: MachineRecord, mt: Machinetype) -> float:
    return rec.hs06 if rec.hs06 > 0 else rec.processors * mt.hs06_per_processor


def features(rec: MachineRecord, mt: Machinetype, drain: DrainMark | None) -> dict[str, str]:
    """Every MJF key known for this machine, as the plain-text value a VM reads."""
    processors = max(1, rec.processors)
    hs06 = _number(hs06_of(rec, mt))
    shutdown = str(shutdown_time(rec, mt, drain))
    wall = int(mt.max_wallclock_seconds)
    out = {
        "total_cpu": str(processors),
        "hs06": hs06,
        "shutdowntime": shutdown,
        "grace_secs": str(int(mt.drain_grace_seconds)),
        "jobslots": "1",
        "phys_cores": str(processors),
        "log_cores": str(processors),
        "allocated_cpu": str(processors),
        "hs06_job": hs06,
        "wall_limit_secs": str(wall),
        "cpu_limit_secs": str(wall * processors),
        "jobstart_secs": str(int(rec.started_at or rec.created_at)),
        "shutdowntime_job": shutdown,
        "job_id": rec.name,
    }
    for key, field, unit in (("max_rss_bytes", "memory_mb", MIB),
                             ("max_swap_bytes", "swap_mb", MIB),
                             ("max_disk_bytes", "disk_gb", GIB)):
        size = _size(rec.extra, field)
        if size is not None:
            out[key] = str(int(size * unit))
    return out


def feature(section: str, key: str, rec: MachineRecord, mt: Machinetype,
            drain: DrainMark | None) -> str | None:
    """One value, or None when the key is not an MJF key of that section or not known."""
    if key not in SECTIONS.get(section, ()):
        return None
    return features(rec, mt, drain).get(key)


def _size(extra: Mapping[str, Any], key: str) -> float | None:
    value = extra.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return float(value)


def _number(value: float) -> str:
    """Integers without a fraction, others to three places: what MJF readers parse."""
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0")
