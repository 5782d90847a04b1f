"""Where each cloud's config-block dataclass lives, found by name on first use.

Kept apart from `clouds/registry.py` so that `config` (and through it the pure planner) never
imports the driver layer; the option modules themselves import no SDK.
"""

from __future__ import annotations

import importlib
from typing import Any

from vcyclectl.errors import ConfigError

#: cloud name -> "module:Options dataclass".
OPTIONS: dict[str, str] = {
    "local": "vcyclectl.clouds.local.options:LocalOptions",
    "openstack": "vcyclectl.clouds.openstack.options:OpenStackOptions",
    "ec2": "vcyclectl.clouds.ec2.options:Ec2Options",
    "gce": "vcyclectl.clouds.gce.options:GceOptions",
}


def import_ref(ref: str) -> Any:
    """The object a "module:attribute" reference names, its module imported only now
    (the lazy lookup the driver registry shares)."""
    module_name, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def options_class(cloud: str) -> type:
    """The frozen dataclass for a cloud's config block."""
    try:
        ref = OPTIONS[cloud]
    except KeyError:
        raise ConfigError(f"unknown cloud {cloud!r} "
                          f"(choose from {', '.join(sorted(OPTIONS))})") from None
    try:
        cls: type = import_ref(ref)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"cloud {cloud!r} is not available in this build ({exc.name})") from None
    return cls
