"""The AWS EC2 driver (and EC2-compatible clouds through `endpoint_url`).

It lists, creates and deletes what it is told and decides nothing. Three tables at the top
say everything about how EC2 is read: `STATE_MAP` (native instance states), the error-code
sets used by `translate_errors` (the one place where boto3 exceptions become
`Transient`/`QuotaExceeded`/`Fatal`), and `PREEMPTION_REASONS` (spot interruptions, which
are their own end reason, never an abort).

Why it is shaped like this:
- one paginated `describe_instances` per pass with tag filters and no per-instance calls,
  because EC2 throttles per account and a pass over 1,000 machines must stay one or two
  requests;
- the boto3 client is built once in `__init__` and shared by the reconciler's threads
  (clients are thread-safe, sessions are not); the little mutable state here (flavor and
  image caches, subnet use, known capacity gaps) sits behind one lock;
- `ClientToken` is derived from the machine name, so a create retried after a lost
  response finds the first instance instead of making a second one.

This module is imported only when a space uses EC2 (`vcyclectl.clouds.registry`), so boto3 is
imported at module level here and nowhere else.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import boto3
import botocore.exceptions as bce
from botocore.config import Config

from vcyclectl import __version__
from vcyclectl.clouds.contract import TAG_MACHINETYPE, TAG_SPACE, TAG_STATE_ID, CloudContext
from vcyclectl.clouds.ec2.options import RESERVED_TAG_KEYS, Ec2Options, is_ami_id
from vcyclectl.errors import CloudError, Fatal, IncompleteListing, QuotaExceeded, Transient
from vcyclectl.core.model import CloudMachine, Flavor, MachineSpec, MachineState

log = logging.getLogger(__name__)

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

#: The tenancy refuses more: stop creating in this space for this pass.
QUOTA_CODES = frozenset({
    "InstanceLimitExceeded", "VcpuLimitExceeded", "MaxSpotInstanceCountExceeded",
    "InsufficientFreeAddressesInSubnet",
})

#: This instance type has no capacity right now (in this zone, or on the spot market):
#: worth trying the next instance type in the same pass, else `Transient`.
CAPACITY_CODES = frozenset({
    "InsufficientInstanceCapacity", "InsufficientCapacity", "UnfulfillableCapacity",
    "InsufficientHostCapacity", "SpotMaxPriceTooLow",
})

#: Retry later. botocore's standard/adaptive retry mode has already retried these.
TRANSIENT_CODES = frozenset({
    "RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled",
    "InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable",
    "RequestTimeout", "RequestTimeoutException", "IncorrectInstanceState",
    "IdempotentInstanceTerminated", "PriorRequestNotComplete",
})

#: Credentials missing, wrong, expired or not allowed: nothing to retry.
AUTH_CODES = frozenset({
    "AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "IncompleteSignature",
    "ExpiredToken", "ExpiredTokenException", "RequestExpired", "OptInRequired", "Blocked",
    "PendingVerification", "InvalidAccessKeyId", "MissingAuthenticationToken",
})
PERMISSION_CODES = frozenset({"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"})

#: A configured value EC2 rejects -> the option the user has to fix.
CONFIG_CODES: dict[str, str] = {
    "InvalidAMIID.NotFound": "image",
    "InvalidAMIID.Malformed": "image",
    "InvalidAMIID.Unavailable": "image",
    "InvalidInstanceType": "instance_types",
    "InvalidInstanceType.NotFound": "instance_types",
    "Unsupported": "instance_types",
    "InvalidSubnetID.NotFound": "subnets",
    "InvalidSubnetID.Malformed": "subnets",
    "InvalidSubnet": "subnets",
    "InvalidGroup.NotFound": "security_group_ids",
    "InvalidSecurityGroupID.NotFound": "security_group_ids",
    "InvalidKeyPair.NotFound": "key_name",
    "InvalidParameterValue": "the ec2 block",
    "InvalidParameterCombination": "the ec2 block",
    "InvalidParameter": "the ec2 block",
    "MissingParameter": "the ec2 block",
    "InvalidSpotInstanceRequestConfig": "max_price",
}

#: Deleting something EC2 no longer knows is what we wanted.
NOT_FOUND_CODES = frozenset({"InvalidInstanceID.NotFound"})

#: EC2's limit on UserData before base64 encoding.
MAX_USER_DATA_BYTES = 16 * 1024
#: EC2's limit on ClientToken.
MAX_CLIENT_TOKEN = 64
#: Real EC2 accepts 5..1000 per describe_instances page.
DEFAULT_PAGE_SIZE = 1000
#: Linux spot prices; EC2-Classic accounts report the second form.
SPOT_PRODUCTS = ["Linux/UNIX", "Linux/UNIX (Amazon VPC)"]

#: Fields of a described instance kept for `inspect`: the useful part, JSON-safe and small.
RAW_KEYS = ("InstanceId", "InstanceType", "ImageId", "State", "StateReason",
            "StateTransitionReason", "LaunchTime", "Placement", "SubnetId", "VpcId",
            "PrivateIpAddress", "PublicIpAddress", "InstanceLifecycle", "SpotInstanceRequestId",
            "CpuOptions", "Tags", "ClientToken")

_STOPPED_AT = re.compile(r"\((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?:GMT|UTC)\)")


class NoCapacity(Transient):
    """One instance type has no capacity now; `create` falls back to the next one."""


@contextmanager
def translate_errors(operation: str, *, space: str, machinetype: str | None = None,
                     instance_type: str | None = None, image: str | None = None,
                     profile: str | None = None) -> Iterator[None]:
    """The one place where botocore's exceptions become `vcyclectl.errors`.

    Messages say what to check and never carry credentials: botocore's own messages don't,
    and the encoded authorization blob of `UnauthorizedOperation` is left out on purpose.
    """
    where = f"space {space}" + (f", machinetype {machinetype}" if machinetype else "")
    try:
        yield
    except CloudError:
        raise
    except bce.ClientError as exc:
        raise _from_client_error(exc, operation, where, instance_type, image) from exc
    except (bce.NoCredentialsError, bce.PartialCredentialsError) as exc:
        raise Fatal(f"{where}: no usable AWS credentials for {operation}: set `profile` in "
                    "the ec2 block, AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in "
                    "the environment cron gives vcyclectl, or give the host an instance role"
                    ) from exc
    except bce.ProfileNotFound as exc:
        raise Fatal(f"{where}: AWS profile {profile!r} is not in ~/.aws/config or "
                    "~/.aws/credentials of the user running vcyclectl") from exc
    except bce.NoRegionError as exc:
        raise Fatal(f"{where}: no AWS region: set `region` in the ec2 block") from exc
    except (bce.CredentialRetrievalError, bce.TokenRetrievalError, bce.SSOError,
            bce.UnauthorizedSSOTokenError) as exc:
        raise Fatal(f"{where}: AWS credentials could not be obtained ({type(exc).__name__}): "
                    f"check profile {profile!r} (an expired SSO login needs `aws sso login`)"
                    ) from exc
    except bce.ParamValidationError as exc:
        raise Fatal(f"{where}: {operation} was refused before sending: {exc}; check "
                    "the ec2 block") from exc
    except (bce.ConnectionError, bce.HTTPClientError) as exc:
        raise Transient(f"{where}: {operation} could not reach EC2 ({type(exc).__name__}): "
                        f"{exc}") from exc
    except bce.BotoCoreError as exc:
        raise Transient(f"{where}: {operation} failed ({type(exc).__name__}): {exc}") from exc


def _from_client_error(exc: bce.ClientError, operation: str, where: str,
                       instance_type: str | None, image: str | None) -> CloudError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")).split("Encoded authorization failure message")[0]
    message = message.strip().rstrip(".")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    said = f"{code}: {message}" if message else code
    if code in QUOTA_CODES:
        return QuotaExceeded(f"{where}: EC2 refuses more instances ({said}); ask AWS for a "
                             "higher limit or lower processors_limit")
    if code in CAPACITY_CODES:
        return NoCapacity(f"{where}: no capacity for {instance_type or 'the instance type'} "
                          f"({said})")
    if code in TRANSIENT_CODES or status >= 500 or code.endswith(".Unavailable"):
        return Transient(f"{where}: {operation} failed for now ({said})")
    if code in AUTH_CODES:
        return Fatal(f"{where}: AWS did not accept the credentials for {operation} ({code}): "
                     "check the profile or environment keys are valid, active and not "
                     "expired, and that region and endpoint_url are right")
    if code in PERMISSION_CODES:
        return Fatal(f"{where}: not allowed to call {operation} ({code}): grant "
                     f"ec2:{operation} to the IAM identity vcyclectl runs as (see "
                     "docs/clouds/ec2.md for the full list)")
    if code in CONFIG_CODES:
        option = CONFIG_CODES[code]
        what = {"image": f"image {image!r}", "instance_types": f"instance type {instance_type!r}"
                }.get(option, option)
        return Fatal(f"{where}: EC2 rejected {what} ({said}); check `{option}`"
                     if option != "the ec2 block" else
                     f"{where}: EC2 rejected {operation} ({said}); check the ec2 block")
    return Fatal(f"{where}: {operation} failed ({said})")


def client_token(name: str, instance_type: str) -> str:
    """A ClientToken that is the same on every retry of one machine with one type.

    The instance type is part of it so that falling back to the next type after a definite
    capacity refusal is a new request, not an `IdempotentParameterMismatch`.
    """
    raw = f"{name}/{instance_type}"
    if len(raw) <= MAX_CLIENT_TOKEN and raw.isascii():
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:16]
    return f"{raw.encode('ascii', 'replace').decode()[:MAX_CLIENT_TOKEN - 17]}-{digest}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _timestamp(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    return None


def _price_text(price: float) -> str:
    return f"{price:.6f}".rstrip("0").rstrip(".") or "0"


def _tags_of(instance: Mapping[str, Any]) -> dict[str, str]:
    return {str(t.get("Key")): str(t.get("Value", "")) for t in instance.get("Tags") or []}


def state_reason_of(instance: Mapping[str, Any]) -> str | None:
    """EC2's StateReason code (e.g. `Server.SpotInstanceTermination`), else the transition."""
    code = (instance.get("StateReason") or {}).get("Code")
    if code:
        return str(code)
    transition = instance.get("StateTransitionReason")
    return str(transition) if transition else None


class Ec2Cloud:
    """The `Cloud` driver for one `cloud: ec2` space."""

    def __init__(self, context: CloudContext) -> None:
        if not isinstance(context.options, Ec2Options):
            raise Fatal(f"space {context.space}: the ec2 driver needs an `ec2:` block")
        self.context = context
        self.options: Ec2Options = context.options
        #: describe_instances page size; real EC2 allows 5..1000.
        self.page_size = DEFAULT_PAGE_SIZE
        self._lock = threading.Lock()
        self._flavors: dict[str, Flavor] = {}
        self._flavor_list: list[Flavor] | None = None
        self._images: dict[tuple[str, tuple[str, ...]], str] = {}
        self._subnet_use: dict[str, int] = {}
        self._no_capacity: set[tuple[str, str | None]] = set()
        opts = self.options
        with self._errors("connect"):
            session = boto3.session.Session(
                profile_name=opts.profile, region_name=opts.region,
                aws_access_key_id=opts.access_key_id,
                aws_secret_access_key=opts.secret_access_key,
                aws_session_token=opts.session_token)
            #: Shared by all threads of a pass; exposed for event hooks in tests/benchmarks.
            self.client: Any = session.client(
                "ec2", endpoint_url=opts.endpoint_url,
                config=Config(retries={"mode": opts.retry_mode,
                                       "total_max_attempts": opts.max_attempts},
                              connect_timeout=opts.timeout_seconds,
                              read_timeout=opts.timeout_seconds,
                              max_pool_connections=32,
                              user_agent_extra=f"vcyclectl/{__version__}"))

    # -- the contract ------------------------------------------------------------------

    def list_machines(self) -> list[CloudMachine]:
        """Every instance tagged with this space and state id, over all pages, or raise.

        A failure on any page raises `IncompleteListing`, so the reconciler never acts on a
        partial view.
        """
        ctx = self.context
        filters = [{"Name": f"tag:{TAG_SPACE}", "Values": [ctx.space]},
                   {"Name": f"tag:{TAG_STATE_ID}", "Values": [ctx.state_id]}]
        found: dict[str, Mapping[str, Any]] = {}
        try:
            with self._errors("DescribeInstances"):
                pages = self.client.get_paginator("describe_instances").paginate(
                    Filters=filters, PaginationConfig={"PageSize": self.page_size})
                for page in pages:
                    for reservation in page.get("Reservations", []):
                        for instance in reservation.get("Instances", []):
                            found[str(instance["InstanceId"])] = instance
            self._learn_vcpus((i.get("InstanceType") for i in found.values()
                               if not i.get("CpuOptions")), strict=False)
        except IncompleteListing:
            raise
        except Transient as exc:
            raise IncompleteListing(f"listing cut short, nothing will be acted on: {exc}") from exc
        machines = [self._to_machine(i) for i in found.values()]
        self._count_subnet_use(found.values())
        return machines

    def create(self, spec: MachineSpec) -> CloudMachine:
        """Launch one instance named `spec.name`, falling back through `instance_types`.

        A type (in a subnet) refused for capacity is remembered for the rest of the pass, so
        later creates skip it without another call. Fallback types never have more vCPUs than
        the planned flavor: the planner has budgeted `spec.processors`.
        """
        opts = self.context.options_for(spec.machinetype)
        if not isinstance(opts, Ec2Options):
            opts = self.options
        user_data = spec.user_data.encode()
        if len(user_data) > MAX_USER_DATA_BYTES:
            raise Fatal(f"space {spec.space}, machinetype {spec.machinetype}: user_data is "
                        f"{len(user_data)} bytes, EC2 accepts {MAX_USER_DATA_BYTES}: shorten "
                        "it or gzip it")
        image_id = self._image_id(spec.image or opts.image, opts, spec.machinetype)
        last: NoCapacity | None = None
        for instance_type in self._candidate_types(spec, opts):
            for subnet in self._subnets_by_use(opts):
                if (instance_type, subnet) in self._no_capacity:
                    continue
                try:
                    return self._run_instance(spec, opts, image_id, instance_type, subnet)
                except NoCapacity as exc:
                    log.info("no capacity, trying the next instance type or subnet",
                             extra={"space": spec.space, "machine": spec.name,
                                    "instance_type": instance_type, "subnet": subnet})
                    with self._lock:
                        self._no_capacity.add((instance_type, subnet))
                    last = exc
        raise NoCapacity(f"space {spec.space}, machinetype {spec.machinetype}: no capacity "
                         f"for any instance type this pass ({last or 'all refused earlier'})")

    def delete(self, machine: CloudMachine) -> None:
        """Terminate; an instance EC2 no longer knows counts as deleted."""
        with self._errors("TerminateInstances", machinetype=machine.machinetype):
            try:
                self.client.terminate_instances(InstanceIds=[machine.id])
            except bce.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in NOT_FOUND_CODES:
                    return
                raise

    def flavors(self) -> list[Flavor]:
        """The configured instance types in order, with vCPUs, memory and price if known.

        Asked once per driver instance (one pass): `describe_instance_types` for sizes, and
        the spot price history for spot types; `price_per_hour` from the config otherwise.
        """
        with self._lock:
            if self._flavor_list is not None:
                return list(self._flavor_list)
        types, spot_types, prices = self._configured_types()
        self._learn_vcpus(types)
        spot_prices = self._spot_prices(spot_types) if spot_types else {}
        result: list[Flavor] = []
        for name in types:
            known = self._flavors[name]
            price = spot_prices.get(name) if name in spot_types else None
            if price is None:
                price = prices.get(name)
            result.append(Flavor(name=name, processors=known.processors,
                                 memory_mb=known.memory_mb, price_per_hour=price,
                                 spot=name in spot_types))
        with self._lock:
            self._flavor_list = result
        return list(result)

    # -- reading what EC2 says ---------------------------------------------------------

    def _to_machine(self, instance: Mapping[str, Any], *, spec: MachineSpec | None = None
                    ) -> CloudMachine:
        """The single place where an EC2 instance becomes a `CloudMachine`."""
        tags = _tags_of(instance)
        native = str((instance.get("State") or {}).get("Name", ""))
        state = STATE_MAP.get(native, MachineState.UNKNOWN)
        reason = state_reason_of(instance)
        instance_type = str(instance.get("InstanceType", ""))
        launched = _timestamp(instance.get("LaunchTime"))
        stopped_at = None
        if state in (MachineState.STOPPED, MachineState.GONE):
            match = _STOPPED_AT.search(str(instance.get("StateTransitionReason") or ""))
            if match:
                stopped_at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(
                    tzinfo=timezone.utc).timestamp()
        addresses = tuple(a for a in (instance.get("PrivateIpAddress"),
                                      instance.get("PublicIpAddress"),
                                      instance.get("Ipv6Address")) if a)
        return CloudMachine(
            id=str(instance["InstanceId"]),
            name=tags.get("Name") or (spec.name if spec else str(instance["InstanceId"])),
            space=tags.get(TAG_SPACE) or (spec.space if spec else self.context.space),
            machinetype=tags.get(TAG_MACHINETYPE) or (spec.machinetype if spec else ""),
            state=state,
            processors=self._processors(instance, instance_type, spec),
            created_at=launched,
            started_at=launched if state is MachineState.RUNNING else None,
            stopped_at=stopped_at,
            flavor=instance_type or None,
            zone=(instance.get("Placement") or {}).get("AvailabilityZone"),
            addresses=tuple(str(a) for a in addresses),
            spot=instance.get("InstanceLifecycle") == "spot",
            preempted=reason in PREEMPTION_REASONS,
            state_reason=reason,
            raw=_jsonable({k: instance[k] for k in RAW_KEYS if k in instance}),
        )

    def _processors(self, instance: Mapping[str, Any], instance_type: str,
                    spec: MachineSpec | None) -> int:
        cpu = instance.get("CpuOptions") or {}
        if cpu.get("CoreCount"):
            return int(cpu["CoreCount"]) * int(cpu.get("ThreadsPerCore", 1))
        known = self._flavors.get(instance_type)
        if known is not None:
            return known.processors
        return spec.processors if spec is not None else 0

    def _count_subnet_use(self, instances: Iterable[Mapping[str, Any]]) -> None:
        use: dict[str, int] = {}
        for instance in instances:
            native = str((instance.get("State") or {}).get("Name", ""))
            subnet = instance.get("SubnetId")
            if subnet and STATE_MAP.get(native, MachineState.UNKNOWN).is_live:
                use[str(subnet)] = use.get(str(subnet), 0) + 1
        with self._lock:
            self._subnet_use = use

    # -- creating ----------------------------------------------------------------------

    def _run_instance(self, spec: MachineSpec, opts: Ec2Options, image_id: str,
                      instance_type: str, subnet: str | None) -> CloudMachine:
        request: dict[str, Any] = {
            "ImageId": image_id,
            "InstanceType": instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "ClientToken": client_token(spec.name, instance_type),
            "UserData": spec.user_data,
            "InstanceInitiatedShutdownBehavior": "terminate",
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": self._tags(spec, opts)},
                {"ResourceType": "volume", "Tags": self._tags(spec, opts)},
            ],
        }
        if subnet:
            request["SubnetId"] = subnet
        if opts.security_group_ids:
            request["SecurityGroupIds"] = list(opts.security_group_ids)
        if opts.key_name:
            request["KeyName"] = opts.key_name
        if opts.iam_instance_profile:
            profile = opts.iam_instance_profile
            request["IamInstanceProfile"] = ({"Arn": profile} if profile.startswith("arn:")
                                             else {"Name": profile})
        if opts.spot:
            spot: dict[str, Any] = {"SpotInstanceType": "one-time",
                                    "InstanceInterruptionBehavior": "terminate"}
            if opts.max_price is not None:
                spot["MaxPrice"] = _price_text(opts.max_price)
            request["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": spot}
        with self._errors("RunInstances", machinetype=spec.machinetype,
                          instance_type=instance_type, image=image_id):
            response = self.client.run_instances(**request)
        instance = response["Instances"][0]
        if subnet:
            with self._lock:
                self._subnet_use[subnet] = self._subnet_use.get(subnet, 0) + 1
        log.info("instance launched", extra={"space": spec.space, "machine": spec.name,
                                             "instance_id": instance.get("InstanceId"),
                                             "instance_type": instance_type, "subnet": subnet})
        return self._to_machine(instance, spec=spec)

    def _tags(self, spec: MachineSpec, opts: Ec2Options) -> list[dict[str, str]]:
        tags = {k: v for k, v in {**opts.tags, **spec.metadata}.items()
                if k not in RESERVED_TAG_KEYS and not k.lower().startswith("aws:")}
        tags.update({"Name": spec.name, TAG_SPACE: spec.space,
                     TAG_MACHINETYPE: spec.machinetype, TAG_STATE_ID: spec.state_id})
        return [{"Key": k, "Value": str(v)} for k, v in tags.items()]

    def _candidate_types(self, spec: MachineSpec, opts: Ec2Options) -> Iterator[str]:
        """The planned type, then later configured types that fit the planned vCPUs.

        Sizes are asked for only when a fallback is needed, so the common create is one call.
        """
        first = spec.flavor.name
        yield first
        configured = list(opts.instance_types)
        later = configured[configured.index(first) + 1:] if first in configured else []
        if not later:
            return
        self._learn_vcpus(later)
        for name in later:
            if self._flavors[name].processors <= spec.processors:
                yield name

    def _subnets_by_use(self, opts: Ec2Options) -> list[str | None]:
        """Configured subnets, least used first (ties in configured order); None = default."""
        if not opts.subnets:
            return [None]
        with self._lock:
            use = dict(self._subnet_use)
        order = sorted(range(len(opts.subnets)), key=lambda i: (use.get(opts.subnets[i], 0), i))
        return [opts.subnets[i] for i in order]

    def _image_id(self, image: str | None, opts: Ec2Options, machinetype: str) -> str:
        """An AMI id as given, or the newest available AMI of that name from `image_owners`.

        Resolved once per driver instance (one pass), under the lock so that sixteen
        threads creating at once make one `DescribeImages` call, not sixteen.
        """
        if not image:
            raise Fatal(f"space {self.context.space}, machinetype {machinetype}: no image: set "
                        "`image` in the machinetype or in the ec2 block")
        if is_ami_id(image):
            return image
        key = (image, tuple(opts.image_owners))
        with self._lock:
            if key in self._images:
                return self._images[key]
            request: dict[str, Any] = {"Filters": [{"Name": "name", "Values": [image]},
                                                   {"Name": "state", "Values": ["available"]}]}
            if opts.image_owners:
                request["Owners"] = list(opts.image_owners)
            with self._errors("DescribeImages", machinetype=machinetype, image=image):
                images = self.client.describe_images(**request).get("Images", [])
            if not images:
                raise Fatal(f"space {self.context.space}, machinetype {machinetype}: no "
                            f"available AMI named {image!r} owned by "
                            f"{', '.join(opts.image_owners) or 'anyone'}; check `image` and "
                            "`image_owners`")
            newest = max(images, key=lambda i: (str(i.get("CreationDate", "")), i["ImageId"]))
            self._images[key] = str(newest["ImageId"])
            return self._images[key]

    # -- sizes and prices --------------------------------------------------------------

    def _configured_types(self) -> tuple[list[str], set[str], dict[str, float]]:
        """Instance types of the space, then of machinetype overrides, in order."""
        types: list[str] = []
        spot: set[str] = set()
        prices: dict[str, float] = {}
        blocks: Sequence[Any] = [self.options, *self.context.machinetype_options.values()]
        for opts in blocks:
            if not isinstance(opts, Ec2Options):
                continue
            for name in opts.instance_types:
                if name not in types:
                    types.append(name)
                if opts.spot:
                    spot.add(name)
            for name, price in opts.price_per_hour.items():
                prices.setdefault(name, price)
        return types, spot, prices

    def _learn_vcpus(self, types: Iterable[Any], *, strict: bool = True) -> None:
        """Fill the size cache for types not seen yet: one DescribeInstanceTypes per 100.

        Real EC2 lists `CpuOptions` with every instance, so a listing needs this only on
        clouds that leave it out; there an unknown type must not fail the listing (`strict`).
        """
        with self._lock:
            wanted = sorted({str(t) for t in types if t} - set(self._flavors))
        for start in range(0, len(wanted), 100):
            chunk = wanted[start:start + 100]
            with self._errors("DescribeInstanceTypes", instance_type=", ".join(chunk)):
                pages = self.client.get_paginator("describe_instance_types").paginate(
                    InstanceTypes=chunk)
                described = [t for page in pages for t in page.get("InstanceTypes", [])]
            with self._lock:
                for info in described:
                    name = str(info["InstanceType"])
                    self._flavors[name] = Flavor(
                        name=name, processors=int(info["VCpuInfo"]["DefaultVCpus"]),
                        memory_mb=int(info.get("MemoryInfo", {}).get("SizeInMiB", 0)) or None)
        with self._lock:
            missing = [t for t in wanted if t not in self._flavors]
        if missing and strict:
            raise Fatal(f"space {self.context.space}: EC2 does not offer instance type(s) "
                        f"{', '.join(missing)} in this region; check `instance_types`")

    def _spot_prices(self, types: set[str]) -> dict[str, float]:
        """The highest current spot price across zones, per type (a budget must not guess low).

        Prices are informative only: if they cannot be read the flavors have no price, and
        the pass goes on.
        """
        prices: dict[str, float] = {}
        try:
            with self._errors("DescribeSpotPriceHistory"):
                pages = self.client.get_paginator("describe_spot_price_history").paginate(
                    InstanceTypes=sorted(types), ProductDescriptions=SPOT_PRODUCTS,
                    StartTime=datetime.now(timezone.utc))
                for page in pages:
                    for entry in page.get("SpotPriceHistory", []):
                        name = str(entry["InstanceType"])
                        prices[name] = max(prices.get(name, 0.0), float(entry["SpotPrice"]))
        except CloudError as exc:
            log.warning("spot prices unknown", extra={"space": self.context.space,
                                                      "error": str(exc)})
            return {}
        return prices

    @contextmanager
    def _errors(self, operation: str, *, machinetype: str | None = None,
                instance_type: str | None = None, image: str | None = None) -> Iterator[None]:
        with translate_errors(operation, space=self.context.space, machinetype=machinetype,
                              instance_type=instance_type, image=image,
                              profile=self.options.profile):
            yield
