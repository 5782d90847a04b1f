"""What vcyclectl sends to GCE: the instance body, labels, request ids, filters, and paging.

Why a module of its own: the `Instance` resource an insert sends (labels, user-data, boot
disk, network, scheduling), the idempotency keys, the server-side label filter and the walk
over an aggregated list's pages are facts about the Compute API, not decisions; keeping
them here leaves the driver with only the order of calls.

Imported only by the driver package (it needs `google.cloud.compute_v1` for the body's
types); `vcyclectl.clouds.gce.options` never imports this.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol, TypeVar

from google.cloud import compute_v1

from vcyclectl.clouds.contract import TAG_MACHINETYPE, TAG_SPACE, TAG_STATE_ID
from vcyclectl.clouds.gce.options import GceOptions, label_value
from vcyclectl.clouds.gce.states import PREEMPTED_OPERATION
from vcyclectl.core.model import MachineSpec
from vcyclectl.errors import IncompleteListing

#: Label holding the processor count, so a listing never has to look machine types up.
TAG_PROCESSORS = "vcyclectl-processors"

#: uuid5 namespace for `requestId`s: the API accepts only UUIDs there, and a retry of the
#: same create must send the same id, so it is derived from project, zone and name.
_REQUEST_NAMESPACE = uuid.UUID("6f1d0f3e-9c2b-5b8a-8e51-7663796c6563")


# -- idempotency and names ---------------------------------------------------------------

def zone_order(name: str, zones: list[str]) -> list[str]:
    """Zones to try for one machine: a rotation of `zones` chosen by a hash of the name.

    A stable hash spreads machines evenly across zones without any state, and makes a
    retry of the same create start in the same zone (so its `requestId` matches).
    """
    if not zones:
        return []
    start = int(hashlib.sha256(name.encode()).hexdigest(), 16) % len(zones)
    return zones[start:] + zones[:start]


def request_id(project: str, zone: str, name: str) -> str:
    """The idempotency key of one insert: the same machine in the same zone, the same UUID.

    Zone is part of it because a failed insert's operation (an exhausted zone) is what the
    API would return again for a reused id, even when sent to another zone.
    """
    return str(uuid.uuid5(_REQUEST_NAMESPACE, f"{project}/{zone}/{name}"))


def delete_request_id(project: str, zone: str, name: str, instance_id: str) -> str:
    """The idempotency key of one delete of one instance (its id, not just its name)."""
    return str(uuid.uuid5(_REQUEST_NAMESPACE, f"delete/{project}/{zone}/{name}/{instance_id}"))


def resource_url(value: str, collection: str, project: str, scope: str = "global") -> str:
    """A short name (`default`) as a partial URL; anything with a '/' is kept as written."""
    if "/" in value:
        return value
    return f"projects/{project}/{scope}/{collection}/{value}"


def image_url(image: str, project: str) -> str:
    """`cernvm4` and `family/workers` are this project's; URLs and `projects/...` are kept.

    `projects/cos-cloud/global/images/family/cos-stable` (an image family in another
    project) and full `https://www.googleapis.com/compute/v1/...` URLs pass unchanged.
    """
    if image.startswith(("projects/", "https://", "http://", "global/")):
        return image
    return f"projects/{project}/global/images/{image}"


# -- filters -----------------------------------------------------------------------------

def label_filter(space: str, state_id: str) -> str:
    """The server-side filter for this space's and state directory's VMs."""
    return (f'(labels.{TAG_SPACE} = "{label_value(space)}") '
            f'(labels.{TAG_STATE_ID} = "{label_value(state_id)}")')


PREEMPTION_FILTER = f'(operationType = "{PREEMPTED_OPERATION}")'


# -- the instance body -------------------------------------------------------------------

def instance_labels(spec: MachineSpec, options: GceOptions) -> dict[str, str]:
    """The block's labels, then ours (options.problems() refuses overriding them)."""
    labels = dict(options.labels)
    labels.update({
        TAG_SPACE: label_value(spec.space),
        TAG_MACHINETYPE: label_value(spec.machinetype),
        TAG_STATE_ID: label_value(spec.state_id),
        TAG_PROCESSORS: str(spec.processors),
    })
    return labels


def _network_interface(options: GceOptions, project: str, zone: str
                       ) -> compute_v1.NetworkInterface:
    region = zone.rsplit("-", 1)[0]
    nic = compute_v1.NetworkInterface(network=resource_url(options.network, "networks", project))
    if options.subnetwork:
        nic.subnetwork = resource_url(options.subnetwork, "subnetworks", project,
                                      f"regions/{region}")
    if options.external_ip:
        nic.access_configs = [compute_v1.AccessConfig(name="External NAT",
                                                      type_="ONE_TO_ONE_NAT")]
    return nic


def _scheduling(options: GceOptions) -> compute_v1.Scheduling:
    if options.spot:
        return compute_v1.Scheduling(
            provisioning_model="SPOT",
            instance_termination_action=options.instance_termination_action,
            automatic_restart=False, on_host_maintenance="TERMINATE")
    return compute_v1.Scheduling(provisioning_model="STANDARD")


def instance_body(spec: MachineSpec, options: GceOptions, image: str, zone: str,
                  project: str) -> compute_v1.Instance:
    """The `Instance` resource to insert: labels, user-data, disk, network, scheduling."""
    items = [compute_v1.Items(key=k, value=v) for k, v in spec.metadata.items()
             if k != "user-data"]
    # cloud-init's GCE datasource reads the `user-data` metadata key.
    items.append(compute_v1.Items(key="user-data", value=spec.user_data))
    instance = compute_v1.Instance(
        name=spec.name,
        machine_type=f"zones/{zone}/machineTypes/{spec.flavor.name}",
        labels=instance_labels(spec, options),
        metadata=compute_v1.Metadata(items=items),
        disks=[compute_v1.AttachedDisk(
            boot=True, auto_delete=True, type_="PERSISTENT",
            initialize_params=compute_v1.AttachedDiskInitializeParams(
                source_image=image_url(image, project),
                disk_size_gb=options.disk_size_gb,
                disk_type=f"zones/{zone}/diskTypes/{options.disk_type}"))],
        network_interfaces=[_network_interface(options, project, zone)],
        scheduling=_scheduling(options),
    )
    if options.service_account:
        instance.service_accounts = [compute_v1.ServiceAccount(
            email=options.service_account, scopes=list(options.scopes))]
    if options.network_tags:
        instance.tags = compute_v1.Tags(items=list(options.network_tags))
    return instance


# -- paging ------------------------------------------------------------------------------

class _Warning(Protocol):
    @property
    def code(self) -> str: ...

    @property
    def message(self) -> str: ...


class ScopedList(Protocol):
    """One zone's part of an aggregated list page (`InstancesScopedList`, ...)."""

    @property
    def warning(self) -> _Warning: ...


Scoped = TypeVar("Scoped", bound=ScopedList, covariant=True)


class _Page(Protocol[Scoped]):
    @property
    def unreachables(self) -> Sequence[str]: ...

    @property
    def items(self) -> Mapping[str, Scoped]: ...


class AggregatedPager(Protocol[Scoped]):
    """An `aggregated_list` pager of compute_v1, whatever it lists."""

    @property
    def pages(self) -> Iterator[_Page[Scoped]]: ...


def complete_scopes(pager: AggregatedPager[Scoped], project: str) -> Iterator[Scoped]:
    """Every zone's part of every page of an aggregated list, or `IncompleteListing` as
    soon as GCE says a page or a zone could not be reached: never a partial view."""
    for page in pager.pages:
        if list(page.unreachables):
            raise IncompleteListing(f"GCE project {project}: unreachable: "
                                    f"{', '.join(page.unreachables)}")
        for scope, scoped in page.items.items():
            if scoped.warning.code == "UNREACHABLE":
                raise IncompleteListing(f"GCE project {project}: {scope} "
                                        f"unreachable: {scoped.warning.message}")
            yield scoped
