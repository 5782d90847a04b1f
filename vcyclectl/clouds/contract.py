"""The driver contract, small on purpose: what every cloud driver offers and returns.

A driver never decides anything: it lists, creates and deletes what it is told, and
translates its SDK's exceptions into `vcyclectl.errors` (`Transient`, `QuotaExceeded`,
`Fatal`) in one place. Cloud SDKs are imported inside the driver module, and the driver
module only when a space uses it (`vcyclectl.clouds.registry`), so a pass over a local-only
config never
pays for boto3 or the Google client.

Each cloud's config block (`local:`, `openstack:`, `ec2:`, `gce:`) is a frozen dataclass in
`vcyclectl/clouds/<cloud>/options.py`, a module that imports no SDK so `config check` stays
fast; `vcyclectl.clouds.options` finds it and `vcyclectl.config.schema` fills it from the
YAML block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Mapping, Protocol, TypeVar, runtime_checkable

from vcyclectl.core.model import CloudMachine, Flavor, MachineSpec

#: A driver's options dataclass (`LocalOptions`, `Ec2Options`, …): what its context carries.
OptionsT = TypeVar("OptionsT")

#: Tag/label keys every driver puts on the machines it creates, so that vcyclectl only
#: ever touches its own VMs. GCE labels allow only [a-z0-9_-], hence the plain names.
TAG_SPACE = "vcyclectl-space"
TAG_MACHINETYPE = "vcyclectl-machinetype"
TAG_STATE_ID = "vcyclectl-state-id"


@dataclass(frozen=True)
class CloudContext(Generic[OptionsT]):
    """What a driver is built from: one space of one state directory.

    `options` is the space's cloud block; `machinetype_options` holds, per machinetype, that
    block with the machinetype's own overrides merged over it (empty when none).
    """

    space: str
    state_id: str
    state_dir: Path
    options: OptionsT
    machinetype_options: Mapping[str, OptionsT] = field(default_factory=dict)

    def options_for(self, machinetype: str) -> OptionsT:
        return self.machinetype_options.get(machinetype, self.options)


@runtime_checkable
class Cloud(Protocol):
    """The four calls every driver implements."""

    def list_machines(self) -> list[CloudMachine]:
        """All pages, only machines tagged with this space and state id, or raise."""
        ...

    def create(self, spec: MachineSpec) -> CloudMachine:
        """Idempotent on `spec.name`: a retry after a lost response finds the first VM."""
        ...

    def delete(self, machine: CloudMachine) -> None:
        """Gone already counts as success."""
        ...

    def flavors(self) -> list[Flavor]:
        """Sizes this space may use, in configured order: name, processors, memory, price."""
        ...
