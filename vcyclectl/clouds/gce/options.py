"""The `gce:` config block of a `cloud: gce` space, as a frozen dataclass.

This module imports no Google module on purpose: `google.cloud.compute_v1` costs most of a
second to import, and `config check` (or a pass over spaces on other clouds) loads this
module for every GCE space. Only the driver (`vcyclectl.clouds.gce.driver`) imports the SDK, and
only when a pass touches a GCE space. `benchmarks/bench_gce.py` measures both imports.

It also holds the GCE naming rules (label values, instance names) as plain functions, so the
config checker and the driver agree on them without the driver being imported.

Credentials follow Application Default Credentials: a service-account key file named by
`credentials_file` (or `GOOGLE_APPLICATION_CREDENTIALS`), else the metadata server of the
host running cron. `credentials: anonymous` sends no credentials at all; it exists for test
servers and private endpoints named by `api_endpoint`, and is refused without one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

#: Label keys the driver sets itself (`vcyclectl.clouds.contract` TAG_* plus the processor
#: count); an extra label may not override them, or vcyclectl could lose track of (or adopt
#: someone else's) machines. Kept literal here so this module needs nothing but stdlib.
RESERVED_LABEL_KEYS = frozenset({"vcyclectl-space", "vcyclectl-machinetype",
                                 "vcyclectl-state-id", "vcyclectl-processors"})

#: GCE resource names (instances): RFC 1035 labels, at most 63 characters.
INSTANCE_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
#: GCE label keys: start with a lowercase letter; values may be empty. Both <= 63 chars.
LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
_ZONE = re.compile(r"[a-z]+-[a-z]+[0-9]+-[a-z]")
_PROJECT = r"[a-z]([-a-z0-9.:]{0,61}[a-z0-9])?"

DEFAULT_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


def label_value(text: str) -> str:
    """Encode a space/machinetype name or state id as a valid GCE label value.

    Label values allow only `[a-z0-9_-]` and at most 63 characters, while space names may
    contain '.' (`cumulus.example.org`). The encoding lowercases, maps '.' to '_' and any
    other character outside the alphabet to '-'. It is documented (docs/clouds/gce.md) so
    that operators can filter with `gcloud compute instances list --filter
    labels.vcyclectl-space=cumulus_example_org`. Names longer than 63 characters keep a
    prefix plus a short stable hash so two long names cannot collide.
    """
    encoded = "".join(c if c in "abcdefghijklmnopqrstuvwxyz0123456789_-" else
                      "_" if c == "." else "-" for c in text.lower())
    if len(encoded) <= 63:
        return encoded
    import hashlib

    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return encoded[:54] + "-" + digest


@dataclass(frozen=True)
class GceOptions:
    """Everything a space (or one machinetype, merged over the space's block) says about GCE."""

    project: str | None = field(default=None, metadata={"pattern": _PROJECT,
                                                        "pattern_doc": "a GCE project id"})
    zones: list[str] = field(default_factory=list)
    machine_types: list[str] = field(default_factory=list)
    image: str | None = None
    network: str = "default"
    subnetwork: str | None = None
    external_ip: bool = False
    network_tags: list[str] = field(default_factory=list)
    service_account: str | None = None
    scopes: list[str] = field(default_factory=lambda: list(DEFAULT_SCOPES))
    labels: dict[str, str] = field(default_factory=dict)
    disk_size_gb: int = field(default=20, metadata={"min": 10, "max": 65536})
    disk_type: str = "pd-balanced"
    provisioning_model: Literal["STANDARD", "SPOT"] = "STANDARD"
    instance_termination_action: Literal["DELETE", "STOP"] = "DELETE"
    price_per_hour: dict[str, float] = field(default_factory=dict, metadata={"min": 0.0})
    #: The currency of this block's `price_per_hour` (ISO 4217); none: the budget's.
    currency: str | None = field(default=None, metadata={"pattern": r"[A-Z]{3}",
                                                         "pattern_doc": "a code like USD"})
    #: For `schedule` and `simulate` only (the driver sees real pre-emptions): the chance a
    #: spot machine is pre-empted during its life; none: 5% (vcyclectl.policy.cloudmodel).
    preemption_probability: float | None = field(default=None, metadata={"min": 0, "max": 1})
    credentials: Literal["default", "anonymous"] = "default"
    credentials_file: str | None = field(default=None, metadata={"path": True})
    api_endpoint: str | None = None
    page_size: int = field(default=500, metadata={"min": 1, "max": 500})
    operation_timeout_seconds: float = field(default=300.0, metadata={"min": 1.0,
                                                                      "max": 3600.0})
    request_timeout_seconds: float = field(default=60.0, metadata={"min": 1.0, "max": 600.0})
    retry_seconds: float = field(default=30.0, metadata={"min": 0.0, "max": 600.0})
    #: Compute Engine read requests (get, list, operation waits) this project may make per
    #: minute and quota group (global; per region): the documented default 1,500; raise it
    #: to a granted quota, 0 for no client-side limit (docs/clouds/gce.md).
    read_requests_per_minute: int = field(default=1500, metadata={"min": 0})
    #: Compute Engine write requests (insert, delete) per minute and region: 1,500 default.
    write_requests_per_minute: int = field(default=1500, metadata={"min": 0})

    @property
    def spot(self) -> bool:
        return self.provisioning_model == "SPOT"

    def problems(self) -> list[tuple[str, str]]:
        """Rules that span fields, reported by `config check` at the key's line."""
        found: list[tuple[str, str]] = []
        if not self.project:
            found.append(("project", "is required (the GCE project id)"))
        found.extend(self._zone_problems())
        if len(set(self.machine_types)) != len(self.machine_types):
            found.append(("machine_types", "lists a machine type twice"))
        for name in self.price_per_hour:
            if self.machine_types and name not in self.machine_types:
                found.append(("price_per_hour", f"{name!r} is not in machine_types"))
        found.extend(self._label_problems())
        found.extend(self._credential_problems())
        if (self.instance_termination_action != "DELETE"
                and self.provisioning_model == "STANDARD"):
            found.append(("instance_termination_action",
                          "applies to provisioning_model: SPOT only"))
        if self.api_endpoint and not re.match(r"https?://", self.api_endpoint):
            found.append(("api_endpoint", "must start with http:// or https://"))
        return found

    def _zone_problems(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        if not self.zones:
            found.append(("zones", "name at least one zone (e.g. [europe-west4-a])"))
        for zone in self.zones:
            if not _ZONE.fullmatch(zone):
                found.append(("zones", f"{zone!r} is not a zone name (e.g. europe-west4-a)"))
        if len(set(self.zones)) != len(self.zones):
            found.append(("zones", "lists a zone twice"))
        return found

    def _label_problems(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for key, value in self.labels.items():
            if key in RESERVED_LABEL_KEYS:
                found.append(("labels", f"label {key!r} is set by vcyclectl itself"))
            elif not LABEL_KEY.fullmatch(key):
                found.append(("labels", f"label key {key!r} is not a GCE label key "
                                        "(lowercase letter, then [a-z0-9_-], at most 63)"))
            if not LABEL_VALUE.fullmatch(value):
                found.append(("labels", f"label value {value!r} for {key!r} is not a GCE "
                                        "label value ([a-z0-9_-], at most 63)"))
        if len(self.labels) > 64 - len(RESERVED_LABEL_KEYS):
            found.append(("labels", "GCE allows 64 labels per instance, 4 are vcyclectl's"))
        return found

    def _credential_problems(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        if self.credentials == "anonymous" and not self.api_endpoint:
            found.append(("credentials", "anonymous credentials only make sense with "
                                         "api_endpoint (a test server or private endpoint)"))
        if self.credentials == "anonymous" and self.credentials_file:
            found.append(("credentials_file", "give either credentials: anonymous or a "
                                              "credentials_file, not both"))
        return found
