"""The shared vocabulary of every layer: machines, their states, actions and plans.

Plain frozen dataclasses with `to_record()`/`from_record()` so that what the state directory
holds and what the planner reasons about are the same values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping

from vcyclectl.core.machinestate import MachineState

__all__ = ["MachineState", "Flavor", "MachineSpec", "CloudMachine", "ActionKind", "Action",
           "Plan"]


@dataclass(frozen=True)
class Flavor:
    """A size a cloud offers. `price_per_hour` is None when unknown; `currency` is the
    price's ISO 4217 code, None for the currency the configuration declares."""

    name: str
    processors: int
    memory_mb: int | None = None
    price_per_hour: float | None = None
    spot: bool = False
    currency: str | None = None


@dataclass(frozen=True)
class MachineSpec:
    """Everything a driver needs to create one machine; the name makes create idempotent."""

    name: str
    space: str
    machinetype: str
    flavor: Flavor
    image: str | None
    user_data: str
    state_id: str
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def processors(self) -> int:
        return self.flavor.processors


#: `CloudMachine.ended_by`: who ended a machine that vcyclectl did not delete (the rule
#: that decides what is an abort is `core.rules.end_is_abort`).
END_VM = "vm"        # the VM shut itself down (EC2 Client.InstanceInitiatedShutdown)
END_API = "api"      # someone stopped or deleted it through the cloud's API
END_START = "start"  # it never started (EC2 Server.InsufficientInstanceCapacity, …)
END_CLOUD = "cloud"  # the provider (scheduled retirement, host failure), not spot


@dataclass(frozen=True)
class CloudMachine:
    """One machine as the cloud reports it now.

    `heartbeat_at` and `shutdown_message` are filled only by clouds whose VMs report through
    the driver itself (the simulated `local` cloud); real VMs report through the state
    directory's joboutputs (`vcyclectl serve`).
    """

    id: str
    name: str
    space: str
    machinetype: str
    state: MachineState
    processors: int
    created_at: float | None = None
    started_at: float | None = None
    stopped_at: float | None = None
    flavor: str | None = None
    zone: str | None = None
    addresses: tuple[str, ...] = ()
    spot: bool = False
    preempted: bool = False
    state_reason: str | None = None
    #: Who ended a stopped or gone machine, when the cloud says (`core.rules.END_*`): the VM
    #: itself, someone through the cloud's API, a failed start, or the provider. None: the
    #: cloud does not say (a stop is then judged by its message and age, a disappearance is
    #: someone else's deletion). Only the VM's own end or a failed start is an abort.
    ended_by: str | None = None
    heartbeat_at: float | None = None
    shutdown_message: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


class ActionKind(str, Enum):
    CREATE = "create"
    DELETE = "delete"
    ADOPT = "adopt"
    FORGET = "forget"
    UPDATE = "update"


@dataclass(frozen=True)
class Action:
    """One decision of the planner, with the human reason shown by `plan`.

    `message` is the Vac-style shutdown message vcyclectl writes for a machine it ends
    (e.g. "700 Exceeded max_wallclock_seconds"); `abort` says this end counts for backoff.
    """

    kind: ActionKind
    name: str
    machinetype: str
    reason: str
    processors: int = 0
    flavor: Flavor | None = None
    machine: CloudMachine | None = None
    message: str | None = None
    abort: bool = False
    preempted: bool = False
    changes: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.kind.value, "name": self.name,
                               "machinetype": self.machinetype, "reason": self.reason}
        if self.processors:
            out["processors"] = self.processors
        if self.flavor is not None:
            out["flavor"] = self.flavor.name
        if self.message:
            out["message"] = self.message
        if self.abort:
            out["abort"] = True
        if self.preempted:
            out["preempted"] = True
        return out


@dataclass(frozen=True)
class Plan:
    """What one pass over one space should do, and why; `notes` say where limits capped it."""

    space: str
    actions: tuple[Action, ...]
    notes: tuple[str, ...] = ()
    aborts: Mapping[str, float] = field(default_factory=dict)
    #: Processors per machinetype that counted against limits as observed (before this
    #: plan's deletions), and when each machinetype's backoff ends: what `status` shows.
    counted: Mapping[str, int] = field(default_factory=dict)
    backoff_until: Mapping[str, float] = field(default_factory=dict)
    #: Each community's demand reading as this plan used it (docs/demand.md), by community.
    demand: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def of(self, kind: ActionKind) -> list[Action]:
        return [a for a in self.actions if a.kind is kind]

    @property
    def creates(self) -> list[Action]:
        return self.of(ActionKind.CREATE)

    @property
    def deletes(self) -> list[Action]:
        return self.of(ActionKind.DELETE)

    def to_json(self) -> dict[str, Any]:
        out = {"space": self.space, "actions": [a.to_json() for a in self.actions],
               "notes": list(self.notes),
               "aborts": dict(self.aborts)}
        if self.demand:
            out["demand"] = {k: dict(v) for k, v in self.demand.items()}
        return out
