"""After `reconcile`: this host's pass metrics into its textfile, and VacMon messages for
the machines that ended. Called once per invocation, after every space had its pass; a
failure here is logged and never changes the exit code (monitoring must not stop work)."""

from __future__ import annotations

import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Protocol, Sequence

from vcyclectl import log
from vcyclectl.clouds import retries
from vcyclectl.config import Config
from vcyclectl.monitoring.fleet import hostname, snapshot

if TYPE_CHECKING:  # prometheus_client is imported only when a textfile is written
    from vcyclectl.monitoring.metrics import PassTotals


class PassResult(Protocol):
    """What monitoring reads of a `reconcile.SpaceResult` (which lives a layer above)."""

    @property
    def space(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def seconds(self) -> float: ...
    @property
    def lock_seconds(self) -> float: ...
    @property
    def events(self) -> list[dict[str, Any]]: ...
    @property
    def finished(self) -> list[dict[str, Any]]: ...


#: Delete/forget reasons as label values: the planner's shutdown messages first, then the
#: start of its human reason (docs/metrics.md).
_MESSAGE_REASONS = {"700 Exceeded max_wallclock_seconds": "wallclock",
                    "700 Heartbeat file not updated": "heartbeat",
                    "700 Failed to start": "failed",
                    "100 Shutdown as requested": "requested"}
_REASON_STARTS = (("pre-empted", "preempted"), ("failed", "failed"), ("stopped", "stopped"),
                  ("drained", "drained"), ("backfill making room", "making_room"),
                  ("deletion asked", "retried"), ("over ", "over_limit"),
                  ("still starting", "start_timeout"), ("heartbeat", "heartbeat"))


def end_reason(event: Mapping[str, Any]) -> str:
    """A small, fixed set of label values for why a machine was deleted or forgotten."""
    if event.get("event") == "forget":
        return "gone"
    if event.get("preempted"):
        return "preempted"
    reason = str(event.get("reason") or "")
    for start, label in _REASON_STARTS:
        if reason.startswith(start):
            if label == "stopped":
                return "stopped_abort" if event.get("abort") else "stopped"
            return label
    return _MESSAGE_REASONS.get(str(event.get("message") or ""), "other")


def create_reason(event: Mapping[str, Any]) -> str:
    reason = str(event.get("reason") or "")
    if "backfill" in reason:
        return "backfill"
    if "priority" in reason:
        return "priority"
    return "share"


@dataclass
class PassRecorder:
    """Collects each space's result and the cloud calls made during its pass."""

    config: Config
    results: list[tuple[PassResult, Counter[tuple[str, str]]]] = field(default_factory=list)

    @contextmanager
    def space(self) -> Iterator[list[PassResult]]:
        """Around one `reconcile_space` call: the calls it made are the counter's growth
        (spaces are reconciled one after another, so no other space's calls mix in)."""
        before = Counter(retries.CALLS)
        holder: list[PassResult] = []
        yield holder
        calls = Counter(retries.CALLS)
        calls.subtract(before)
        for result in holder:
            self.results.append((result, +calls))

    def finish(self) -> None:
        try:
            self._write_textfile()
        except Exception as exc:  # monitoring never fails the pass
            log.warning("metrics textfile not written", error=f"{type(exc).__name__}: {exc}")
        if self.config.vacmon_hostport:
            from vcyclectl.monitoring.vacmon import send_finished

            for result, _ in self.results:
                send_finished(self.config, result.finished)

    def _write_textfile(self) -> None:
        if not self.config.metrics_textfile:
            return
        from vcyclectl.monitoring.metrics import textfile_path, update_textfile

        fleet = snapshot(self.config, probe_locks=False)
        update_textfile(textfile_path(self.config.metrics_textfile, hostname()), fleet,
                        self.apply)

    def apply(self, totals: PassTotals) -> None:
        now = time.time()
        for result, calls in self.results:
            add_pass(totals, result, calls, now)


def add_pass(totals: PassTotals, result: PassResult, calls: Mapping[tuple[str, str], int],
             now: float) -> None:
    from vcyclectl.monitoring.metrics import OUTCOMES

    space = result.space
    totals.add("vcyclectl_passes", (space, result.outcome))
    for outcome in OUTCOMES:
        totals.set("vcyclectl_pass_outcome", (space, outcome),
                   1.0 if outcome == result.outcome else 0.0)
    totals.set("vcyclectl_pass_duration_seconds", (space,), round(result.seconds, 3))
    totals.set("vcyclectl_pass_lock_wait_seconds", (space,), round(result.lock_seconds, 3))
    totals.set("vcyclectl_pass_last_timestamp_seconds", (space,), round(now, 3))
    for (call, outcome), n in calls.items():
        totals.add("vcyclectl_cloud_api_calls", (space, call), float(n))
        if outcome != "ok":
            totals.add("vcyclectl_cloud_api_errors", (space, call, outcome), float(n))
    totals.add_counts("vcyclectl_machines_created", space, _counts(result.events, ("create",)))
    totals.add_counts("vcyclectl_machines_deleted", space,
                      _counts(result.events, ("delete",)))


def _counts(events: Sequence[Mapping[str, Any]],
            kinds: tuple[str, ...]) -> Counter[tuple[str, ...]]:
    out: Counter[tuple[str, ...]] = Counter()
    for e in events:
        if e.get("event") in kinds:
            reason = create_reason(e) if e.get("event") == "create" else end_reason(e)
            out[(str(e.get("machinetype")), reason)] += 1
    return out
