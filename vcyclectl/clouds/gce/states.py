"""How a GCE instance's state is read: the one native-state table and pre-emption.

Why a module of its own: `Instance.status` and the `compute.instances.preempted` operation
decide what the planner believes about a machine, so they live in one table with one lookup
(`machine_state`) and one rule for when a pre-emption still explains a machine's end.
`tests/clouds/test_gce.py` checks the table against the `Instance.status` enum of the
compute.v1 discovery document, so a new native state fails a test, not a pass.

Imports no Google module: the table can be read (and tested) without the SDK.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Mapping
from typing import Any

from vcyclectl.core.model import MachineState

#: GCE `Instance.status` -> our state. Every value of the compute.v1 discovery document's
#: enum is here (tests/clouds/test_gce.py checks it against the document that
#: google-api-python-client ships), so a new native state fails a test, not a pass.
STATE_MAP: dict[str, MachineState] = {
    "PENDING": MachineState.STARTING,        # flex-start: waiting for capacity
    "PROVISIONING": MachineState.STARTING,
    "STAGING": MachineState.STARTING,
    "RUNNING": MachineState.RUNNING,
    "PENDING_STOP": MachineState.STOPPED,    # gracefully shutting down
    "STOPPING": MachineState.STOPPED,        # halting or being deleted
    "SUSPENDING": MachineState.STOPPED,
    "SUSPENDED": MachineState.STOPPED,
    "STOPPED": MachineState.STOPPED,
    "TERMINATED": MachineState.STOPPED,      # halted (by itself, by us, or pre-empted)
    "DEPROVISIONING": MachineState.STOPPED,  # halted, resources being released
    "REPAIRING": MachineState.UNKNOWN,       # may come back: neither count it ended nor live
}

#: The operation GCE records in the zone when it pre-empts a SPOT VM: the one unambiguous
#: signal (a pre-empted VM that stops looks like one that halted itself).
PREEMPTED_OPERATION = "compute.instances.preempted"
#: How far back a preemption operation still explains a vanished SPOT VM. Operations are
#: kept by GCE for a limited time anyway; an hour covers many missed cron passes.
PREEMPTION_LOOKBACK_SECONDS = 3600.0


def machine_state(instance: Mapping[str, Any]) -> MachineState:
    """The single place where GCE's `Instance.status` becomes a `MachineState`."""
    return STATE_MAP.get(str(instance.get("status", "")), MachineState.UNKNOWN)


def is_spot(instance: Mapping[str, Any]) -> bool:
    """SPOT (or legacy preemptible) scheduling: the only VMs GCE pre-empts."""
    scheduling = instance.get("scheduling", {})
    return bool(scheduling.get("provisioningModel") == "SPOT" or scheduling.get("preemptible"))


def timestamp(text: str | None) -> float | None:
    """RFC 3339 (`2026-11-25T11:02:03.123-08:00`) to epoch seconds; None if absent."""
    if not text:
        return None
    try:
        return _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def is_recent_preemption(operation: Mapping[str, Any]) -> bool:
    """Whether a preemption operation is recent enough to explain a vanished VM."""
    started = timestamp(operation.get("insertTime"))
    return started is not None and time.time() - started < PREEMPTION_LOOKBACK_SECONDS
