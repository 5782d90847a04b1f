"""The `ec2:` config block of a `cloud: ec2` space, as a frozen dataclass.

This module imports no AWS SDK on purpose: `config check` loads it for every EC2 space and
must stay fast and work on a host without boto3. The driver (`vcyclectl.clouds.ec2.driver`) is
the only place that talks to AWS.

Credentials are deliberately optional: the standard boto3 chain (`profile`, environment
variables, the instance role of the host running cron) is the recommended way, so that no
secret ever has to live in the YAML. Static keys are accepted for EC2-compatible clouds
that have no other mechanism, and are marked `secret` so `config show` redacts them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from vcyclectl.clouds.ec2.limits import RESOURCE_BUCKETS

#: Tag keys the driver sets itself; an extra tag may not override them, or vcyclectl
#: could lose track of (or adopt someone else's) machines.
RESERVED_TAG_KEYS = frozenset({"Name", "vcyclectl-space", "vcyclectl-machinetype",
                               "vcyclectl-state-id"})

_ACTION = re.compile(r"[A-Z][A-Za-z0-9]+")
_AMI_ID = re.compile(r"ami-[0-9a-f]{8}([0-9a-f]{9})?")


def is_ami_id(image: str) -> bool:
    """An AMI id (`ami-0123abcd`/`ami-0123456789abcdef0`) rather than a name pattern."""
    return bool(_AMI_ID.fullmatch(image))


@dataclass(frozen=True)
class Ec2Options:
    """Everything a space (or one machinetype, merged over the space's block) says about EC2."""

    region: str | None = None
    profile: str | None = None
    #: An AWS shared credentials file (INI, `[profile]` sections) read instead of
    #: `~/.aws/credentials`, relative to the config file: what `import vcycle` writes, so
    #: cron, systemd and `doctor` find the keys without `AWS_SHARED_CREDENTIALS_FILE`.
    credentials_file: str | None = field(default=None, metadata={"path": True})
    endpoint_url: str | None = None
    access_key_id: str | None = field(default=None, metadata={"secret": True})
    secret_access_key: str | None = field(default=None, metadata={"secret": True})
    session_token: str | None = field(default=None, metadata={"secret": True})
    subnets: list[str] = field(default_factory=list)
    security_group_ids: list[str] = field(default_factory=list)
    iam_instance_profile: str | None = None
    key_name: str | None = None
    image: str | None = None
    image_owners: list[str] = field(default_factory=list)
    instance_types: list[str] = field(default_factory=list)
    spot: bool = False
    max_price: float | None = field(default=None, metadata={"min": 0.0})
    price_per_hour: dict[str, float] = field(default_factory=dict, metadata={"min": 0.0})
    #: The currency of this block's `price_per_hour` (ISO 4217); none: the budget's.
    currency: str | None = field(default=None, metadata={"pattern": r"[A-Z]{3}",
                                                         "pattern_doc": "a code like USD"})
    #: For `schedule` and `simulate` only (the driver sees real pre-emptions): the chance a
    #: spot machine is pre-empted during its life; none: 5% (vcyclectl.policy.cloudmodel).
    preemption_probability: float | None = field(default=None, metadata={"min": 0, "max": 1})
    tags: dict[str, str] = field(default_factory=dict)
    retry_mode: Literal["standard", "adaptive"] = "standard"
    max_attempts: int = field(default=5, metadata={"min": 1, "max": 20})
    timeout_seconds: float = field(default=30.0, metadata={"min": 1.0, "max": 600.0})
    #: Keep to EC2's documented API rate limits with a token bucket per account, region and
    #: action, shared by every thread and space of the process (docs/clouds/ec2.md); false
    #: for an EC2-compatible cloud without them.
    rate_limits: bool = True
    #: Per API action (e.g. RunInstances: 5), the request token bucket's size where this
    #: account's differs from AWS's documented default; 0 with a 0 refill: no limit.
    request_bucket_capacity: dict[str, float] = field(default_factory=dict,
                                                      metadata={"min": 0.0})
    #: Per API action (e.g. RunInstances: 2), request tokens refilled per second.
    request_bucket_refill: dict[str, float] = field(default_factory=dict, metadata={"min": 0.0})
    #: RunInstances/TerminateInstances: the resource (instance) token bucket's size.
    resource_bucket_capacity: dict[str, float] = field(default_factory=dict,
                                                       metadata={"min": 0.0})
    #: RunInstances/TerminateInstances: resource tokens refilled per second.
    resource_bucket_refill: dict[str, float] = field(default_factory=dict, metadata={"min": 0.0})

    def problems(self) -> list[tuple[str, str]]:
        """Rules that span fields, reported by `config check` at the key's line."""
        found: list[tuple[str, str]] = []
        if (self.access_key_id is None) != (self.secret_access_key is None):
            found.append(("access_key_id",
                          "access_key_id and secret_access_key go together (or leave both "
                          "out and use profile, the environment or an instance role)"))
        if self.access_key_id is not None and self.profile is not None:
            found.append(("profile", "give either profile or access keys, not both"))
        if self.access_key_id is not None and self.credentials_file is not None:
            found.append(("credentials_file", "give either credentials_file (with profile) "
                                              "or access keys, not both"))
        if self.session_token is not None and self.access_key_id is None:
            found.append(("session_token", "session_token needs access_key_id and "
                                           "secret_access_key"))
        if self.image is not None and not is_ami_id(self.image) and not self.image_owners:
            found.append(("image_owners",
                          f"image {self.image!r} is a name, not an AMI id: set image_owners "
                          "(e.g. [self] or an account id) so nobody else's AMI of that name "
                          "can be picked"))
        if len(set(self.instance_types)) != len(self.instance_types):
            found.append(("instance_types", "lists an instance type twice"))
        if len(set(self.subnets)) != len(self.subnets):
            found.append(("subnets", "lists a subnet twice"))
        for name, table in (("resource_bucket_capacity", self.resource_bucket_capacity),
                            ("resource_bucket_refill", self.resource_bucket_refill)):
            unknown = sorted(set(table) - set(RESOURCE_BUCKETS))
            if unknown:
                found.append((name, f"only {', '.join(RESOURCE_BUCKETS)} have resource "
                                    f"buckets, not {', '.join(unknown)}"))
        for name, table in (("request_bucket_capacity", self.request_bucket_capacity),
                            ("request_bucket_refill", self.request_bucket_refill)):
            unknown = sorted(a for a in table if not _ACTION.fullmatch(a))
            if unknown:
                found.append((name, f"{', '.join(unknown)}: not an EC2 API action name "
                                    "(like RunInstances)"))
        for key in self.tags:
            if key in RESERVED_TAG_KEYS or key.lower().startswith("aws:"):
                found.append(("tags", f"tag {key!r} is set by vcyclectl or AWS itself"))
        return found
