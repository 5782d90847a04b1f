"""The rules that the planner, the reconciler and `status` must agree on, in one place.

Pure, like the planner: when a machinetype is in backoff, which machines count against
limits, and each machinetype's share. `plan` and `status` both call these, so they cannot
disagree on backoff or counting (tests/unit/test_rules_agree.py says so for random fleets).
"""

from __future__ import annotations

import math
from typing import Mapping

from vcyclectl.config import Machinetype, Space
from vcyclectl.core.machinestate import MachineState
from vcyclectl.core.records import MachineRecord
from vcyclectl.core.model import END_API, END_CLOUD, END_START, END_VM

__all__ = ["END_API", "END_CLOUD", "END_START", "END_VM", "backoff_until", "end_is_abort",
           "in_backoff", "intent_in_flight", "merged_aborts", "message_code",
           "normalised_shares", "record_counts"]


def merged_aborts(recorded: Mapping[str, float],
                  in_pass: Mapping[str, float]) -> dict[str, float]:
    """The latest abort per machinetype: the state directory's and this pass's."""
    merged = dict(recorded)
    for mt, when in in_pass.items():
        merged[mt] = max(merged.get(mt, when), when)
    return merged


def backoff_until(mt: Machinetype, recorded: Mapping[str, float],
                  in_pass: Mapping[str, float] | None = None) -> float:
    """When the machinetype's backoff ends: `backoff_seconds` after its latest abort
    (recorded in the state directory, or seen in this pass); -inf if it never aborted."""
    last = max(recorded.get(mt.name, -math.inf),
               (in_pass or {}).get(mt.name, -math.inf))
    return last + mt.backoff_seconds


def in_backoff(mt: Machinetype, now: float, recorded: Mapping[str, float],
               in_pass: Mapping[str, float] | None = None) -> bool:
    return now < backoff_until(mt, recorded, in_pass)


def intent_in_flight(record: MachineRecord, space: Space, now: float) -> bool:
    """A create the cloud does not list yet. Confirmed ones (with a cloud id) wait out
    listing lag up to `create_timeout_seconds`; unconfirmed ones (the creating pass died
    or the call's outcome was lost) only `intent_timeout_seconds`, after which a VM
    that does turn up is adopted."""
    if record.state is not MachineState.CREATING or record.deleting_at is not None:
        return False
    timeout = space.create_timeout_seconds if record.cloud_id else space.intent_timeout_seconds
    return now - record.created_at < timeout


def record_counts(record: MachineRecord, space: Space, now: float) -> bool:
    """Whether a machine known from its record (as the last pass left it) counts against
    limits: every machine does, in any state, until its deletion is confirmed and its
    record forgotten (SPEC); an intent the cloud has not shown counts until it expires."""
    if record.state is MachineState.CREATING and record.deleting_at is None:
        return intent_in_flight(record, space, now)
    return True


def normalised_shares(shares: Mapping[str, float]) -> dict[str, float]:
    """Shares as fractions of their sum (all 0 when the sum is 0)."""
    total = sum(v for v in shares.values() if v > 0)
    return {k: (max(v, 0.0) / total if total > 0 else 0.0) for k, v in shares.items()}


def message_code(message: str | None) -> int | None:
    """The numeric code of a Vac-style shutdown message ("300 No more work…" -> 300)."""
    if not message:
        return None
    head = message.strip().split(" ", 1)[0]
    return int(head) if head.isdigit() and len(head) == 3 else None


def _message_abort(message: str | None) -> bool:
    """A shutdown message with a code 300-699: the VM said it could not work here."""
    code = message_code(message)
    return code is not None and 300 <= code <= 699


def end_is_abort(*, message: str | None, lived: float | None, fizzle_seconds: float,
                 failed: bool, ended_by: str | None, gone: bool) -> tuple[bool, str]:
    """Whether a machine's end that vcyclectl did not cause counts as an abort (starting
    its machinetype's backoff), and the words the plan's reason adds.

    Only an end the VM chose, or a failure to start, is an abort: a VM that shut itself
    down with a 300-699 message, or without one within `fizzle_seconds` of starting, says
    its machinetype finds no work here; a VM that did not start says the same of the
    site. A machine someone else stopped or deleted through the cloud's API (an operator,
    another tool, EC2 `Client.UserInitiatedShutdown`, a server gone from Nova), or that the
    provider retired, did nothing wrong: it is replaced without backoff, unless it had
    itself reported an abort message first. Spot pre-emption is decided before this (its
    own reason, never an abort)."""
    if failed or ended_by == END_START:
        return True, "failed to start"
    if ended_by == END_API or (gone and ended_by is None):
        how = "deleted" if gone else "stopped"
        if _message_abort(message):
            return True, f"{how} by someone else through the cloud's API after an abort message"
        return False, (f"{how} by someone else through the cloud's API: not an abort, "
                       "replaced without backoff")
    if ended_by == END_CLOUD:
        if _message_abort(message):
            return True, "ended by the provider after an abort message"
        return False, "ended by the provider: not an abort, replaced without backoff"
    if message_code(message) is not None:
        return _message_abort(message), ""
    return lived is not None and lived < fizzle_seconds, ""
