"""What the state directory remembers about each machine, and about machines that ended.

Frozen dataclasses with `to_record()`/`from_record()`: the planner reasons about exactly
what is on disk. Unknown fields from a newer vcyclectl are kept in `extra` and written back,
so hosts can be upgraded one at a time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from vcyclectl.core.machinestate import MachineState


@dataclass(frozen=True)
class MachineRecord:
    """One machine vcyclectl created or adopted; written before the create call (intent)."""

    name: str
    space: str
    machinetype: str
    state: MachineState
    processors: int
    created_at: float
    flavor: str | None = None
    hs06: float = 0.0
    cloud_id: str | None = None
    started_at: float | None = None
    stopped_at: float | None = None
    zone: str | None = None
    spot: bool = False
    adopted: bool = False
    deleting_at: float | None = None
    message: str | None = None
    finished: bool = False
    price_per_hour: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is None or value is False:
                continue
            out[f.name] = value.value if isinstance(value, MachineState) else value
        return out

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> "MachineRecord":
        """Read back `to_record()`; hot (10,000s per pass), so it skips `__init__` and lets
        C-level dict and set operations do the work."""
        unknown = data.keys() - _RECORD_DEFAULTS.keys()
        if not _RECORD_REQUIRED <= data.keys():
            known = {k: v for k, v in data.items() if k not in unknown}
            return cls(extra={k: data[k] for k in unknown}, **known)
        values = {**_RECORD_DEFAULTS, **data}
        for key in unknown:
            del values[key]
        values["state"] = _STATES.get(values["state"], MachineState.UNKNOWN)
        values["extra"] = {k: data[k] for k in unknown} if unknown else {}
        obj = object.__new__(cls)
        obj.__dict__.update(values)
        return obj

    def with_changes(self, **changes: Any) -> "MachineRecord":
        if "state" in changes and not isinstance(changes["state"], MachineState):
            changes["state"] = _state(changes["state"])
        return dataclasses.replace(self, **changes)


_RECORD_REQUIRED = frozenset(("name", "space", "machinetype", "state", "processors",
                              "created_at"))
_RECORD_DEFAULTS: dict[str, Any] = {
    f.name: (f.default if f.default is not dataclasses.MISSING else None)
    for f in dataclasses.fields(MachineRecord) if f.name != "extra"}


_STATES = {s.value: s for s in MachineState}


def _state(value: Any) -> MachineState:
    if isinstance(value, MachineState):
        return value
    return _STATES.get(value, MachineState.UNKNOWN)


@dataclass(frozen=True)
class Report:
    """What a machine told us through its joboutputs: last heartbeat, shutdown message."""

    heartbeat_at: float | None = None
    shutdown_message: str | None = None


@dataclass(frozen=True)
class DrainMark:
    """An operator's `drain`: since when, why, by whom, and, for a drain scheduled ahead
    (`drain --at`), the time it takes hold.

    Immediate (`at` absent, every mark written before `--at` existed): no new machines from
    `since`, and machines end at `since + drain_grace_seconds`. Scheduled: new machines go
    on being made until `at`, every machine is told `at` as its MJF `shutdowntime`
    meanwhile, and from `at` nothing is made and machines end. `at` is written only when
    set, so older marks read the same; an older vcyclectl that ignores `at` drains at once,
    erring on the side of fewer machines.
    """

    target: str
    since: float
    reason: str = ""
    by: str = ""
    at: float | None = None

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"target": self.target, "since": self.since,
                               "reason": self.reason, "by": self.by}
        if self.at is not None:
            out["at"] = self.at
        return out

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> "DrainMark":
        at = data.get("at")
        return cls(target=str(data.get("target", "")), since=float(data.get("since", 0)),
                   reason=str(data.get("reason", "")), by=str(data.get("by", "")),
                   at=float(at) if at is not None else None)

    @property
    def starts_at(self) -> float:
        """When the drain takes hold: no new machines from then on."""
        return self.at if self.at is not None else self.since

    def in_force(self, now: float) -> bool:
        """True once new machines must no longer be made."""
        return now >= self.starts_at

    def shutdown_at(self, grace_seconds: float) -> float:
        """When a drained machine must be done (MJF `shutdowntime`; deleted then)."""
        return self.at if self.at is not None else self.since + grace_seconds


@dataclass(frozen=True)
class Drains:
    """Every drain mark that applies to one space."""

    space: DrainMark | None = None
    machinetypes: Mapping[str, DrainMark] = field(default_factory=dict)
    machines: Mapping[str, DrainMark] = field(default_factory=dict)

    def for_machinetype(self, machinetype: str) -> DrainMark | None:
        """The mark that stops this machinetype's creations first (space or machinetype)."""
        marks = [m for m in (self.space, self.machinetypes.get(machinetype)) if m is not None]
        return min(marks, key=lambda m: m.starts_at) if marks else None

    def for_machine(self, name: str, machinetype: str,
                    grace_seconds: float = 0.0) -> DrainMark | None:
        """The mark that ends this machine first, given its machinetype's grace."""
        marks = [m for m in (self.space, self.machinetypes.get(machinetype),
                             self.machines.get(name)) if m is not None]
        return min(marks, key=lambda m: m.shutdown_at(grace_seconds)) if marks else None
