"""The Google Compute Engine driver: lists, creates and deletes a space's VMs, nothing more.

Imported only when a pass touches a `cloud: gce` space (`vcyclectl.clouds.registry`),
because `google.cloud.compute_v1` alone costs most of a second to import.

What it reads and sends lives next to it, one concern per module: `states` (the one
`STATE_MAP` from `Instance.status` to `MachineState`, and pre-emption), `errors` (the one
`ErrorTranslator` that turns every SDK, HTTP and operation error into `Transient`,
`QuotaExceeded` or `Fatal`), `requests` (the instance body, labels, request ids, filters,
paging) and `clients` (credentials, REST clients, the read retry). This module keeps the
order of calls, the per-pass caches and the one `_to_machine()`.

API use per pass, kept small on purpose (it is what a project's read quota pays for):
- list: one paginated `instances.aggregatedList` over all zones, filtered server-side by our
  labels; for spaces that use SPOT, one more paginated `globalOperations.aggregatedList`
  filtered to preemption operations. Never a call per instance.
- create: `instances.insert` with a `requestId`, then `zoneOperations.wait` until DONE.
- delete: `instances.delete` (404 = already gone), then `zoneOperations.wait`.
- flavors: one `machineTypes.get` per configured machine type, once per driver instance.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import compute_v1

from vcyclectl.clouds.contract import TAG_MACHINETYPE, TAG_SPACE, TAG_STATE_ID, CloudContext
from vcyclectl.clouds.gce import requests
from vcyclectl.clouds.gce.clients import Clients, load_credentials, make_clients, read_retry
from vcyclectl.clouds.gce.errors import (
    ALREADY_EXISTS_CODES, DEFAULT_RETRY_AFTER, NOT_FOUND_CODES, ErrorTranslator,
    OperationFailed, ZoneExhausted,
)
from vcyclectl.clouds.gce.options import INSTANCE_NAME, GceOptions, label_value
from vcyclectl.clouds.gce.states import (
    PREEMPTED_OPERATION, is_recent_preemption, is_spot, machine_state, timestamp,
)
from vcyclectl.errors import Fatal, Transient
from vcyclectl.core.model import CloudMachine, Flavor, MachineSpec, MachineState

#: An instance or operation as `to_dict` gives it: JSON-like, camelCase keys as in the API.
Resource = Mapping[str, Any]


def _last_segment(url: str | None) -> str:
    return (url or "").rstrip("/").rsplit("/", 1)[-1]


def _as_dict(message: compute_v1.Instance | compute_v1.Operation) -> dict[str, Any]:
    """A compute_v1 message as the API's JSON (camelCase keys, enums as names)."""
    data: dict[str, Any] = type(message).to_dict(message, use_integers_for_enums=False,
                                                 preserving_proto_field_name=False)
    return data


class GceCloud:
    """One `cloud: gce` space of one state directory.

    Built once per pass; `create` and `delete` are then called concurrently from the
    reconciler's thread pool. Credentials are loaded once, here, so a broken key file fails
    the space before any work; each thread gets its own REST clients (`threading.local`),
    because the transport's `requests.Session` is not documented as thread-safe.
    """

    def __init__(self, context: CloudContext[GceOptions]) -> None:
        options = context.options
        if not isinstance(options, GceOptions):
            raise Fatal(f"space {context.space}: the gce driver needs a gce: block")
        problems = options.problems()
        if problems:
            key, message = problems[0]
            raise Fatal(f"space {context.space}: gce.{key}: {message}")
        self.context = context
        self.options: GceOptions = options
        self.project: str = options.project or ""
        self._local = threading.local()
        self._lock = threading.Lock()
        self._exhausted: set[tuple[str, str]] = set()  # (zone, machine type) this pass
        self._flavors: list[Flavor] | None = None
        self._processors: dict[str, int] = {}
        self._credentials, credentials_source = load_credentials(options, self.project)
        #: The one error translator of this space: every GCE call runs inside it.
        self._translated = ErrorTranslator(self.project, credentials_source)
        self._read_retry = read_retry(options.retry_seconds)
        self._clients()  # the creating thread's clients, so a bad endpoint fails here

    # -- plumbing ---------------------------------------------------------------------

    def _clients(self) -> Clients:
        """This thread's clients, made on first use (`requests.Session` is per thread)."""
        clients: Clients | None = getattr(self._local, "clients", None)
        if clients is None:
            clients = make_clients(self._credentials, self.options)
            self._local.clients = clients
        return clients

    # -- listing ----------------------------------------------------------------------

    def _is_ours(self, instance: Resource) -> bool:
        """Checked again client-side: acting on someone else's VM is the one unforgivable bug."""
        labels: Mapping[str, str] = instance.get("labels", {})
        return bool(labels.get(TAG_SPACE) == label_value(self.context.space)
                and labels.get(TAG_STATE_ID) == label_value(self.context.state_id))

    def list_machines(self) -> list[CloudMachine]:
        """All of this space's VMs in every zone of the project, or `IncompleteListing`.

        Listing is project-wide rather than over the configured zones so that VMs in a
        zone since removed from the config are still seen (and ended), never orphaned.
        A scope reported unreachable makes the listing incomplete: the reconciler must not
        act on a partial view.
        """
        clients = self._clients()
        request = compute_v1.AggregatedListInstancesRequest(
            project=self.project,
            filter=requests.label_filter(self.context.space, self.context.state_id),
            max_results=self.options.page_size)
        instances: list[dict[str, Any]] = []
        with self._translated("listing instances"):
            pager = clients.instances.aggregated_list(
                request=request, retry=self._read_retry,
                timeout=self.options.request_timeout_seconds)
            for scoped in requests.complete_scopes(pager, self.project):
                instances.extend(_as_dict(instance) for instance in scoped.instances)
        ours = [i for i in instances if self._is_ours(i)]
        preempted: dict[str, dict[str, Any]] = {}
        if self._uses_spot() or any(is_spot(i) for i in ours):
            preempted = self._preemptions()
        machines = [self._to_machine(i, i.get("id", "") in preempted) for i in ours]
        listed = {m.id for m in machines}
        machines.extend(self._vanished_preempted(op) for key, op in preempted.items()
                        if key not in listed and is_recent_preemption(op))
        return machines

    def _uses_spot(self) -> bool:
        return self.options.spot or any(getattr(o, "spot", False)
                                        for o in self.context.machinetype_options.values())

    def _preemptions(self) -> dict[str, dict[str, Any]]:
        """Preemption operations in the project, by target instance id.

        Why operations and not the instance: a SPOT VM with termination action DELETE is
        gone right after it is pre-empted, so the instance cannot tell us anything; and
        with STOP, a pre-empted VM (TERMINATED, provisioningModel SPOT, lastStopTimestamp
        set) looks exactly like one whose payload finished and halted itself - which is how
        our VMs normally end. The `compute.instances.preempted` operation that GCE records
        in the zone is the documented, unambiguous signal (it is what `gcloud compute
        operations list --filter operationType=compute.instances.preempted` shows).
        """
        clients = self._clients()
        request = compute_v1.AggregatedListGlobalOperationsRequest(
            project=self.project, filter=requests.PREEMPTION_FILTER,
            max_results=self.options.page_size)
        found: dict[str, dict[str, Any]] = {}
        with self._translated("listing preemption operations"):
            pager = clients.global_operations.aggregated_list(
                request=request, retry=self._read_retry,
                timeout=self.options.request_timeout_seconds)
            for scoped in requests.complete_scopes(pager, self.project):
                for op in scoped.operations:
                    data = _as_dict(op)
                    if data.get("operationType") == PREEMPTED_OPERATION:
                        found[str(data.get("targetId", ""))] = data
        return found

    def _vanished_preempted(self, operation: Resource) -> CloudMachine:
        """A SPOT VM that GCE pre-empted and deleted: reported GONE so its end is recorded.

        The operation carries no labels, so machinetype is unknown here (empty): the
        reconciler matches it by name to its record of the machine, and a GONE machine is
        never live, so it is never adopted or counted.
        """
        return CloudMachine(
            id=str(operation.get("targetId", "")),
            name=_last_segment(operation.get("targetLink")),
            space=self.context.space, machinetype="", state=MachineState.GONE,
            processors=0, stopped_at=timestamp(operation.get("insertTime")),
            zone=_last_segment(operation.get("zone")) or None, spot=True, preempted=True,
            state_reason="pre-empted and deleted by GCE", raw=dict(operation))

    def _to_machine(self, instance: Resource, preempted: bool) -> CloudMachine:
        """The one place a GCE instance becomes a `CloudMachine`; the payload stays in raw."""
        labels = instance.get("labels", {})
        flavor = _last_segment(instance.get("machineType"))
        addresses: list[str] = []
        for nic in instance.get("networkInterfaces", []):
            if nic.get("networkIP"):
                addresses.append(nic["networkIP"])
            addresses.extend(ac["natIP"] for ac in nic.get("accessConfigs", [])
                             if ac.get("natIP"))
        reason = instance.get("statusMessage") or None
        if preempted:
            reason = "pre-empted by GCE"
        return CloudMachine(
            id=str(instance.get("id", "")),
            name=str(instance.get("name", "")),
            space=self.context.space,
            machinetype=self._machinetype_of(labels),
            state=machine_state(instance),
            processors=self._processors_of(labels, flavor),
            created_at=timestamp(instance.get("creationTimestamp")),
            started_at=timestamp(instance.get("lastStartTimestamp")),
            stopped_at=timestamp(instance.get("lastStopTimestamp")),
            flavor=flavor or None,
            zone=_last_segment(instance.get("zone")) or None,
            addresses=tuple(addresses),
            spot=is_spot(instance),
            preempted=preempted,
            state_reason=reason,
            raw=dict(instance),
        )

    def _machinetype_of(self, labels: Mapping[str, str]) -> str:
        """Undo the label encoding for the configured machinetypes (their names have no '.')."""
        encoded = labels.get(TAG_MACHINETYPE, "")
        for name in self.context.machinetype_options:
            if label_value(name) == encoded:
                return name
        return encoded

    def _processors_of(self, labels: Mapping[str, str], machine_type: str) -> int:
        value = labels.get(requests.TAG_PROCESSORS, "")
        if value.isdigit():
            return int(value)
        return self._machine_type_processors(machine_type)

    def _machine_type_processors(self, machine_type: str) -> int:
        """vCPUs of a machine type, asked once per driver instance (labels usually say)."""
        with self._lock:
            if machine_type in self._processors:
                return self._processors[machine_type]
        clients = self._clients()
        with self._translated(f"looking up machine type {machine_type}"):
            try:
                found = clients.machine_types.get(
                    project=self.project, zone=self.options.zones[0],
                    machine_type=machine_type, retry=self._read_retry,
                    timeout=self.options.request_timeout_seconds)
                count = int(found.guest_cpus)
            except gexc.NotFound:
                count = 0
        with self._lock:
            self._processors[machine_type] = count
        return count

    # -- create -----------------------------------------------------------------------

    def create(self, spec: MachineSpec) -> CloudMachine:
        """Create `spec.name` in the first zone (of its rotation) that has capacity.

        Idempotent on the name: the `requestId` makes a retried insert return the first
        operation, and an insert that finds the VM already there returns that VM. A zone out
        of capacity for the machine type is skipped for the rest of this pass (this driver
        instance), so later creates go straight to zones that still have room.
        """
        options = self.context.options_for(spec.machinetype)
        if not isinstance(options, GceOptions):
            options = self.options
        if not INSTANCE_NAME.fullmatch(spec.name):
            raise Fatal(f"{spec.name!r} is not a valid GCE instance name "
                        "([a-z]([-a-z0-9]*[a-z0-9])?, at most 63 characters)")
        image = spec.image or options.image
        if not image:
            raise Fatal(f"space {spec.space}, machinetype {spec.machinetype}: no image "
                        "(set image on the machinetype or in the gce: block)")
        last = ""
        for zone in requests.zone_order(spec.name, options.zones):
            with self._lock:
                if (zone, spec.flavor.name) in self._exhausted:
                    continue
            try:
                return self._create_in_zone(spec, options, image, zone)
            except ZoneExhausted as exc:
                last = str(exc)
                with self._lock:
                    self._exhausted.add((zone, spec.flavor.name))
        raise Transient(f"GCE project {self.project}: no capacity for {spec.flavor.name} in "
                        f"any of {', '.join(options.zones)} this pass"
                        + (f" ({last})" if last else ""), retry_after=60.0)

    def _create_in_zone(self, spec: MachineSpec, options: GceOptions, image: str,
                        zone: str) -> CloudMachine:
        clients = self._clients()
        body = requests.instance_body(spec, options, image, zone, self.project)
        with self._translated(f"creating {spec.name} in {zone}", zone_fallback=True):
            try:
                operation = clients.instances.insert_unary(
                    request=compute_v1.InsertInstanceRequest(
                        project=self.project, zone=zone, instance_resource=body,
                        request_id=requests.request_id(self.project, zone, spec.name)),
                    timeout=options.request_timeout_seconds)
                done = self._wait(operation, zone, options)
            except gexc.Conflict:
                return self._get_machine(zone, spec.name)
            except OperationFailed as failed:
                if failed.codes & ALREADY_EXISTS_CODES:
                    return self._get_machine(zone, spec.name)
                raise
        return CloudMachine(
            id=str(done.get("targetId", "")), name=spec.name, space=spec.space,
            machinetype=spec.machinetype, state=MachineState.STARTING,
            processors=spec.processors, created_at=time.time(), flavor=spec.flavor.name,
            zone=zone, spot=options.spot, raw=done)

    def _get_machine(self, zone: str, name: str) -> CloudMachine:
        found = self._clients().instances.get(project=self.project, zone=zone, instance=name,
                                              retry=self._read_retry,
                                              timeout=self.options.request_timeout_seconds)
        instance = _as_dict(found)
        if not self._is_ours(instance):
            raise Fatal(f"GCE project {self.project}: an instance named {name} already "
                        f"exists in {zone} and is not this space's")
        return self._to_machine(instance, False)

    def _wait(self, operation: compute_v1.Operation, zone: str, options: GceOptions
              ) -> dict[str, Any]:
        """Wait for a zone operation with `zoneOperations.wait` and return it when DONE.

        `wait` blocks server-side (up to about two minutes per call), so this costs one call
        per couple of minutes rather than a poll loop. Errors raise `OperationFailed`.
        """
        deadline = time.monotonic() + options.operation_timeout_seconds
        clients = self._clients()
        while operation.status != compute_v1.Operation.Status.DONE:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Transient(f"GCE project {self.project}: operation {operation.name} in "
                                f"{zone} still running after "
                                f"{options.operation_timeout_seconds:.0f}s",
                                retry_after=DEFAULT_RETRY_AFTER)
            operation = clients.zone_operations.wait(
                project=self.project, zone=zone, operation=operation.name,
                retry=self._read_retry, timeout=min(remaining, 150.0))
        data = _as_dict(operation)
        if data.get("error", {}).get("errors"):
            raise OperationFailed(data)
        return data

    # -- delete -----------------------------------------------------------------------

    def delete(self, machine: CloudMachine) -> None:
        """Delete and wait; a VM that is already gone (404, in any zone tried) is success."""
        options = self.context.options_for(machine.machinetype)
        if not isinstance(options, GceOptions):
            options = self.options
        zones = [machine.zone] if machine.zone else list(options.zones)
        clients = self._clients()
        for zone in zones:
            with self._translated(f"deleting {machine.name} in {zone}"):
                try:
                    operation = clients.instances.delete_unary(
                        request=compute_v1.DeleteInstanceRequest(
                            project=self.project, zone=zone, instance=machine.name,
                            request_id=requests.delete_request_id(
                                self.project, zone, machine.name, machine.id)),
                        timeout=options.request_timeout_seconds)
                    self._wait(operation, zone, options)
                except gexc.NotFound:
                    continue
                except OperationFailed as failed:
                    if not failed.codes & NOT_FOUND_CODES:
                        raise
            return

    # -- flavors ----------------------------------------------------------------------

    def flavors(self) -> list[Flavor]:
        """Configured machine types in order, with vCPUs and memory from the API (cached)."""
        with self._lock:
            if self._flavors is not None:
                return list(self._flavors)
        names: list[str] = list(self.options.machine_types)
        for extra in self.context.machinetype_options.values():
            names.extend(n for n in getattr(extra, "machine_types", []) if n not in names)
        clients = self._clients()
        found: list[Flavor] = []
        for name in names:
            with self._translated(f"looking up machine type {name}"):
                try:
                    mt = clients.machine_types.get(
                        project=self.project, zone=self.options.zones[0], machine_type=name,
                        retry=self._read_retry, timeout=self.options.request_timeout_seconds)
                except gexc.NotFound as exc:
                    raise Fatal(f"GCE project {self.project}: machine type {name} is not "
                                f"offered in {self.options.zones[0]}") from exc
            found.append(Flavor(name=name, processors=int(mt.guest_cpus),
                                memory_mb=int(mt.memory_mb),
                                price_per_hour=self.options.price_per_hour.get(name),
                                spot=self.options.spot, currency=self.options.currency))
        with self._lock:
            self._flavors = found
            for flavor in found:
                self._processors[flavor.name] = flavor.processors
        return list(found)

