"""`vcyclectl reconcile` as a real process on a `cloud: openstack` space.

Every step is the installed console script talking HTTP to the real loopback control plane
(Keystone, Nova with its fake compute driver, Glance, Placement; see
tests/clouds/openstack/), authenticated by an application credential whose secret is read
from a file: it fills the space to its processors_limit, replaces servers deleted behind its
back, and drains.
"""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "clouds" / "openstack"))

import os_controlplane  # noqa: E402
from os_fixtures import Tenant, admin, new_tenant, openstack_cloud  # noqa: E402,F401
from tests.conftest import run_process  # noqa: E402
from tests.e2e.cloudspace import space_config, vcyclectl  # noqa: E402
from vcyclectl.clouds.contract import TAG_SPACE  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

SPACE = "openstack.example.org"


@pytest.fixture
def tenant(openstack_cloud: os_controlplane.ControlPlane, admin: Any) -> Tenant:
    return new_tenant(openstack_cloud, admin, "e2e")


def application_credential(tenant: Tenant) -> Any:
    return tenant.connection().identity.create_application_credential(
        tenant.user_id, name="vcyclectl-e2e-" + secrets.token_hex(4))


@pytest.fixture
def config(tmp_path: Path, tenant: Tenant) -> Path:
    cred = application_credential(tenant)
    (tmp_path / "appcred.secret").write_text(cred.secret + "\n")
    return space_config(tmp_path, SPACE, "openstack", f"""
        auth_url: {tenant.cloud.auth_url}
        region: {os_controlplane.REGION}
        application_credential_id: {cred.id}
        application_credential_secret_file: appcred.secret
        network: none
        metadata: {{site: loopback}}
        """, f"""
        image: {os_controlplane.IMAGE_NAME}
        flavors: [m1.small, m1.tiny]
        min_processors: 2
        max_processors: 2
        user_data: lhcb.user_data
        """)


def live(tenant: Tenant) -> dict[str, Any]:
    """Our servers in the project that still occupy capacity (not being deleted), by name."""
    return {s.name: s for s in tenant.connection().compute.servers()
            if (s.metadata or {}).get(TAG_SPACE) == SPACE
            and s.status not in ("DELETED", "SOFT_DELETED") and s.task_state != "deleting"}


def wait_until(check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.5)


def test_fill_replace_and_drain(tenant: Tenant, config: Path) -> None:
    vcyclectl(config, "reconcile")
    first = live(tenant)
    assert len(first) == 4  # 8 processors of m1.small (2 vCPUs each)
    assert all(name.startswith("vcyclectl-") for name in first)
    assert {s.flavor["original_name"] for s in first.values()} == {"m1.small"}

    vcyclectl(config, "reconcile")
    assert live(tenant).keys() == first.keys()  # full: nothing more, nothing less

    victim = sorted(first)[0]
    tenant.connection().compute.delete_server(first[victim].id)
    wait_until(lambda: victim not in live(tenant))
    vcyclectl(config, "reconcile")
    vcyclectl(config, "reconcile")
    after = live(tenant)
    assert len(after) == 4 and victim not in after
    assert set(first) - {victim} <= set(after)

    vcyclectl(config, "drain", SPACE)
    vcyclectl(config, "reconcile")
    vcyclectl(config, "reconcile")
    assert live(tenant) == {}


def test_config_show_redacts_the_application_credential(tmp_path: Path) -> None:
    path = tmp_path / "inline.yaml"
    path.write_text(f"""\
state_dir: {tmp_path / 'state'}
spaces:
  {SPACE}:
    cloud: openstack
    processors_limit: 8
    openstack:
      auth_url: https://keystone.example.org:5000/v3
      application_credential_id: 0123456789abcdef
      application_credential_secret: do-not-print-me
    machinetypes:
      lhcb: {{image: cernvm4}}
""")
    vcyclectl(path, "config", "check")
    shown = vcyclectl(path, "config", "show")
    assert "do-not-print-me" not in shown.out + shown.err
    assert "0123456789abcdef" in shown.out


def test_config_check_rejects_an_incomplete_application_credential(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"""\
state_dir: {tmp_path / 'state'}
spaces:
  {SPACE}:
    cloud: openstack
    processors_limit: 8
    openstack:
      auth_url: https://keystone.example.org:5000/v3
      application_credential_id: 0123456789abcdef
    machinetypes:
      lhcb: {{image: cernvm4}}
""")
    result = run_process("--config", path, "config", "check")
    assert result.code == 2
    assert "bad.yaml" in result.err and "application_credential" in result.err
