"""The OpenStack driver against a real control plane on loopback.

Keystone, Nova (fake compute driver), Glance and Placement from Debian 12's packages, started
once per pytest process by `openstack/os_controlplane.py` (install it first with
`sh tests/clouds/openstack/install.sh`). Every test works in a fresh project, so tests never
see each other's servers; nothing is patched between the driver and the HTTP APIs.
"""

from __future__ import annotations

import base64
import secrets
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "openstack"))

import os_controlplane  # noqa: E402
from os_fixtures import Tenant, admin, new_tenant, openstack_cloud, spec, tenant  # noqa: E402,F401

from vcyclectl.clouds.contract import TAG_MACHINETYPE, TAG_SPACE, TAG_STATE_ID, Cloud  # noqa: E402
from vcyclectl.clouds.registry import load_driver  # noqa: E402
from vcyclectl.clouds.openstack.driver import OpenStackCloud  # noqa: E402
from vcyclectl.clouds.openstack.states import STATE_MAP  # noqa: E402
from vcyclectl.clouds.openstack.options import OpenStackOptions  # noqa: E402
from vcyclectl.errors import Fatal, QuotaExceeded, Transient  # noqa: E402
from vcyclectl.core.model import CloudMachine, MachineState  # noqa: E402
from vcyclectl.config.schema import REDACTED, to_display  # noqa: E402

# openstacksdk's own calls of its deprecated internals; nothing the driver can change.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

#: Every server status in the Compute API reference ("Show Server Details", status).
NOVA_STATUSES = ["ACTIVE", "BUILD", "DELETED", "ERROR", "HARD_REBOOT", "MIGRATING", "PASSWORD",
                 "PAUSED", "REBOOT", "REBUILD", "RESCUE", "RESIZE", "REVERT_RESIZE",
                 "SHELVED", "SHELVED_OFFLOADED", "SHUTOFF", "SOFT_DELETED", "SUSPENDED",
                 "UNKNOWN", "VERIFY_RESIZE"]


def wait_for(check: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def machine_named(driver: OpenStackCloud, name: str) -> CloudMachine | None:
    return next((m for m in driver.list_machines() if m.name == name), None)


def wait_state(driver: OpenStackCloud, name: str, state: MachineState,
               timeout: float = 60) -> CloudMachine:
    def check() -> CloudMachine | None:
        machine = machine_named(driver, name)
        return machine if machine is not None and machine.state is state else None

    return wait_for(check, timeout, f"{name} to be {state.value}")  # type: ignore[no-any-return]


class RequestLog:
    """Every HTTP request the driver's session sends (a requests response hook)."""

    def __init__(self, driver: OpenStackCloud) -> None:
        self.requests: list[tuple[str, str]] = []
        driver.connection.session.session.hooks["response"].append(self._hook)

    def _hook(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self.requests.append((response.request.method, urlsplit(response.request.url).path))

    def count(self, method: str, path_suffix: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p.endswith(path_suffix))


# -- the happy path ------------------------------------------------------------------------


def test_driver_is_found_through_the_registry(tenant: Tenant) -> None:
    driver = load_driver(tenant.context(), "openstack")
    assert isinstance(driver, OpenStackCloud)
    assert isinstance(driver, Cloud)


def test_create_with_user_data_and_metadata_then_running(tenant: Tenant, admin: Any) -> None:
    driver = OpenStackCloud(tenant.context(tenant.options(metadata={"site": "loopback"})))
    user_data = "#!/bin/sh\necho hello from ##user_data_space##\n"
    s = spec(tenant, user_data=user_data, machinetype="lhcb", metadata={"owner": "tests"})
    created = driver.create(s)
    assert created.name == s.name and created.id
    assert created.state is MachineState.STARTING

    running = wait_state(driver, s.name, MachineState.RUNNING)
    assert running.id == created.id
    assert running.machinetype == "lhcb" and running.space == "os.test"
    assert running.processors == 1 and running.flavor == "m1.tiny"
    assert running.started_at is not None and running.created_at is not None
    assert abs(running.started_at - time.time()) < 300
    assert "user_data" not in running.raw and "OS-EXT-SRV-ATTR:user_data" not in running.raw

    server = admin.compute.get_server(created.id)  # the admin sees what Nova stored
    assert base64.b64decode(server.user_data).decode() == user_data
    assert server.metadata[TAG_SPACE] == "os.test"
    assert server.metadata[TAG_MACHINETYPE] == "lhcb"
    assert server.metadata[TAG_STATE_ID] == tenant.state_id
    assert server.metadata["site"] == "loopback" and server.metadata["owner"] == "tests"
    assert f"{TAG_STATE_ID}={tenant.state_id}" in server.tags
    assert f"{TAG_SPACE}=os.test" in server.tags


def test_listing_paginates_and_keeps_to_its_own_servers(tenant: Tenant) -> None:
    driver = OpenStackCloud(tenant.context(tenant.options(page_size=5)))
    names = {driver.create(spec(tenant)).name for _ in range(12)}

    # Neighbours in the same project: another state directory, another space, and a
    # server nobody tagged. None of them may appear.
    other_state = Tenant(**{**tenant.__dict__, "state_id": "other" + secrets.token_hex(3)})
    OpenStackCloud(other_state.context()).create(spec(other_state))
    OpenStackCloud(tenant.context(space="os.other")).create(spec(tenant, space="os.other"))
    conn = tenant.connection()
    conn.compute.create_server(name="hand-made", image_id=tenant.cloud.image_id,
                               flavor_id=conn.compute.find_flavor("m1.tiny").id, networks="none")

    fresh = OpenStackCloud(tenant.context(tenant.options(page_size=5)))
    requests = RequestLog(fresh)
    machines = fresh.list_machines()
    assert {m.name for m in machines} == names
    assert len(machines) == 12
    # 12 servers in pages of 5: 5 + 5 + 2, one request each; no per-server GET.
    assert requests.count("GET", "/servers/detail") == 3
    assert not [p for m, p in requests.requests if "/servers/" in p and not p.endswith("/detail")]


def test_delete_is_idempotent(tenant: Tenant) -> None:
    driver = OpenStackCloud(tenant.context())
    machine = driver.create(spec(tenant))
    wait_state(driver, machine.name, MachineState.RUNNING)
    driver.delete(machine)
    wait_for(lambda: machine_named(driver, machine.name) is None, 60, "server to go")
    driver.delete(machine)  # already gone: success
    ghost = CloudMachine(id="00000000-0000-0000-0000-000000000000", name="never-was",
                         space="os.test", machinetype="worker", state=MachineState.RUNNING,
                         processors=1)
    driver.delete(ghost)


# -- states ---------------------------------------------------------------------------------


def test_every_nova_status_is_in_the_state_table() -> None:
    assert sorted(set(NOVA_STATUSES) - set(STATE_MAP)) == []
    assert STATE_MAP["BUILD"] is MachineState.STARTING
    assert STATE_MAP["ACTIVE"] is MachineState.RUNNING
    assert STATE_MAP["SHUTOFF"] is MachineState.STOPPED
    assert STATE_MAP["STOPPED"] is MachineState.STOPPED
    assert STATE_MAP["ERROR"] is MachineState.FAILED
    assert STATE_MAP["DELETED"] is MachineState.GONE
    assert STATE_MAP["SOFT_DELETED"] is MachineState.GONE
    others = set(NOVA_STATUSES) - {"BUILD", "ACTIVE", "SHUTOFF", "ERROR", "DELETED",
                                   "SOFT_DELETED"}
    assert {STATE_MAP[s] for s in others} == {MachineState.UNKNOWN}


def test_stopped_server_is_reported_stopped(tenant: Tenant) -> None:
    driver = OpenStackCloud(tenant.context())
    machine = driver.create(spec(tenant))
    wait_state(driver, machine.name, MachineState.RUNNING)
    tenant.connection().compute.stop_server(machine.id)  # as a VM halting itself would
    stopped = wait_state(driver, machine.name, MachineState.STOPPED)
    assert stopped.id == machine.id


def test_server_that_cannot_be_scheduled_is_failed_with_its_fault(tenant: Tenant) -> None:
    driver = OpenStackCloud(tenant.context())
    # x.huge wants more vCPUs than the fake compute host has: no valid host, ERROR.
    machine = driver.create(spec(tenant, flavor="x.huge", processors=4096))
    failed = wait_state(driver, machine.name, MachineState.FAILED)
    assert failed.state_reason is not None
    assert "No valid host" in failed.state_reason


# -- errors ---------------------------------------------------------------------------------


def test_quota_refusal_is_quota_exceeded(tenant: Tenant, admin: Any) -> None:
    admin.compute.update_quota_set(tenant.project_id, cores=3)
    driver = OpenStackCloud(tenant.context())
    first = driver.create(spec(tenant, flavor="m1.small", processors=2))
    # Nova counts cores of servers that have reached a cell; until then a create is only
    # rechecked later (and the server put in ERROR), so let the first one land.
    wait_state(driver, first.name, MachineState.RUNNING)
    with pytest.raises(QuotaExceeded) as caught:
        driver.create(spec(tenant, flavor="m1.small", processors=2))
    assert "os.test" in str(caught.value) and "uota" in str(caught.value)
    assert len(driver.list_machines()) == 1


def test_lost_create_response_returns_the_server_nova_made(tenant: Tenant) -> None:
    cloud = tenant.cloud
    # LossyRegion's compute endpoint is a proxy that forwards the create to Nova and then
    # drops the connection instead of returning Nova's answer.
    driver = OpenStackCloud(tenant.context(tenant.options(region=os_controlplane.LOSSY_REGION)))
    s = spec(tenant)
    lost_before = cloud.lose_next_create()
    first = driver.create(s)
    assert cloud.lost_responses() == lost_before + 1
    assert first.name == s.name
    servers = [x for x in tenant.connection().compute.servers() if x.name == s.name]
    assert [x.id for x in servers] == [first.id]


def test_retry_after_lost_response_does_not_make_a_second_server(tenant: Tenant) -> None:
    cloud = tenant.cloud
    driver = OpenStackCloud(tenant.context(tenant.options(region=os_controlplane.LOSSY_REGION)))
    s = spec(tenant)
    # The response is lost and so is the look-up that follows: the call fails...
    cloud.lose_next_create(then_drop=1)
    with pytest.raises(Transient):
        driver.create(s)
    # ...and the reconciler's retry of the same name finds the server instead of a second.
    again = driver.create(s)
    servers = [x for x in tenant.connection().compute.servers() if x.name == s.name]
    assert [x.id for x in servers] == [again.id]
    # The next pass (a new driver) sees it in its listing, where the planner adopts it.
    listed = OpenStackCloud(tenant.context()).list_machines()
    assert [m.id for m in listed] == [again.id]


def test_wrong_password_is_fatal_and_names_the_space(tenant: Tenant) -> None:
    wrong = "not-the-password-" + secrets.token_hex(4)
    driver = OpenStackCloud(tenant.context(tenant.options(password=wrong), space="os.badpw"))
    with pytest.raises(Fatal) as caught:
        driver.list_machines()
    message = str(caught.value)
    assert "os.badpw" in message and "credentials" in message and "password" in message
    assert wrong not in message


def test_unreachable_keystone_is_transient(tenant: Tenant) -> None:
    closed = os_controlplane.free_port()
    driver = OpenStackCloud(tenant.context(tenant.options(
        auth_url=f"http://127.0.0.1:{closed}/v3", timeout_seconds=5)))
    with pytest.raises(Transient) as caught:
        driver.list_machines()
    assert "os.test" in str(caught.value)


def test_unknown_flavor_and_image_are_fatal(tenant: Tenant) -> None:
    driver = OpenStackCloud(tenant.context(tenant.options(flavors=["m1.tiny", "no.such"])))
    with pytest.raises(Fatal, match="no.such"):
        driver.flavors()
    driver = OpenStackCloud(tenant.context())
    bad_image = spec(tenant)
    bad_image = type(bad_image)(**{**bad_image.__dict__, "image": "no-such-image"})
    with pytest.raises(Fatal, match="no-such-image"):
        driver.create(bad_image)


# -- application credentials, flavors, health ------------------------------------------------


def _application_credential(tenant: Tenant, expires_at: datetime | None = None) -> Any:
    conn = tenant.connection()
    kwargs: dict[str, Any] = {}
    if expires_at is not None:
        kwargs["expires_at"] = expires_at.strftime("%Y-%m-%dT%H:%M:%S")
    return conn.identity.create_application_credential(
        tenant.user_id, name="vcyclectl-" + secrets.token_hex(4), **kwargs)


def test_application_credential_auth_from_a_secret_file(tenant: Tenant, tmp_path: Path) -> None:
    cred = _application_credential(tenant)
    secret_file = tmp_path / "secret"
    secret_file.write_text(cred.secret + "\n")
    options = OpenStackOptions(auth_url=tenant.cloud.auth_url, region=os_controlplane.REGION,
                               application_credential_id=cred.id,
                               application_credential_secret_file=str(secret_file),
                               network="none")
    assert options.problems() == []
    driver = OpenStackCloud(tenant.context(options))
    machine = driver.create(spec(tenant))
    assert [m.name for m in driver.list_machines()] == [machine.name]
    assert driver.health() == []  # no expiry, unlimited quota


def test_wrong_application_credential_secret_is_fatal_without_the_secret(tenant: Tenant) -> None:
    cred = _application_credential(tenant)
    wrong = "wrong-" + secrets.token_urlsafe(24)
    options = OpenStackOptions(auth_url=tenant.cloud.auth_url, region=os_controlplane.REGION,
                               application_credential_id=cred.id,
                               application_credential_secret=wrong, network="none")
    assert wrong not in repr(options)
    assert to_display(options)["application_credential_secret"] == REDACTED
    with pytest.raises(Fatal) as caught:
        OpenStackCloud(tenant.context(options, space="os.appcred")).list_machines()
    message = str(caught.value)
    assert "os.appcred" in message and "application credential" in message
    assert wrong not in message and cred.secret not in message


def test_health_warns_of_expiring_credential_and_quota(tenant: Tenant, admin: Any) -> None:
    cred = _application_credential(tenant, datetime.now(timezone.utc) + timedelta(days=3))
    admin.compute.update_quota_set(tenant.project_id, cores=2)
    options = OpenStackOptions(auth_url=tenant.cloud.auth_url, region=os_controlplane.REGION,
                               application_credential_id=cred.id,
                               application_credential_secret=cred.secret, network="none")
    driver = OpenStackCloud(tenant.context(options))
    machine = driver.create(spec(tenant, flavor="m1.small", processors=2))
    wait_state(driver, machine.name, MachineState.RUNNING)
    warnings = driver.health()
    assert any("expires in 2." in w or "expires in 3.0" in w for w in warnings), warnings
    assert any(w.startswith("quota: cores 2/2 used") for w in warnings), warnings


def test_flavors_configured_in_order_or_all(tenant: Tenant) -> None:
    driver = OpenStackCloud(tenant.context(tenant.options(flavors=["m1.large", "m1.tiny"])))
    flavors = driver.flavors()
    assert [(f.name, f.processors, f.memory_mb) for f in flavors] == [
        ("m1.large", 4, 8192), ("m1.tiny", 1, 512)]
    everything = OpenStackCloud(tenant.context()).flavors()
    assert {f.name for f in everything} >= set(os_controlplane.FLAVORS)


def test_image_is_resolved_once_per_driver(tenant: Tenant) -> None:
    driver = OpenStackCloud(tenant.context())
    requests = RequestLog(driver)
    for _ in range(3):
        driver.create(spec(tenant))
    assert requests.count("GET", "/v2/images") == 1
    assert requests.count("POST", "/servers") == 3


def test_servers_are_spread_across_zones(tenant: Tenant) -> None:
    driver = OpenStackCloud(tenant.context(tenant.options(availability_zones=["nova"])))
    machine = driver.create(spec(tenant))
    assert machine.zone == "nova"
    assert wait_state(driver, machine.name, MachineState.RUNNING).zone == "nova"
    spread = OpenStackCloud(tenant.context(tenant.options(availability_zones=["a", "b", "c"])))
    picks = Counter(spread._pick_zone(["a", "b", "c"]) for _ in range(9))
    assert picks == Counter({"a": 3, "b": 3, "c": 3})


# -- options --------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, key", [
    ({}, "auth_url"),
    ({"auth_url": "http://k/v3"}, "username"),
    ({"auth_url": "http://k/v3", "application_credential_id": "abc"}, "application_credential_id"),
    ({"auth_url": "http://k/v3", "application_credential_id": "abc",
      "application_credential_secret": "s", "application_credential_secret_file": "/f"},
     "application_credential_secret_file"),
    ({"cloud": "mycloud", "auth_url": "http://k/v3"}, "auth_url"),
    ({"auth_url": "http://k/v3", "username": "u", "password": "p"}, "project_name"),
])
def test_options_problems(kwargs: dict[str, Any], key: str) -> None:
    problems = OpenStackOptions(**kwargs).problems()
    assert problems and problems[0][0] == key


def test_options_accepted() -> None:
    assert OpenStackOptions(cloud="mycloud").problems() == []
    assert OpenStackOptions(auth_url="http://k/v3", username="u", password="p",
                            project_name="p").problems() == []
    shown = to_display(OpenStackOptions(auth_url="http://k/v3", username="u", password="pw",
                                        project_name="p"))
    assert shown["password"] == REDACTED
    assert "pw" not in repr(OpenStackOptions(auth_url="x", username="u", password="pw"))


def test_clouds_yaml_entry(tenant: Tenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(
        "clouds:\n  loopback:\n    region_name: RegionOne\n    auth:\n"
        f"      auth_url: {tenant.cloud.auth_url}\n      username: {tenant.username}\n"
        f"      password: {tenant.password}\n      project_name: {tenant.project_name}\n"
        "      user_domain_name: Default\n      project_domain_name: Default\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    driver = OpenStackCloud(tenant.context(OpenStackOptions(cloud="loopback", network="none")))
    machine = driver.create(spec(tenant))
    assert [m.id for m in driver.list_machines()] == [machine.id]
    missing = OpenStackCloud(tenant.context(OpenStackOptions(cloud="nowhere"), space="os.nocloud"))
    with pytest.raises(Fatal, match="os.nocloud.*nowhere"):
        missing.list_machines()


def test_fresh_tenants_do_not_see_each_other(openstack_cloud: Any, admin: Any) -> None:
    first, second = new_tenant(openstack_cloud, admin), new_tenant(openstack_cloud, admin)
    OpenStackCloud(first.context()).create(spec(first))
    assert OpenStackCloud(second.context()).list_machines() == []
