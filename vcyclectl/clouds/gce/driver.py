"""The Google Compute Engine driver: lists, creates and deletes a space's VMs, nothing more.

Imported only when a pass touches a `cloud: gce` space (`vcyclectl.clouds.registry`),
because `google.cloud.compute_v1` alone costs most of a second to import.

Shape of the module, as for every driver: one `STATE_MAP` from GCE's `Instance.status` to
`MachineState`, one context manager (`GceCloud._translated`) that turns every SDK, HTTP and
operation error into `Transient`, `QuotaExceeded` or `Fatal`, and one `_to_machine()`.

API use per pass, kept small on purpose (it is what a project's read quota pays for):
- list: one paginated `instances.aggregatedList` over all zones, filtered server-side by our
  labels; for spaces that use SPOT, one more paginated `globalOperations.aggregatedList`
  filtered to preemption operations. Never a call per instance.
- create: `instances.insert` with a `requestId`, then `zoneOperations.wait` until DONE.
- delete: `instances.delete` (404 = already gone), then `zoneOperations.wait`.
- flavors: one `machineTypes.get` per configured machine type, once per driver instance.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, NoReturn

import google.auth
import google.auth.exceptions
import requests
from google.api_core import exceptions as gexc
from google.api_core import retry as retries
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.oauth2 import service_account
from google.cloud import compute_v1

from vcyclectl.clouds.contract import TAG_MACHINETYPE, TAG_SPACE, TAG_STATE_ID, CloudContext
from vcyclectl.clouds.gce.options import INSTANCE_NAME, GceOptions, label_value
from vcyclectl.errors import CloudError, Fatal, IncompleteListing, QuotaExceeded, Transient
from vcyclectl.core.model import CloudMachine, Flavor, MachineSpec, MachineState

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

#: Label holding the processor count, so a listing never has to look machine types up.
TAG_PROCESSORS = "vcyclectl-processors"

#: Operation / HTTP error codes, by what the reconciler should do about them.
QUOTA_CODES = frozenset({"QUOTA_EXCEEDED", "quotaExceeded"})
ZONE_EXHAUSTED_CODES = frozenset({"ZONE_RESOURCE_POOL_EXHAUSTED",
                                  "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
                                  "insufficientCapacity", "resourcePoolExhausted"})
TRANSIENT_CODES = frozenset({"RATE_LIMIT_EXCEEDED", "rateLimitExceeded",
                             "userRateLimitExceeded", "RESOURCE_NOT_READY", "resourceNotReady",
                             "INTERNAL_ERROR", "internalError", "backendError",
                             "SERVICE_UNAVAILABLE", "OPERATION_CANCELED_BY_USER",
                             "RESOURCE_OPERATION_RATE_EXCEEDED"})
ALREADY_EXISTS_CODES = frozenset({"RESOURCE_ALREADY_EXISTS", "alreadyExists"})
NOT_FOUND_CODES = frozenset({"RESOURCE_NOT_FOUND", "notFound"})

PREEMPTED_OPERATION = "compute.instances.preempted"
#: How far back a preemption operation still explains a vanished SPOT VM. Operations are
#: kept by GCE for a limited time anyway; an hour covers many missed cron passes.
PREEMPTION_LOOKBACK_SECONDS = 3600.0

#: uuid5 namespace for `requestId`s: the API accepts only UUIDs there, and a retry of the
#: same create must send the same id, so it is derived from project, zone and name.
_REQUEST_NAMESPACE = uuid.UUID("6f1d0f3e-9c2b-5b8a-8e51-7663796c6563")

_DEFAULT_RETRY_AFTER = 5.0


class _OperationFailed(Exception):
    """A zone operation finished with errors; `_translated` decides what that means."""

    def __init__(self, operation: Mapping[str, Any]) -> None:
        errors = operation.get("error", {}).get("errors", [])
        self.codes = frozenset(str(e.get("code", "")) for e in errors)
        self.message = "; ".join(f"{e.get('code')}: {e.get('message', '')}" for e in errors)
        super().__init__(self.message)


class _ZoneExhausted(Exception):
    """This zone has no capacity for the machine type now; `create` tries the next zone."""


@dataclass
class _Clients:
    """The REST clients of one thread (their `requests` sessions are not shared)."""

    instances: Any
    zone_operations: Any
    global_operations: Any
    machine_types: Any


def _timestamp(text: str | None) -> float | None:
    """RFC 3339 (`2026-11-25T11:02:03.123-08:00`) to epoch seconds; None if absent."""
    if not text:
        return None
    try:
        return _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _last_segment(url: str | None) -> str:
    return (url or "").rstrip("/").rsplit("/", 1)[-1]


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


class GceCloud:
    """One `cloud: gce` space of one state directory.

    Built once per pass; `create` and `delete` are then called concurrently from the
    reconciler's thread pool. Credentials are loaded once, here, so a broken key file fails
    the space before any work; each thread gets its own REST clients (`threading.local`),
    because the transport's `requests.Session` is not documented as thread-safe.
    """

    def __init__(self, context: CloudContext) -> None:
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
        self._credentials, self._credentials_source = self._load_credentials()
        self._read_retry = self._make_read_retry(options.retry_seconds)
        self._clients()  # the creating thread's clients, so a bad endpoint fails here

    # -- plumbing ---------------------------------------------------------------------

    def _load_credentials(self) -> tuple[Credentials, str]:
        """Application Default Credentials, or anonymous for test and private endpoints.

        Returns the credentials and a description of where they came from, for error
        messages (never the secret itself).
        """
        options = self.options
        if options.credentials == "anonymous":
            return AnonymousCredentials(), "anonymous credentials"  # type: ignore[no-untyped-call]
        scopes = ["https://www.googleapis.com/auth/cloud-platform"]
        if options.credentials_file:
            return self._service_account(options.credentials_file, scopes), (
                f"credentials_file {options.credentials_file}")
        try:
            creds, _ = google.auth.default(scopes=scopes)
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise Fatal(f"GCE project {self.project}: no usable credentials ({exc}); set "
                        "credentials_file or GOOGLE_APPLICATION_CREDENTIALS to a service "
                        "account key, or run on a GCE host with a service account") from exc
        return creds, "Application Default Credentials"

    def _service_account(self, path: str, scopes: list[str]) -> Credentials:
        """A service-account key file, read as exactly that (never a generic config).

        `google.auth.load_credentials_from_file` would accept any credential type a file
        names, including external-account configs that fetch URLs or run programs; a key
        named in our YAML is only ever a service-account key.
        """
        try:
            with open(path, encoding="utf-8") as handle:
                info = json.load(handle)
            if not isinstance(info, dict) or info.get("type") != "service_account":
                raise ValueError("not a service account key (\"type\": \"service_account\")")
            from_info = service_account.Credentials.from_service_account_info
            creds: Credentials = from_info(info, scopes=scopes)  # type: ignore[no-untyped-call]
        except (OSError, ValueError, KeyError) as exc:
            raise Fatal(f"GCE project {self.project}: credentials_file {path} is not a usable "
                        f"service account key: {exc}") from exc
        return creds

    @staticmethod
    def _make_read_retry(budget: float) -> Any:
        """Bounded, backed-off retries for idempotent reads (lists, gets, operation waits).

        The SDK's own default retries 503s on reads for up to ten minutes, which would hold
        a cron pass (and its space lock) through an outage; ours gives up after `budget`
        seconds and lets `Transient` tell the reconciler. Writes are never retried here:
        the reconciler retries them, and `requestId` makes that safe.
        """
        if budget <= 0:
            return None
        return retries.Retry(
            initial=0.2, maximum=5.0, multiplier=2.0, timeout=budget,
            predicate=retries.if_exception_type(
                gexc.ServiceUnavailable, gexc.InternalServerError, gexc.BadGateway,
                gexc.GatewayTimeout, gexc.TooManyRequests, gexc.DeadlineExceeded))

    def _clients(self) -> _Clients:
        clients: _Clients | None = getattr(self._local, "clients", None)
        if clients is None:
            kwargs: dict[str, Any] = {"credentials": self._credentials, "transport": "rest"}
            if self.options.api_endpoint:
                kwargs["client_options"] = ClientOptions(api_endpoint=self.options.api_endpoint)
            clients = _Clients(
                instances=compute_v1.InstancesClient(**kwargs),
                # operation.result() would poll through an internal client that ignores
                # client_options, so operations are waited for with our own client.
                zone_operations=compute_v1.ZoneOperationsClient(**kwargs),
                global_operations=compute_v1.GlobalOperationsClient(**kwargs),
                machine_types=compute_v1.MachineTypesClient(**kwargs),
            )
            self._local.clients = clients
        return clients

    @contextmanager
    def _translated(self, doing: str, *, zone_fallback: bool = False) -> Iterator[None]:
        """The one place where SDK, HTTP and operation errors become our error types.

        401 and 403 mean the space cannot work until someone fixes credentials or IAM
        (`Fatal`, naming the project and what to check) - except a 403 whose reason is a
        quota or rate limit. 429, 5xx, timeouts and connection errors are `Transient` with a
        retry delay. Operation errors are classified by their code the same way. A zone
        out of capacity raises `_ZoneExhausted` only where the caller can fall back to
        another zone (`zone_fallback`, i.e. inserts); anywhere else it is `Transient`.
        """
        try:
            yield
        except (CloudError, _ZoneExhausted):
            raise
        except _OperationFailed as exc:
            self._raise_for_codes(exc.codes, exc.message, doing, zone_fallback=zone_fallback)
        except gexc.GoogleAPICallError as exc:
            self._raise_for_api_error(exc, doing, zone_fallback=zone_fallback)
        except gexc.RetryError as exc:
            raise Transient(f"GCE project {self.project}: still failing after retries while "
                            f"{doing}: {exc.cause or exc}",
                            retry_after=_DEFAULT_RETRY_AFTER) from exc
        except (google.auth.exceptions.TransportError, requests.RequestException,
                TimeoutError, ConnectionError) as exc:
            raise Transient(f"GCE project {self.project}: network error while {doing}: "
                            f"{type(exc).__name__}", retry_after=_DEFAULT_RETRY_AFTER) from exc
        except google.auth.exceptions.GoogleAuthError as exc:
            # RefreshError (key deleted or disabled), or anonymous credentials asked to
            # refresh after a 401: either way the credentials are the problem.
            raise Fatal(f"GCE project {self.project}: {self._credentials_source} could not "
                        f"authenticate (401) while {doing}: {exc}. Check credentials_file / "
                        "GOOGLE_APPLICATION_CREDENTIALS and that the service account key is "
                        "valid and not deleted") from exc

    def _raise_for_api_error(self, exc: gexc.GoogleAPICallError, doing: str, *,
                             zone_fallback: bool) -> NoReturn:
        reasons = {str(e.get("reason")) for e in exc.errors if isinstance(e, dict)}
        if exc.reason:
            reasons.add(str(exc.reason))
        status = int(exc.code) if exc.code is not None else None
        retry_after = _DEFAULT_RETRY_AFTER
        response = getattr(exc, "response", None)
        if response is not None:
            try:
                retry_after = float(response.headers.get("Retry-After", retry_after))
            except (TypeError, ValueError):
                pass
        if reasons & (QUOTA_CODES | ZONE_EXHAUSTED_CODES | TRANSIENT_CODES):
            self._raise_for_codes(frozenset(reasons), exc.message, doing,
                                  zone_fallback=zone_fallback, retry_after=retry_after)
        if status == 401:
            raise Fatal(f"GCE project {self.project}: {self._credentials_source} rejected "
                        f"(401) while {doing}: {exc.message}. Check credentials_file / "
                        "GOOGLE_APPLICATION_CREDENTIALS: the key may be revoked, expired or "
                        "for another account") from exc
        if status == 403:
            raise Fatal(f"GCE project {self.project}: permission denied (403) while {doing}: "
                        f"{exc.message}. Check that the project id is right, that the Compute "
                        f"Engine API is enabled in it, and that {self._credentials_source} "
                        "belongs to a principal with roles/compute.instanceAdmin.v1 on the "
                        "project (and roles/iam.serviceAccountUser on the VMs' service "
                        "account)") from exc
        if status == 429 or (status is not None and status >= 500) or isinstance(
                exc, (gexc.DeadlineExceeded, gexc.RetryError)):
            raise Transient(f"GCE project {self.project}: {status or 'timeout'} while "
                            f"{doing}: {exc.message}", retry_after=retry_after) from exc
        if status == 409:
            raise Transient(f"GCE project {self.project}: conflict while {doing}: "
                            f"{exc.message}", retry_after=retry_after) from exc
        raise Fatal(f"GCE project {self.project}: the API refused {doing} ({status}): "
                    f"{exc.message}. Check the gce: block (image, network, machine types, "
                    "zones)") from exc

    def _raise_for_codes(self, codes: frozenset[str], message: str, doing: str, *,
                         zone_fallback: bool, retry_after: float = _DEFAULT_RETRY_AFTER
                         ) -> NoReturn:
        if codes & QUOTA_CODES:
            raise QuotaExceeded(f"GCE project {self.project}: quota exceeded while {doing}: "
                                f"{message}")
        if codes & ZONE_EXHAUSTED_CODES and zone_fallback:
            raise _ZoneExhausted(message)
        if codes & (TRANSIENT_CODES | ZONE_EXHAUSTED_CODES):
            raise Transient(f"GCE project {self.project}: {doing}: {message}",
                            retry_after=retry_after)
        raise Fatal(f"GCE project {self.project}: {doing} failed: {message}")

    # -- listing ----------------------------------------------------------------------

    def _label_filter(self) -> str:
        return (f'(labels.{TAG_SPACE} = "{label_value(self.context.space)}") '
                f'(labels.{TAG_STATE_ID} = "{label_value(self.context.state_id)}")')

    def _is_ours(self, instance: Mapping[str, Any]) -> bool:
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
            project=self.project, filter=self._label_filter(),
            max_results=self.options.page_size)
        instances: list[dict[str, Any]] = []
        with self._translated("listing instances"):
            pager = clients.instances.aggregated_list(
                request=request, retry=self._read_retry,
                timeout=self.options.request_timeout_seconds)
            for scoped in self._complete_scopes(pager):
                for instance in scoped.instances:
                    instances.append(compute_v1.Instance.to_dict(
                        instance, use_integers_for_enums=False,
                        preserving_proto_field_name=False))
        ours = [i for i in instances if self._is_ours(i)]
        preempted: dict[str, dict[str, Any]] = {}
        if self._uses_spot() or any(_is_spot(i) for i in ours):
            preempted = self._preemptions()
        machines = [self._to_machine(i, i.get("id", "") in preempted) for i in ours]
        listed = {m.id for m in machines}
        machines.extend(self._vanished_preempted(op) for key, op in preempted.items()
                        if key not in listed and self._recent(op))
        return machines

    def _complete_scopes(self, pager: Any) -> Iterator[Any]:
        """Every zone's part of every page of an aggregated list, or `IncompleteListing` as
        soon as GCE says a page or a zone could not be reached: never a partial view."""
        for page in pager.pages:
            if list(page.unreachables):
                raise IncompleteListing(f"GCE project {self.project}: unreachable: "
                                        f"{', '.join(page.unreachables)}")
            for scope, scoped in page.items.items():
                if scoped.warning.code == "UNREACHABLE":
                    raise IncompleteListing(f"GCE project {self.project}: {scope} "
                                            f"unreachable: {scoped.warning.message}")
                yield scoped

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
            project=self.project, filter=f'(operationType = "{PREEMPTED_OPERATION}")',
            max_results=self.options.page_size)
        found: dict[str, dict[str, Any]] = {}
        with self._translated("listing preemption operations"):
            pager = clients.global_operations.aggregated_list(
                request=request, retry=self._read_retry,
                timeout=self.options.request_timeout_seconds)
            for scoped in self._complete_scopes(pager):
                for op in scoped.operations:
                    data = compute_v1.Operation.to_dict(
                        op, use_integers_for_enums=False,
                        preserving_proto_field_name=False)
                    if data.get("operationType") == PREEMPTED_OPERATION:
                        found[str(data.get("targetId", ""))] = data
        return found

    @staticmethod
    def _recent(operation: Mapping[str, Any]) -> bool:
        started = _timestamp(operation.get("insertTime"))
        return started is not None and time.time() - started < PREEMPTION_LOOKBACK_SECONDS

    def _vanished_preempted(self, operation: Mapping[str, Any]) -> CloudMachine:
        """A SPOT VM that GCE pre-empted and deleted: reported GONE so its end is recorded.

        The operation carries no labels, so machinetype is unknown here (empty): the
        reconciler matches it by name to its record of the machine, and a GONE machine is
        never live, so it is never adopted or counted.
        """
        return CloudMachine(
            id=str(operation.get("targetId", "")),
            name=_last_segment(operation.get("targetLink")),
            space=self.context.space, machinetype="", state=MachineState.GONE,
            processors=0, stopped_at=_timestamp(operation.get("insertTime")),
            zone=_last_segment(operation.get("zone")) or None, spot=True, preempted=True,
            state_reason="pre-empted and deleted by GCE", raw=dict(operation))

    def _to_machine(self, instance: Mapping[str, Any], preempted: bool) -> CloudMachine:
        """The one place a GCE instance becomes a `CloudMachine`; the payload stays in raw."""
        labels = instance.get("labels", {})
        status = str(instance.get("status", ""))
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
            state=STATE_MAP.get(status, MachineState.UNKNOWN),
            processors=self._processors_of(labels, flavor),
            created_at=_timestamp(instance.get("creationTimestamp")),
            started_at=_timestamp(instance.get("lastStartTimestamp")),
            stopped_at=_timestamp(instance.get("lastStopTimestamp")),
            flavor=flavor or None,
            zone=_last_segment(instance.get("zone")) or None,
            addresses=tuple(addresses),
            spot=_is_spot(instance),
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
        value = labels.get(TAG_PROCESSORS, "")
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
        for zone in zone_order(spec.name, options.zones):
            with self._lock:
                if (zone, spec.flavor.name) in self._exhausted:
                    continue
            try:
                return self._create_in_zone(spec, options, image, zone)
            except _ZoneExhausted as exc:
                last = str(exc)
                with self._lock:
                    self._exhausted.add((zone, spec.flavor.name))
        raise Transient(f"GCE project {self.project}: no capacity for {spec.flavor.name} in "
                        f"any of {', '.join(options.zones)} this pass"
                        + (f" ({last})" if last else ""), retry_after=60.0)

    def _create_in_zone(self, spec: MachineSpec, options: GceOptions, image: str,
                        zone: str) -> CloudMachine:
        clients = self._clients()
        body = self._instance_body(spec, options, image, zone)
        with self._translated(f"creating {spec.name} in {zone}", zone_fallback=True):
            try:
                operation = clients.instances.insert_unary(
                    request=compute_v1.InsertInstanceRequest(
                        project=self.project, zone=zone, instance_resource=body,
                        request_id=request_id(self.project, zone, spec.name)),
                    timeout=options.request_timeout_seconds)
                done = self._wait(operation, zone, options)
            except gexc.Conflict:
                return self._get_machine(zone, spec.name)
            except _OperationFailed as failed:
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
        instance = compute_v1.Instance.to_dict(found, use_integers_for_enums=False,
                                               preserving_proto_field_name=False)
        if not self._is_ours(instance):
            raise Fatal(f"GCE project {self.project}: an instance named {name} already "
                        f"exists in {zone} and is not this space's")
        return self._to_machine(instance, False)

    def _instance_body(self, spec: MachineSpec, options: GceOptions, image: str,
                       zone: str) -> Any:
        """The `Instance` resource to insert: labels, user-data, disk, network, scheduling."""
        region = zone.rsplit("-", 1)[0]
        labels = dict(options.labels)
        labels.update({
            TAG_SPACE: label_value(spec.space),
            TAG_MACHINETYPE: label_value(spec.machinetype),
            TAG_STATE_ID: label_value(spec.state_id),
            TAG_PROCESSORS: str(spec.processors),
        })
        items = [compute_v1.Items(key=k, value=v) for k, v in spec.metadata.items()
                 if k != "user-data"]
        # cloud-init's GCE datasource reads the `user-data` metadata key.
        items.append(compute_v1.Items(key="user-data", value=spec.user_data))
        nic = compute_v1.NetworkInterface(
            network=resource_url(options.network, "networks", self.project))
        if options.subnetwork:
            nic.subnetwork = resource_url(options.subnetwork, "subnetworks", self.project,
                                          f"regions/{region}")
        if options.external_ip:
            nic.access_configs = [compute_v1.AccessConfig(name="External NAT",
                                                          type_="ONE_TO_ONE_NAT")]
        if options.spot:
            scheduling = compute_v1.Scheduling(
                provisioning_model="SPOT",
                instance_termination_action=options.instance_termination_action,
                automatic_restart=False, on_host_maintenance="TERMINATE")
        else:
            scheduling = compute_v1.Scheduling(provisioning_model="STANDARD")
        instance = compute_v1.Instance(
            name=spec.name,
            machine_type=f"zones/{zone}/machineTypes/{spec.flavor.name}",
            labels=labels,
            metadata=compute_v1.Metadata(items=items),
            disks=[compute_v1.AttachedDisk(
                boot=True, auto_delete=True, type_="PERSISTENT",
                initialize_params=compute_v1.AttachedDiskInitializeParams(
                    source_image=image_url(image, self.project),
                    disk_size_gb=options.disk_size_gb,
                    disk_type=f"zones/{zone}/diskTypes/{options.disk_type}"))],
            network_interfaces=[nic],
            scheduling=scheduling,
        )
        if options.service_account:
            instance.service_accounts = [compute_v1.ServiceAccount(
                email=options.service_account, scopes=list(options.scopes))]
        if options.network_tags:
            instance.tags = compute_v1.Tags(items=list(options.network_tags))
        return instance

    def _wait(self, operation: Any, zone: str, options: GceOptions) -> dict[str, Any]:
        """Wait for a zone operation with `zoneOperations.wait` and return it when DONE.

        `wait` blocks server-side (up to about two minutes per call), so this costs one call
        per couple of minutes rather than a poll loop. Errors raise `_OperationFailed`.
        """
        deadline = time.monotonic() + options.operation_timeout_seconds
        clients = self._clients()
        while operation.status != compute_v1.Operation.Status.DONE:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Transient(f"GCE project {self.project}: operation {operation.name} in "
                                f"{zone} still running after "
                                f"{options.operation_timeout_seconds:.0f}s",
                                retry_after=_DEFAULT_RETRY_AFTER)
            operation = clients.zone_operations.wait(
                project=self.project, zone=zone, operation=operation.name,
                retry=self._read_retry, timeout=min(remaining, 150.0))
        data: dict[str, Any] = compute_v1.Operation.to_dict(
            operation, use_integers_for_enums=False, preserving_proto_field_name=False)
        if data.get("error", {}).get("errors"):
            raise _OperationFailed(data)
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
                            request_id=str(uuid.uuid5(_REQUEST_NAMESPACE,
                                                      f"delete/{self.project}/{zone}/"
                                                      f"{machine.name}/{machine.id}"))),
                        timeout=options.request_timeout_seconds)
                    self._wait(operation, zone, options)
                except gexc.NotFound:
                    continue
                except _OperationFailed as failed:
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
                                spot=self.options.spot))
        with self._lock:
            self._flavors = found
            for flavor in found:
                self._processors[flavor.name] = flavor.processors
        return list(found)


def _is_spot(instance: Mapping[str, Any]) -> bool:
    scheduling = instance.get("scheduling", {})
    return bool(scheduling.get("provisioningModel") == "SPOT" or scheduling.get("preemptible"))
