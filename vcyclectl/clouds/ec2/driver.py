"""The AWS EC2 driver (and EC2-compatible clouds through `endpoint_url`): the contract, thin.

It lists, creates and deletes what it is told and decides nothing. What it reads and sends
lives next to it, one concern per module: `states` (the one native-state table and spot
pre-emption reasons), `errors` (the one `ErrorTranslator` that turns botocore exceptions into
`Transient`/`QuotaExceeded`/`Fatal`), `requests` (request bodies, tags, `ClientToken`,
paging). This module keeps only the order of calls and the per-pass caches.

Why it is shaped like this:
- one paginated `describe_instances` per pass with tag filters and no per-instance calls,
  because EC2 throttles per account and a pass over 1,000 machines must stay one or two
  requests;
- the boto3 client is built once in `__init__` and shared by the reconciler's threads
  (clients are thread-safe, sessions are not); the little mutable state here (flavor and
  image caches, subnet use, known capacity gaps) sits behind one lock;
- `ClientToken` is derived from the machine name, so a create retried after a lost
  response finds the first instance instead of making a second one.

This package is imported only when a space uses EC2 (`vcyclectl.clouds.registry`), so boto3 is
imported at module level here and in `errors`, and nowhere else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import boto3
import botocore.exceptions as bce
from botocore.config import Config

from vcyclectl import __version__
from vcyclectl.clouds.contract import TAG_MACHINETYPE, TAG_SPACE, CloudContext
from vcyclectl.clouds.ec2 import requests, throttle
from vcyclectl.clouds.ec2.errors import NOT_FOUND_CODES, ErrorTranslator, NoCapacity, error_code
from vcyclectl.clouds.ec2.options import Ec2Options, is_ami_id
from vcyclectl.clouds.ec2.session import botocore_session
from vcyclectl.clouds.ec2.states import (
    ended_by, is_preempted, machine_state, state_reason_of, stopped_at,
)
from vcyclectl.errors import CloudError, Fatal, IncompleteListing, Transient
from vcyclectl.core.model import CloudMachine, Flavor, MachineSpec, MachineState

log = logging.getLogger(__name__)

#: Fields of a described instance kept for `inspect`: the useful part, JSON-safe and small.
#: AWS quotes spot prices (and bills) in US dollars.
SPOT_PRICE_CURRENCY = "USD"
RAW_KEYS = ("InstanceId", "InstanceType", "ImageId", "State", "StateReason",
            "StateTransitionReason", "LaunchTime", "Placement", "SubnetId", "VpcId",
            "PrivateIpAddress", "PublicIpAddress", "InstanceLifecycle", "SpotInstanceRequestId",
            "CpuOptions", "Tags", "ClientToken")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _timestamp(value: object) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    return None


def _tags_of(instance: requests.Described) -> dict[str, str]:
    return {str(t.get("Key")): str(t.get("Value", "")) for t in instance.get("Tags") or []}



class Ec2Cloud:
    """The `Cloud` driver for one `cloud: ec2` space."""

    def __init__(self, context: CloudContext[Ec2Options]) -> None:
        if not isinstance(context.options, Ec2Options):
            raise Fatal(f"space {context.space}: the ec2 driver needs an `ec2:` block")
        self.context = context
        self.options: Ec2Options = context.options
        #: describe_instances page size; real EC2 allows 5..1000.
        self.page_size = requests.DEFAULT_PAGE_SIZE
        self._lock = threading.Lock()
        self._flavors: dict[str, Flavor] = {}
        self._flavor_list: list[Flavor] | None = None
        self._images: dict[tuple[str, tuple[str, ...]], str] = {}
        self._subnet_use: dict[str, int] = {}
        self._no_capacity: set[tuple[str, str | None]] = set()
        #: The one error translator of this space: every EC2 call runs inside it.
        self._errors = ErrorTranslator(space=context.space, profile=self.options.profile,
                                       credentials_file=self.options.credentials_file)
        opts = self.options
        with self._errors("connect"):
            session = boto3.session.Session(
                botocore_session=botocore_session(opts),
                profile_name=opts.profile, region_name=opts.region,
                aws_access_key_id=opts.access_key_id,
                aws_secret_access_key=opts.secret_access_key,
                aws_session_token=opts.session_token)
            #: Shared by all threads of a pass; exposed for event hooks in tests/benchmarks.
            self.client: requests.Ec2Client = session.client(
                "ec2", endpoint_url=opts.endpoint_url,
                config=Config(retries={"mode": opts.retry_mode,
                                       "total_max_attempts": opts.max_attempts},
                              connect_timeout=opts.timeout_seconds,
                              read_timeout=opts.timeout_seconds,
                              max_pool_connections=32,
                              user_agent_extra=f"vcyclectl/{__version__}"))
            #: The account's rate-limit buckets every request draws on (ec2/throttle.py).
            self.rate_key = throttle.install(self.client, opts)

    # -- the contract ------------------------------------------------------------------

    def list_machines(self) -> list[CloudMachine]:
        """Every instance tagged with this space and state id, over all pages, or raise.

        A failure on any page raises `IncompleteListing`, so the reconciler never acts on a
        partial view.
        """
        ctx = self.context
        found: dict[str, requests.Described] = {}
        try:
            with self._errors("DescribeInstances"):
                for instance in requests.tagged_instances(self.client, ctx.space, ctx.state_id,
                                                          self.page_size):
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
        user_data, limit = spec.user_data.encode(), requests.MAX_USER_DATA_BYTES
        if len(user_data) > limit:
            raise Fatal(f"space {spec.space}, machinetype {spec.machinetype}: user_data is "
                        f"{len(user_data)} bytes, EC2 accepts {limit}: shorten it or gzip it")
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
                if error_code(exc) in NOT_FOUND_CODES:
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
            currency = SPOT_PRICE_CURRENCY if price is not None else None
            if price is None:
                price, currency = prices.get(name, (None, None))
            result.append(Flavor(name=name, processors=known.processors,
                                 memory_mb=known.memory_mb, price_per_hour=price,
                                 spot=name in spot_types, currency=currency))
        with self._lock:
            self._flavor_list = result
        return list(result)

    # -- reading what EC2 says ---------------------------------------------------------

    def _to_machine(self, instance: requests.Described, *, spec: MachineSpec | None = None
                    ) -> CloudMachine:
        """The single place where an EC2 instance becomes a `CloudMachine`."""
        tags = _tags_of(instance)
        state = machine_state(instance)
        reason = state_reason_of(instance)
        instance_type = str(instance.get("InstanceType", ""))
        launched = _timestamp(instance.get("LaunchTime"))
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
            stopped_at=stopped_at(instance, state),
            flavor=instance_type or None,
            zone=(instance.get("Placement") or {}).get("AvailabilityZone"),
            addresses=tuple(str(a) for a in addresses),
            spot=instance.get("InstanceLifecycle") == "spot",
            preempted=is_preempted(reason),
            state_reason=reason,
            ended_by=ended_by(instance, state),
            raw=_jsonable({k: instance[k] for k in RAW_KEYS if k in instance}),
        )

    def _processors(self, instance: requests.Described, instance_type: str,
                    spec: MachineSpec | None) -> int:
        cpu = instance.get("CpuOptions") or {}
        if cpu.get("CoreCount"):
            return int(cpu["CoreCount"]) * int(cpu.get("ThreadsPerCore", 1))
        known = self._flavors.get(instance_type)
        if known is not None:
            return known.processors
        return spec.processors if spec is not None else 0

    def _count_subnet_use(self, instances: Iterable[requests.Described]) -> None:
        use: dict[str, int] = {}
        for instance in instances:
            subnet = instance.get("SubnetId")
            if subnet and machine_state(instance).is_live:
                use[str(subnet)] = use.get(str(subnet), 0) + 1
        with self._lock:
            self._subnet_use = use

    # -- creating ----------------------------------------------------------------------

    def _run_instance(self, spec: MachineSpec, opts: Ec2Options, image_id: str,
                      instance_type: str, subnet: str | None) -> CloudMachine:
        request = requests.run_instances_request(spec, opts, image_id, instance_type, subnet)
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
            request = requests.describe_images_request(image, opts.image_owners)
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

    def _configured_types(self) -> tuple[list[str], set[str],
                                         dict[str, tuple[float, str | None]]]:
        """Instance types of the space, then of machinetype overrides, in order; configured
        prices with the currency their block declares (None: the budget's)."""
        types: list[str] = []
        spot: set[str] = set()
        prices: dict[str, tuple[float, str | None]] = {}
        blocks: Sequence[object] = [self.options, *self.context.machinetype_options.values()]
        for opts in blocks:
            if not isinstance(opts, Ec2Options):
                continue
            for name in opts.instance_types:
                if name not in types:
                    types.append(name)
                if opts.spot:
                    spot.add(name)
            for name, price in opts.price_per_hour.items():
                prices.setdefault(name, (price, opts.currency or self.options.currency))
        return types, spot, prices

    def _learn_vcpus(self, types: Iterable[object], *, strict: bool = True) -> None:
        """Fill the size cache for types not seen yet: one DescribeInstanceTypes per 100.

        Real EC2 lists `CpuOptions` with every instance, so a listing needs this only on
        clouds that leave it out; there an unknown type must not fail the listing (`strict`).
        """
        with self._lock:
            wanted = sorted({str(t) for t in types if t} - set(self._flavors))
        for chunk in requests.chunks(wanted):
            with self._errors("DescribeInstanceTypes", instance_type=", ".join(chunk)):
                described = requests.instance_types(self.client, chunk)
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
        """The highest current spot price across zones, per type (a budget must not guess low),
        in USD as AWS quotes it (`SPOT_PRICE_CURRENCY`); a budget in another currency
        converts it at its `exchange_rates` (vcyclectl.policy.currency).

        Prices are informative only: if they cannot be read the flavors have no price, and
        the pass goes on.
        """
        prices: dict[str, float] = {}
        try:
            with self._errors("DescribeSpotPriceHistory"):
                for entry in requests.spot_price_history(self.client, types):
                    name = str(entry["InstanceType"])
                    prices[name] = max(prices.get(name, 0.0), float(entry["SpotPrice"]))
        except CloudError as exc:
            log.warning("spot prices unknown", extra={"space": self.context.space,
                                                      "error": str(exc)})
            return {}
        return prices
