"""pytest fixtures for tests against the real OpenStack control plane.

Import the fixtures into a test module (``from os_fixtures import openstack_cloud, tenant``
after putting this folder on ``sys.path``). The control plane is one per pytest process,
whichever modules import these fixtures: `shared_control_plane()` starts it on first use
and an ``atexit`` hook stops it, because pytest would otherwise build one session fixture
per importing module. It cannot be reset, so every test gets a fresh project and user
(`tenant`) and a fresh state id, and asserts only on what it made.

If the control plane cannot start, the fixture raises with the failing service's log: the
tests fail loudly rather than skip.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import pytest

import os_controlplane
from os_controlplane import ControlPlane

from vcyclectl.clouds.contract import CloudContext
from vcyclectl.clouds.openstack.options import OpenStackOptions
from vcyclectl.core.model import Flavor, MachineSpec

_lock = threading.Lock()
_plane: ControlPlane | None = None
_failure: BaseException | None = None


def shared_control_plane() -> ControlPlane:
    """The process's control plane, started on first call (about 40-60 s)."""
    global _plane, _failure
    with _lock:
        if _failure is not None:
            raise RuntimeError(f"the OpenStack control plane failed to start: {_failure}")
        attach = os.environ.get("VCYCLECTL_OS_CONTROL_PLANE")
        if _plane is None and attach:
            _plane = ControlPlane.attach(json.loads(Path(attach).read_text()))
        if _plane is None:
            try:
                _plane = os_controlplane.start()
            except BaseException as exc:
                _failure = exc
                raise
            atexit.register(_plane.stop)
        return _plane


@pytest.fixture(scope="session")
def openstack_cloud() -> ControlPlane:
    return shared_control_plane()


@pytest.fixture(scope="session")
def admin(openstack_cloud: ControlPlane) -> Any:
    return openstack_cloud.admin_connection()


@dataclass
class Tenant:
    """A fresh project with one member user, for one test."""

    cloud: ControlPlane
    project_id: str
    project_name: str
    user_id: str
    username: str
    password: str
    state_id: str = field(default_factory=lambda: "t" + secrets.token_hex(6))

    def options(self, **overrides: Any) -> OpenStackOptions:
        """Password auth to this project on RegionOne, with no network (the default here)."""
        base = OpenStackOptions(auth_url=self.cloud.auth_url, region=os_controlplane.REGION,
                                username=self.username, password=self.password,
                                project_name=self.project_name, network="none")
        return replace(base, **overrides)

    def context(self, options: OpenStackOptions | None = None, space: str = "os.test",
                state_dir: Path | None = None) -> CloudContext:
        return CloudContext(space=space, state_id=self.state_id,
                            state_dir=state_dir or Path("/nonexistent"),
                            options=options or self.options())

    def connection(self, region: str = os_controlplane.REGION) -> Any:
        import openstack

        return openstack.connect(
            auth={"auth_url": self.cloud.auth_url, "username": self.username,
                  "password": self.password, "project_id": self.project_id,
                  "user_domain_name": "Default"},
            region_name=region)


def new_tenant(cloud: ControlPlane, admin: Any, prefix: str = "t") -> Tenant:
    suffix = secrets.token_hex(4)
    project = admin.identity.create_project(name=f"{prefix}-{suffix}", domain_id="default")
    password = secrets.token_urlsafe(16)
    user = admin.identity.create_user(name=f"{prefix}-user-{suffix}", password=password,
                                      domain_id="default", default_project_id=project.id)
    member = next(iter(admin.identity.roles(name="member")))
    admin.identity.assign_project_role_to_user(project, user, member)
    return Tenant(cloud=cloud, project_id=project.id, project_name=project.name,
                  user_id=user.id, username=user.name, password=password)


@pytest.fixture
def tenant(openstack_cloud: ControlPlane, admin: Any) -> Iterator[Tenant]:
    yield new_tenant(openstack_cloud, admin)


def spec(tenant: Tenant, name: str | None = None, *, flavor: str = "m1.tiny",
         processors: int = 1, machinetype: str = "worker", user_data: str = "#!/bin/sh\ntrue\n",
         space: str = "os.test", metadata: dict[str, str] | None = None) -> MachineSpec:
    """A MachineSpec as the planner would make it, for this tenant's state id."""
    name = name or f"vcyclectl-ostest-{machinetype}-{secrets.token_hex(5)}"
    return MachineSpec(name=name, space=space, machinetype=machinetype,
                       flavor=Flavor(name=flavor, processors=processors), image=os_controlplane.IMAGE_NAME,
                       user_data=user_data, state_id=tenant.state_id, metadata=metadata or {})
