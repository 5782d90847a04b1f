"""What the state directory remembers about each machine, and about machines that ended.

Frozen records (the machine record a frozen msgspec struct, the rest dataclasses) with
`to_record()`/`from_record()`: the planner reasons about exactly what is on disk. Unknown
fields from a newer vcyclectl are kept in `extra` and written back, so hosts can be
upgraded one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import msgspec

from vcyclectl.core.machinestate import MachineState


NO_EXTRA: Mapping[str, Any] = MappingProxyType({})


class MachineRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One machine vcyclectl created or adopted; written before the create call (intent).

    A msgspec struct rather than a dataclass: a pass reads every record of its space from
    the journal, and msgspec decodes JSON straight into these (`decode_journal`), several
    times faster than `json` plus building objects (issue 17). `forbid_unknown_fields`
    makes a record with a field this version does not know fail that fast decode, so it
    takes `from_record`, which keeps the field in `extra`.
    """

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
    #: Fields from a newer vcyclectl; shared and read-only when there are none, which is
    #: nearly always (one empty dict per record would be 100,000 of them at 100,000).
    extra: Mapping[str, Any] = NO_EXTRA

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        for name in _RECORD_FIELDS:
            value = getattr(self, name)
            if value is None or value is False:
                continue
            out[name] = value.value if isinstance(value, MachineState) else value
        return out

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> "MachineRecord":
        """Read back `to_record()` from a parsed mapping: fields this version does not know
        are kept in `extra` (and written back), an unknown state reads as UNKNOWN."""
        unknown = data.keys() - _RECORD_DEFAULTS.keys()
        known = {k: v for k, v in data.items() if k not in unknown}
        if "state" in known:
            known["state"] = _state(known["state"])
        return cls(extra={k: data[k] for k in unknown}, **known)

    def with_changes(self, **changes: Any) -> "MachineRecord":
        if "state" in changes and not isinstance(changes["state"], MachineState):
            changes["state"] = _state(changes["state"])
        return msgspec.structs.replace(self, **changes)


#: The record's fields as written to the journal (all but `extra`, which is spread out).
_RECORD_FIELDS = tuple(f for f in MachineRecord.__struct_fields__ if f != "extra")
_RECORD_DEFAULTS: dict[str, Any] = {
    f.name: (None if f.required else f.default)
    for f in msgspec.structs.fields(MachineRecord) if f.name != "extra"}
class JournalLine(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A records journal line: {"put": record} or {"del": name}."""

    put: MachineRecord | None = None
    gone: str | None = msgspec.field(default=None, name="del")


_JOURNAL = msgspec.json.Decoder(JournalLine)


def decode_journal(data: bytes) -> list[JournalLine] | None:
    """A records journal's complete lines decoded straight into records; None when any
    line is not a plain current-version line (a torn line, a field from a newer version, a
    value of the wrong type), for the caller's careful path."""
    try:
        return _JOURNAL.decode_lines(data)
    except msgspec.DecodeError:  # ValidationError included
        return None


def decode_journal_line(line: bytes) -> JournalLine | None:
    """One journal line, as `decode_journal` does a whole journal."""
    try:
        return _JOURNAL.decode(line)
    except msgspec.DecodeError:
        return None


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
