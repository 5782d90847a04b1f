"""What vcyclectl sends to EC2: request bodies, tags, idempotency tokens, and paging.

Why a module of its own: the shape of a `RunInstances` request (tags on instance and
volumes, spot options, `ClientToken`) and the way every paginated call is walked are facts
about EC2's API, not decisions; keeping them here leaves the driver with only the order of
calls. Nothing here sends a request by itself except through the client it is handed, and
nothing here imports boto3: the client is described by the `Ec2Client` protocol, which
names exactly the calls the driver makes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any, Protocol

from vcyclectl.clouds.contract import TAG_MACHINETYPE, TAG_SPACE, TAG_STATE_ID
from vcyclectl.clouds.ec2.options import RESERVED_TAG_KEYS, Ec2Options
from vcyclectl.core.model import MachineSpec

#: EC2's limit on UserData before base64 encoding.
MAX_USER_DATA_BYTES = 16 * 1024
#: EC2's limit on ClientToken.
MAX_CLIENT_TOKEN = 64
#: Real EC2 accepts 5..1000 per describe_instances page.
DEFAULT_PAGE_SIZE = 1000
#: DescribeInstanceTypes takes at most 100 names per request.
INSTANCE_TYPES_PER_REQUEST = 100
#: Linux spot prices; EC2-Classic accounts report the second form.
SPOT_PRODUCTS = ["Linux/UNIX", "Linux/UNIX (Amazon VPC)"]

#: A described resource as boto3 returns it: JSON-like, keys as in the EC2 API reference.
Described = Mapping[str, Any]


class Paginator(Protocol):
    """botocore's paginator: every page of one operation, as parsed responses."""

    def paginate(self, **params: Any) -> Iterable[Mapping[str, Any]]: ...


class Ec2Client(Protocol):
    """The calls the driver makes on boto3's EC2 client (thread-safe, shared by a pass)."""

    def get_paginator(self, operation_name: str) -> Paginator: ...

    def run_instances(self, **params: Any) -> dict[str, Any]: ...

    def terminate_instances(self, **params: Any) -> dict[str, Any]: ...

    def describe_images(self, **params: Any) -> dict[str, Any]: ...


# -- paging ------------------------------------------------------------------------------

def paged(client: Ec2Client, operation: str, key: str, **params: Any) -> Iterator[Described]:
    """Every item under `key` on every page of `operation`; lazily, so errors surface in
    the caller's `ErrorTranslator` while it iterates."""
    for page in client.get_paginator(operation).paginate(**params):
        yield from page.get(key, [])


def tagged_instances(client: Ec2Client, space: str, state_id: str, page_size: int
                     ) -> Iterator[Described]:
    """Every instance tagged with this space and state id, over all pages: one filtered
    `DescribeInstances` walk, never a call per instance (EC2 throttles per account)."""
    filters = [{"Name": f"tag:{TAG_SPACE}", "Values": [space]},
               {"Name": f"tag:{TAG_STATE_ID}", "Values": [state_id]}]
    for reservation in paged(client, "describe_instances", "Reservations", Filters=filters,
                             PaginationConfig={"PageSize": page_size}):
        yield from reservation.get("Instances", [])


def instance_types(client: Ec2Client, names: list[str]) -> list[Described]:
    """`DescribeInstanceTypes` for at most `INSTANCE_TYPES_PER_REQUEST` names."""
    return list(paged(client, "describe_instance_types", "InstanceTypes", InstanceTypes=names))


def spot_price_history(client: Ec2Client, types: set[str]) -> Iterator[Described]:
    """Current spot prices of `types` in every zone of the region."""
    return paged(client, "describe_spot_price_history", "SpotPriceHistory",
                 InstanceTypes=sorted(types), ProductDescriptions=SPOT_PRODUCTS,
                 StartTime=datetime.now(timezone.utc))


def chunks(names: list[str], size: int = INSTANCE_TYPES_PER_REQUEST) -> Iterator[list[str]]:
    """`names` in runs of at most `size`."""
    for start in range(0, len(names), size):
        yield names[start:start + size]


# -- request bodies ----------------------------------------------------------------------

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


def instance_tags(spec: MachineSpec, opts: Ec2Options) -> list[dict[str, str]]:
    """The block's and the spec's tags, then ours, which nothing may override."""
    tags = {k: v for k, v in {**opts.tags, **spec.metadata}.items()
            if k not in RESERVED_TAG_KEYS and not k.lower().startswith("aws:")}
    tags.update({"Name": spec.name, TAG_SPACE: spec.space,
                 TAG_MACHINETYPE: spec.machinetype, TAG_STATE_ID: spec.state_id})
    return [{"Key": k, "Value": str(v)} for k, v in tags.items()]


def run_instances_request(spec: MachineSpec, opts: Ec2Options, image_id: str,
                          instance_type: str, subnet: str | None) -> dict[str, Any]:
    """The `RunInstances` parameters for one machine of one type in one subnet."""
    request: dict[str, Any] = {
        "ImageId": image_id,
        "InstanceType": instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "ClientToken": client_token(spec.name, instance_type),
        "UserData": spec.user_data,
        "InstanceInitiatedShutdownBehavior": "terminate",
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": instance_tags(spec, opts)},
            {"ResourceType": "volume", "Tags": instance_tags(spec, opts)},
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
    return request


def describe_images_request(image: str, owners: Iterable[str]) -> dict[str, Any]:
    """Available AMIs named `image`, of `owners` if any are configured."""
    request: dict[str, Any] = {"Filters": [{"Name": "name", "Values": [image]},
                                           {"Name": "state", "Values": ["available"]}]}
    owners = list(owners)
    if owners:
        request["Owners"] = owners
    return request


def _price_text(price: float) -> str:
    return f"{price:.6f}".rstrip("0").rstrip(".") or "0"
