"""How an EC2 instance's state is read: the one native-state table and pre-emption reasons.

Why a module of its own: what EC2 says about an instance (its state name, `StateReason`,
the stop time hidden in `StateTransitionReason`) decides what the planner believes about a
machine, so it lives in one table with one lookup (`machine_state`) that every reader of a
described instance goes through. `tests/clouds/test_ec2.py` checks the table against every
value of botocore's `InstanceStateName` enum, so a new native state fails a test, not a pass.

Imports no SDK: the table can be read (and tested) without boto3.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from vcyclectl.core.model import END_API, END_CLOUD, END_START, END_VM, MachineState

#: EC2 instance state name -> our state. Every value of the API's `InstanceStateName` enum
#: is here (a test checks this against botocore's service model). A terminated instance
#: stays listed for about an hour: it is `GONE`, with the reason kept in `state_reason`.
STATE_MAP: dict[str, MachineState] = {
    "pending": MachineState.STARTING,
    "running": MachineState.RUNNING,
    "stopping": MachineState.STOPPED,
    "stopped": MachineState.STOPPED,
    "shutting-down": MachineState.GONE,
    "terminated": MachineState.GONE,
}

#: `StateReason.Code`s that mean the spot market took the machine back: recorded as
#: pre-empted (no backoff), because the VM did nothing wrong.
PREEMPTION_REASONS = frozenset({"Server.SpotInstanceTermination", "Server.SpotInstanceShutdown"})

#: `StateReason.Code` -> who ended the instance (`core.rules.END_*`): only the VM's own
#: shutdown or a failed start makes an abort; a stop or termination through the API
#: (`Client.UserInitiatedShutdown`: an operator, the console, another tool) does not.
#: Codes from the EC2 API reference, `StateReason`. Not listed (or no code): None.
END_CAUSES: dict[str, str] = {
    "Client.InstanceInitiatedShutdown": END_VM,
    "Client.UserInitiatedShutdown": END_API,
    "Client.UserInitiatedHibernate": END_API,
    "Server.ScheduledStop": END_CLOUD,
    "Server.InternalError": END_START,
    "Server.InsufficientInstanceCapacity": END_START,
    "Client.InternalError": END_START,
    "Client.InvalidSnapshot.NotFound": END_START,
    "Client.VolumeLimitExceeded": END_START,
}

#: EC2 writes the time of a stop or termination only into this free-text field.
_STOPPED_AT = re.compile(r"\((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?:GMT|UTC)\)")


def native_state(instance: Mapping[str, Any]) -> str:
    """EC2's own state name of a described instance (`State.Name`), '' if absent."""
    return str((instance.get("State") or {}).get("Name", ""))


def machine_state(instance: Mapping[str, Any]) -> MachineState:
    """The single place where EC2's state name becomes a `MachineState`."""
    return STATE_MAP.get(native_state(instance), MachineState.UNKNOWN)


def state_reason_of(instance: Mapping[str, Any]) -> str | None:
    """EC2's StateReason code (e.g. `Server.SpotInstanceTermination`), else the transition."""
    code = (instance.get("StateReason") or {}).get("Code")
    if code:
        return str(code)
    transition = instance.get("StateTransitionReason")
    return str(transition) if transition else None


def ended_by(instance: Mapping[str, Any], state: MachineState) -> str | None:
    """Who ended a stopped or gone instance, from its `StateReason.Code` (`END_CAUSES`)."""
    if state not in (MachineState.STOPPED, MachineState.GONE):
        return None
    code = (instance.get("StateReason") or {}).get("Code")
    return END_CAUSES.get(str(code)) if code else None


def is_preempted(reason: str | None) -> bool:
    """Whether a state reason says the spot market, not the VM, ended the machine."""
    return reason in PREEMPTION_REASONS


def stopped_at(instance: Mapping[str, Any], state: MachineState) -> float | None:
    """When a stopped or gone instance stopped, read from `StateTransitionReason`."""
    if state not in (MachineState.STOPPED, MachineState.GONE):
        return None
    match = _STOPPED_AT.search(str(instance.get("StateTransitionReason") or ""))
    if not match:
        return None
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=timezone.utc).timestamp()
