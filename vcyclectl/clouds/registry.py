"""The lazy registry of drivers: a space's driver module (and its SDK) is imported only when
a pass, `list --live`, `inspect --live` or `doctor` touches that space (libcloud's
`compute/providers.py` idea), so a local-only pass never pays for boto3 or Google's client.
"""

from __future__ import annotations

from typing import Any

from vcyclectl.clouds.contract import Cloud, CloudContext
from vcyclectl.clouds.options import import_ref
from vcyclectl.config import Config, Space, machinetype_options
from vcyclectl.errors import ConfigError, Fatal

#: cloud name -> "module:Driver class"; imported on first use.
DRIVERS: dict[str, str] = {
    "local": "vcyclectl.clouds.local.driver:LocalCloud",
    "openstack": "vcyclectl.clouds.openstack.driver:OpenStackCloud",
    "ec2": "vcyclectl.clouds.ec2.driver:Ec2Cloud",
    "gce": "vcyclectl.clouds.gce.driver:GceCloud",
}

#: cloud name -> (the pip extra that installs its SDK, the top-level modules of that SDK).
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "openstack": ("openstack", ("openstack", "keystoneauth1")),
    "ec2": ("ec2", ("boto3", "botocore")),
    "gce": ("gce", ("google",)),
}


def missing_extra(cloud: str, exc: ModuleNotFoundError) -> Fatal | None:
    """The one-line error for a cloud whose SDK is not installed (the core install has no
    cloud SDK: `pip install 'vcyclectl[ec2]'`), or None when the missing module is not that
    SDK's (then it is a bug, and the original error must show)."""
    extra, modules = EXTRAS.get(cloud, ("", ()))
    top = (exc.name or "").partition(".")[0]
    if top not in modules:
        return None
    return Fatal(f"cloud {cloud!r} needs the {top} package, which is not installed: "
                 f"pip install 'vcyclectl[{extra}]' (or the vcyclectl RPM, which has them all)")


def load_driver(context: CloudContext[Any], cloud: str) -> Cloud:
    """Build the driver for one space, importing its module (and SDK) only now. The
    context's options are the dataclass of `cloud`; each driver checks it is."""
    try:
        cls = import_ref(DRIVERS[cloud])
    except KeyError:
        raise ConfigError(f"unknown cloud {cloud!r}") from None
    except ModuleNotFoundError as exc:
        error = missing_extra(cloud, exc)
        if error is None:
            raise
        raise error from None
    driver: Cloud = cls(context)
    return driver


def build_cloud(config: Config, space: Space, state_id: str) -> Cloud:
    """The driver for `space`, given its options and this state directory's identity."""
    context = CloudContext(space=space.name, state_id=state_id, state_dir=config.state_dir,
                           options=space.cloud_options,
                           machinetype_options=machinetype_options(space))
    return load_driver(context, space.cloud)
