"""What a pass over one space did: a value (done / skipped because locked elsewhere /
failed and why / `--wait` ran out) that the CLI maps to exit codes in one place; and the
accounting line of each machine that ended in it (`finished_entry`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from vcyclectl.core.model import Action, Plan
from vcyclectl.core.records import MachineRecord
from vcyclectl.redact import redact_text

Outcome = Literal["done", "skipped", "failed", "timeout"]


@dataclass
class SpaceResult:
    """What a pass over one space did; `outcome` decides the exit code."""

    space: str
    outcome: Outcome
    reason: str = ""
    plan: Plan | None = None
    created: int = 0
    deleted: int = 0
    adopted: int = 0
    forgotten: int = 0
    failed_calls: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    #: Why a skipped pass was skipped: "locked" (another host holds the space) or
    #: "interval" (its last pass finished under min_pass_interval_seconds ago).
    skipped: str = ""
    #: Cloud API calls this pass made, by call ("list", "create", …), retries included.
    calls: dict[str, int] = field(default_factory=dict)
    #: Cloud calls the pass did not start because max_pass_seconds had passed.
    not_started: int = 0
    #: The pass ran out of max_pass_seconds: it does not count for min_pass_interval_seconds,
    #: so the next host carries on at once.
    deadline_passed: bool = False
    clock_skew: float = 0.0  # this host's clock against the state directory's filesystem
    lock_seconds: float = 0.0  # for metrics (vcyclectl.monitoring): waited for the lock,
    events: list[dict[str, Any]] = field(default_factory=list)  # what was done,
    finished: list[dict[str, Any]] = field(default_factory=list)  # and what ended

    def summary(self) -> str:
        """One line for people; credentials in a cloud's error text never show."""
        return redact_text(self._summary())

    def _summary(self) -> str:
        if self.outcome in ("skipped", "timeout"):
            return f"{self.space}: {self.outcome}, {self.reason}"
        if self.outcome == "failed" and self.plan is None:
            return f"{self.space}: FAILED, {self.reason}"
        text = (f"{self.space}: created {self.created}, deleted {self.deleted}, adopted "
                f"{self.adopted}, forgot {self.forgotten} in {self.seconds:.1f}s")
        if self.outcome == "failed":
            text += f"; FAILED: {self.reason}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"space": self.space, "outcome": self.outcome,
                "reason": redact_text(self.reason),
                "created": self.created, "deleted": self.deleted, "adopted": self.adopted,
                "forgotten": self.forgotten, "failed_calls": self.failed_calls,
                "seconds": round(self.seconds, 3),
                "skipped": self.skipped or None, "calls": dict(self.calls),
                "errors": [redact_text(e) for e in self.errors],
                "plan": self.plan.to_json() if self.plan else None}


def finished_entry(rec: MachineRecord, now: float, action: Action) -> dict[str, Any]:
    """An accounting line for a machine that ended: times, processors, hs06, message."""
    machine = action.machine
    stopped = (machine.stopped_at if machine and machine.stopped_at else None) or now
    started = rec.started_at or (machine.started_at if machine else None)
    seconds = max(0.0, stopped - started) if started else 0.0
    return {
        "name": rec.name, "space": rec.space, "machinetype": rec.machinetype,
        "processors": rec.processors, "hs06": rec.hs06, "flavor": rec.flavor,
        "created_at": rec.created_at, "started_at": started, "stopped_at": stopped,
        "finished_at": now, "cpu_seconds": round(seconds * rec.processors, 3),
        "hs06_seconds": round(seconds * rec.hs06, 3),
        "message": action.message, "reason": action.reason, "abort": action.abort,
        "preempted": action.preempted, "spot": rec.spot, "price_per_hour": rec.price_per_hour,
        "cloud_id": rec.cloud_id,
    }

