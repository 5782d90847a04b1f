"""Nova's server statuses and what each means to vcyclectl: the driver's one state table.

Why a module of its own: this table is what a reader checks against the Compute API
reference ("Server concepts", server status values), and what a test checks for
completeness, so it sits apart from the HTTP calls, imports no SDK, and is read in one
place only, `machine_state()`, which `servers.to_machine()` calls for every listed server.
"""

from __future__ import annotations

from vcyclectl.core.machinestate import MachineState

#: Every server status in the Compute API reference, and what it means to us. Statuses
#: not listed (a newer Nova's) are UNKNOWN, which the planner counts as live capacity.
STATE_MAP: dict[str, MachineState] = {
    "BUILD": MachineState.STARTING,
    "ACTIVE": MachineState.RUNNING,
    "SHUTOFF": MachineState.STOPPED,
    "STOPPED": MachineState.STOPPED,
    "ERROR": MachineState.FAILED,
    "DELETED": MachineState.GONE,
    "SOFT_DELETED": MachineState.GONE,
    "HARD_REBOOT": MachineState.UNKNOWN,
    "REBOOT": MachineState.UNKNOWN,
    "MIGRATING": MachineState.UNKNOWN,
    "PASSWORD": MachineState.UNKNOWN,
    "PAUSED": MachineState.UNKNOWN,
    "REBUILD": MachineState.UNKNOWN,
    "RESCUE": MachineState.UNKNOWN,
    "RESIZE": MachineState.UNKNOWN,
    "REVERT_RESIZE": MachineState.UNKNOWN,
    "VERIFY_RESIZE": MachineState.UNKNOWN,
    "SHELVED": MachineState.UNKNOWN,
    "SHELVED_OFFLOADED": MachineState.UNKNOWN,
    "SUSPENDED": MachineState.UNKNOWN,
    "UNKNOWN": MachineState.UNKNOWN,
}

#: Nova keeps a server's status (e.g. ACTIVE) while it deletes it; the task state says so.
DELETING_TASK_STATES = frozenset({"deleting", "soft-deleting"})


def machine_state(status: str | None, task_state: str | None) -> MachineState:
    """The single place a Nova status becomes a `MachineState`.

    A missing status reads as UNKNOWN; a server Nova is deleting is DELETING whatever its
    status, unless it is already gone.
    """
    state = STATE_MAP.get(str(status or "UNKNOWN").upper(), MachineState.UNKNOWN)
    if task_state in DELETING_TASK_STATES and state is not MachineState.GONE:
        return MachineState.DELETING
    return state
