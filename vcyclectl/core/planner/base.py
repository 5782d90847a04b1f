"""What every step of the planner shares: its input (`Observation`), the machines as it
reasons about them (`_Seen`), the shutdown messages it writes, and its state for one
plan (`_PlannerBase`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from vcyclectl.config import Machinetype, Space
from vcyclectl.core.model import Action, CloudMachine, Flavor, MachineState
from vcyclectl.core.provisioning import DemandReading, SpacePolicy
from vcyclectl.core.records import Drains, MachineRecord, Report
from vcyclectl.core.rules import message_code as message_code  # one home: core.rules

NameSource = Callable[[str], str]

MSG_WALLCLOCK = "700 Exceeded max_wallclock_seconds"
MSG_HEARTBEAT = "700 Heartbeat file not updated"
MSG_FAILED = "700 Failed to start"
MSG_REQUESTED = "100 Shutdown as requested"
MSG_OVER_LIMIT = "100 Shutdown as requested"

#: Delete priorities: lower goes first when `max_deletes_per_pass` cuts the list.
_ENDED, _BROKEN, _DRAINED, _OVER_LIMIT = range(4)


#: `Action.changes` key of an UPDATE that drains a backfill machine to make room; the
#: reconciler turns it into a machine drain mark (by "policy") since that instant.
POLICY_DRAIN = "policy_drain"


@dataclass(frozen=True)
class Observation:
    """Everything the planner looks at for one space, gathered by the reconciler."""

    machines: Sequence[CloudMachine]
    records: Mapping[str, MachineRecord]
    reports: Mapping[str, Report] = field(default_factory=dict)
    drains: Drains = field(default_factory=Drains)
    backoff: Mapping[str, float] = field(default_factory=dict)
    flavors: Sequence[Flavor] = ()
    #: The provisioning policy (communities, campaigns, budgets; `vcyclectl.core.provisioning`);
    #: None, the default, plans exactly as without one.
    policy: SpacePolicy | None = None
    #: Why this host's clock is not to be trusted for this pass (it disagrees with the
    #: state directory's filesystem beyond `max_clock_skew_seconds`); when set, deletions
    #: for time-based reasons (wallclock, heartbeat, starting too long, drain shutdown
    #: time) are withheld, since every age would be off by the skew. Empty: trusted.
    clock_untrusted: str = ""
    #: Demand readings (docs/demand.md), per machinetype of a community with a `demand:`
    #: source; a machinetype absent here probes for work as it always did.
    demand: Mapping[str, DemandReading] = field(default_factory=dict)


def is_abort(message: str | None, lived: float | None, fizzle_seconds: float) -> bool:
    """Codes 300-699 are aborts; so is an unexplained stop within `fizzle_seconds`."""
    code = message_code(message)
    if code is not None:
        return 300 <= code <= 699
    return lived is not None and lived < fizzle_seconds


def fitting_flavors(mt: Machinetype, offered: Sequence[Flavor]) -> tuple[list[Flavor], list[str]]:
    """(the flavors a machinetype may use, in its order, that fit min/max_processors;
    the names it lists that the cloud does not offer). No `flavors:` means all offered."""
    by_name = {f.name: f for f in offered}
    unknown = [n for n in mt.flavors if n not in by_name]
    listed = [by_name[n] for n in mt.flavors if n in by_name] if mt.flavors else list(offered)
    fitting = [f for f in listed if f.processors >= mt.min_processors and
               (mt.max_processors is None or f.processors <= mt.max_processors)]
    return fitting, unknown


@dataclass(slots=True)
class _Seen:
    """One machine as the planner reasons about it: cloud view merged with the record.

    Every machine on the cloud counts against the limits, in any state (SPEC), until its
    deletion is confirmed; `leaving` marks one this plan deletes, which the plan assumes
    gone for display, while `pending_delete` (asked earlier, or the cloud is deleting it)
    keeps counting until the cloud stops listing it.
    """

    name: str
    machinetype: str
    state: MachineState
    processors: int
    created_at: float
    started_at: float | None
    machine: CloudMachine | None
    record: MachineRecord | None
    report: Report | None
    hs06_per_processor: float = 1.0
    pending_delete: bool = False
    leaving: bool = False

    @property
    def counts(self) -> bool:
        return self.pending_delete or not self.leaving

    @property
    def starting(self) -> bool:
        return self.counts and self.state in (MachineState.CREATING, MachineState.STARTING)

    @property
    def trimmable(self) -> bool:
        """May be ended to get under a lowered limit: present, counted, not already going."""
        return self.machine is not None and not self.leaving and not self.pending_delete


class _PlannerBase:
    """The state of one plan; each step is a subclass, in the order a pass runs them."""


    def __init__(self, space: Space, obs: Observation, now: float, names: NameSource,
                 max_deletes: int | None = None) -> None:
        self.max_deletes = space.max_deletes_per_pass if max_deletes is None else max_deletes
        self.space = space
        self.obs = obs
        self.now = now
        self.names = names
        self.actions: list[Action] = []
        #: (priority, -created_at, name, machine, reason, message, abort, preempted).
        self.deletes: list[tuple[int, float, str, _Seen, str, str | None, bool, bool]] = []
        self.notes: list[str] = []
        self.aborts: dict[str, float] = {}
        self.seen: list[_Seen] = []
        #: Bumped whenever a machine's `leaving` changes: what is counted from the machines
        #: (`usage`, `probes`) is made again only when it has moved since.
        self.leaving_changes = 0
        self.backfill_held = False
        self._proven: set[str] | None = None
        #: flavor name -> list price per hour, made on first use (`price_of`).
        self._list_prices: dict[str, float] | None = None
