"""The `local:` block: rules of the built-in simulated cloud (see `clouds/local.py`).

Set on a space and overridable per machinetype; fractional seconds are allowed so tests
can run a whole machine lifetime in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LocalFlavor:
    name: str
    processors: int = field(metadata={"min": 1})
    memory_mb: int | None = field(default=None, metadata={"min": 1})
    price_per_hour: float | None = field(default=None, metadata={"min": 0})
    spot: bool = False


@dataclass(frozen=True)
class LocalOptions:
    """Simulated tenancy: quota, sizes, and how its machines behave over wall-clock time."""

    processors: int = field(default=64, metadata={"min": 0})
    processors_per_machine: int = field(default=1, metadata={"min": 1})
    flavors: tuple[LocalFlavor, ...] = ()
    #: The currency of this block's `price_per_hour` (ISO 4217); none: the budget's.
    currency: str | None = field(default=None, metadata={"pattern": r"[A-Z]{3}",
                                                         "pattern_doc": "a code like USD"})
    boot_seconds: float = field(default=5.0, metadata={"min": 0})
    job_seconds: float = field(default=60.0, metadata={"min": 0})
    no_work_probability: float = field(default=0.1, metadata={"min": 0, "max": 1})
    failure_probability: float = field(default=0.0, metadata={"min": 0, "max": 1})
    #: The chance that a machine on a `spot: true` flavor is pre-empted (its capacity
    #: reclaimed) at a random moment of its life, as EC2 and GCE do to spot VMs: it stops
    #: with a pre-emption reason and no shutdown message, which is never an abort.
    preemption_probability: float = field(default=0.0, metadata={"min": 0, "max": 1})
    api_error_probability: float = field(default=0.0, metadata={"min": 0, "max": 1})
    #: Fault knobs (docs/chaos.md): the listing comes in pages of `listing_page_size`
    #: machines, each of which fails or comes back cut short with this probability (the
    #: driver then raises IncompleteListing, never returns part of a listing); every call
    #: takes up to `slow_call_seconds` longer, drawn at random.
    listing_page_size: int = field(default=500, metadata={"min": 1})
    listing_page_error_probability: float = field(default=0.0, metadata={"min": 0, "max": 1})
    slow_call_seconds: float = field(default=0.0, metadata={"min": 0})
    heartbeat: bool = True
    seed: int = 0
    #: Seconds each API call takes, by call (`list`, `create`, `delete`, `flavors`): a slow
    #: or stuck cloud for tests and benchmarks. A create or delete is done at once and
    #: only its answer is late, as when a real cloud's reply is lost in a hung connection.
    call_seconds: dict[str, float] = field(default_factory=dict, metadata={"min": 0})
    #: When set, simulated VMs report like real ones: they PUT their `heartbeat` and
    #: `shutdown_message` to `vcyclectl serve` at this base URL (with their machine token)
    #: instead of the driver handing them to the reconciler (see clouds/local.py).
    report_url: str | None = field(default=None, metadata={
        "pattern": r"https?://[^\s/]+(/[^\s]*)?", "pattern_doc": "an http:// or https:// URL"})

    def problems(self) -> list[tuple[str, str]]:
        names = [f.name for f in self.flavors]
        if len(names) != len(set(names)):
            return [("flavors", "flavor names must be unique")]
        unknown = sorted(set(self.call_seconds) - CALLS)
        if unknown:
            return [("call_seconds", f"unknown call {unknown[0]!r} (one of "
                                     f"{', '.join(sorted(CALLS))})")]
        return []


#: The calls `call_seconds` may slow down.
CALLS = frozenset({"list", "create", "delete", "flavors"})
