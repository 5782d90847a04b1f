"""The lazy registry of drivers: a space's driver module (and its SDK) is imported only when
a pass, `list --live`, `inspect --live` or `doctor` touches that space (libcloud's
`compute/providers.py` idea), so a local-only pass never pays for boto3 or Google's client.
"""

from __future__ import annotations

from typing import Any

from vcyclectl.clouds.contract import Cloud, CloudContext
from vcyclectl.clouds.options import import_ref
from vcyclectl.config import Config, Space, machinetype_options
from vcyclectl.errors import ConfigError

#: cloud name -> "module:Driver class"; imported on first use.
DRIVERS: dict[str, str] = {
    "local": "vcyclectl.clouds.local.driver:LocalCloud",
    "openstack": "vcyclectl.clouds.openstack.driver:OpenStackCloud",
    "ec2": "vcyclectl.clouds.ec2.driver:Ec2Cloud",
    "gce": "vcyclectl.clouds.gce.driver:GceCloud",
}


def load_driver(context: CloudContext[Any], cloud: str) -> Cloud:
    """Build the driver for one space, importing its module (and SDK) only now. The
    context's options are the dataclass of `cloud`; each driver checks it is."""
    try:
        cls = import_ref(DRIVERS[cloud])
    except KeyError:
        raise ConfigError(f"unknown cloud {cloud!r}") from None
    driver: Cloud = cls(context)
    return driver


def build_cloud(config: Config, space: Space, state_id: str) -> Cloud:
    """The driver for `space`, given its options and this state directory's identity."""
    context = CloudContext(space=space.name, state_id=state_id, state_dir=config.state_dir,
                           options=space.cloud_options,
                           machinetype_options=machinetype_options(space))
    return load_driver(context, space.cloud)
