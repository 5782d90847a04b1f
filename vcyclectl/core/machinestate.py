"""The normalised machine states, alone in a module so that read-only commands (`list`,
`status`) can name them without importing the rest of the model."""

from __future__ import annotations

from enum import Enum


class MachineState(str, Enum):
    """Normalised machine states; every driver maps its native states onto these."""

    CREATING = "creating"   # intent recorded, not yet seen on the cloud
    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"
    FAILED = "failed"
    DELETING = "deleting"
    UNKNOWN = "unknown"
    GONE = "gone"           # the cloud still lists it but it no longer exists (Nova DELETED)

    @property
    def is_live(self) -> bool:
        """Occupies capacity and may still do work."""
        return self in (MachineState.CREATING, MachineState.STARTING, MachineState.RUNNING,
                        MachineState.UNKNOWN)

    @property
    def is_ended(self) -> bool:
        return self in (MachineState.STOPPED, MachineState.FAILED)
