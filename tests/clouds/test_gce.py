"""The GCE driver against a faithful fake of the Compute REST API, over HTTP on loopback.

The real `google-cloud-compute` client talks to `tests/clouds/gce_fake.py` (the driver's
`api_endpoint` option); nothing in the driver or the SDK is patched. Assertions are on the
resulting state (what the fake holds, what a listing reports), plus call counts where the
number of API calls is itself the contract (one aggregatedList per page, no per-instance
calls).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

from gce_fake import FakeCompute, discovery, parse_filter  # noqa: E402

from vcyclectl.clouds.contract import (TAG_MACHINETYPE, TAG_SPACE, TAG_STATE_ID,  # noqa: E402
                                   CloudContext)
from vcyclectl.clouds.gce.driver import GceCloud  # noqa: E402
from vcyclectl.clouds.gce.requests import request_id, zone_order  # noqa: E402
from vcyclectl.clouds.gce.states import STATE_MAP, machine_state  # noqa: E402
from vcyclectl.clouds.gce.options import (LABEL_VALUE, GceOptions,  # noqa: E402
                                          label_value)
from vcyclectl.errors import (Fatal, IncompleteListing, QuotaExceeded,  # noqa: E402
                              Transient)
from vcyclectl.core.model import CloudMachine, Flavor, MachineSpec, MachineState  # noqa: E402

SPACE = "cumulus.example.org"
STATE_ID = "s7x9k2"
IMAGE = "projects/cos-cloud/global/images/family/cos-stable"
ZONES = ["europe-west4-a", "europe-west4-b", "europe-west4-c"]
FLAVOR = Flavor("e2-standard-4", 4, 16384)


@pytest.fixture
def fake() -> Iterator[FakeCompute]:
    server = FakeCompute(zones=tuple(ZONES)).start()
    try:
        yield server
    finally:
        server.stop()


def options(fake: FakeCompute, **overrides: Any) -> GceOptions:
    base = GceOptions(project=fake.project, zones=list(ZONES),
                      machine_types=["e2-standard-4", "e2-standard-8"], image=IMAGE,
                      credentials="anonymous", api_endpoint=fake.url,
                      operation_timeout_seconds=10.0, request_timeout_seconds=10.0)
    return replace(base, **overrides)


def driver(fake: FakeCompute, *, space: str = SPACE, state_id: str = STATE_ID,
           machinetypes: dict[str, GceOptions] | None = None, **overrides: Any) -> GceCloud:
    return GceCloud(CloudContext(space=space, state_id=state_id, state_dir=Path("/nonexistent"),
                                 options=options(fake, **overrides),
                                 machinetype_options=machinetypes or {}))


def spec(name: str, *, machinetype: str = "lhcb", flavor: Flavor = FLAVOR,
         user_data: str = "#cloud-config\nruncmd: [echo hello]\n",
         image: str | None = None) -> MachineSpec:
    return MachineSpec(name=name, space=SPACE, machinetype=machinetype, flavor=flavor,
                       image=image, user_data=user_data, state_id=STATE_ID,
                       metadata={"vcyclectl-manager": "host1"})


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def by_name(machines: list[CloudMachine]) -> dict[str, CloudMachine]:
    return {m.name: m for m in machines}


def raw_request(fake: FakeCompute, method: str, path: str, body: Any = None
                ) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(fake.url + "/compute/v1/" + path, data=data,
                                     method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# -- the state table ------------------------------------------------------------------------

def test_every_status_of_the_discovery_document_is_mapped() -> None:
    enum = discovery()["schemas"]["Instance"]["properties"]["status"]["enum"]
    assert set(enum) <= set(STATE_MAP), sorted(set(enum) - set(STATE_MAP))
    assert STATE_MAP["PROVISIONING"] is STATE_MAP["STAGING"] is MachineState.STARTING
    assert STATE_MAP["RUNNING"] is MachineState.RUNNING
    for ended in ("STOPPING", "SUSPENDING", "SUSPENDED", "TERMINATED"):
        assert STATE_MAP[ended] is MachineState.STOPPED
    assert STATE_MAP["REPAIRING"] is MachineState.UNKNOWN


#: `Instance.status` values documented by the Compute Engine API reference (Instance.Status)
#: and the instance life cycle page (PENDING: flex-start VMs waiting for capacity).
DOCUMENTED_STATUSES = ("PENDING", "PROVISIONING", "STAGING", "RUNNING", "PENDING_STOP",
                       "STOPPING", "SUSPENDING", "SUSPENDED", "STOPPED", "TERMINATED",
                       "DEPROVISIONING", "REPAIRING")


def test_every_documented_status_is_mapped_through_the_one_lookup() -> None:
    assert set(DOCUMENTED_STATUSES) == set(STATE_MAP)
    for status in DOCUMENTED_STATUSES:
        assert machine_state({"status": status}) is STATE_MAP[status]
    assert machine_state({"status": "SOMETHING_NEW"}) is MachineState.UNKNOWN
    assert machine_state({}) is MachineState.UNKNOWN


# -- create ---------------------------------------------------------------------------------

def test_create_standard_sends_user_data_labels_and_request_id(fake: FakeCompute) -> None:
    cloud = driver(fake, labels={"team": "lhcb-ops"}, network_tags=["workers"])
    made = cloud.create(spec("vcyclectl-cumulus-lhcb-aaaaaaaaaa"))

    assert made.state is MachineState.STARTING and made.processors == 4 and made.id
    body = fake.bodies[-1]
    assert body["labels"] == {TAG_SPACE: "cumulus_example_org", TAG_MACHINETYPE: "lhcb",
                              TAG_STATE_ID: STATE_ID, "vcyclectl-processors": "4",
                              "team": "lhcb-ops"}
    metadata = {i["key"]: i["value"] for i in body["metadata"]["items"]}
    assert metadata["user-data"].startswith("#cloud-config")
    assert metadata["vcyclectl-manager"] == "host1"
    assert body["scheduling"] == {"provisioningModel": "STANDARD"}
    assert body["disks"][0]["initializeParams"]["sourceImage"] == IMAGE
    assert body["tags"] == {"items": ["workers"]}
    inserts = [p for m, p in fake.calls if m == "compute.instances.insert"]
    assert inserts == [f"projects/{fake.project}/zones/{made.zone}/instances"]

    listed = by_name(cloud.list_machines())["vcyclectl-cumulus-lhcb-aaaaaaaaaa"]
    assert (listed.id, listed.machinetype, listed.processors, listed.flavor, listed.spot) == (
        made.id, "lhcb", 4, "e2-standard-4", False)
    assert listed.addresses and listed.created_at is not None


def test_create_spot_sets_provisioning_model_and_termination_action(fake: FakeCompute) -> None:
    cloud = driver(fake, provisioning_model="SPOT")
    made = cloud.create(spec("vcyclectl-cumulus-lhcb-spot000001"))
    assert made.spot
    assert fake.bodies[-1]["scheduling"] == {
        "provisioningModel": "SPOT", "instanceTerminationAction": "DELETE",
        "automaticRestart": False, "onHostMaintenance": "TERMINATE"}
    assert by_name(cloud.list_machines())[made.name].spot


def test_machinetype_options_override_the_space_block(fake: FakeCompute) -> None:
    spot = options(fake, provisioning_model="SPOT", image="family/workers")
    cloud = driver(fake, machinetypes={"atlas": spot})
    cloud.create(spec("vcyclectl-cumulus-atlas-bbbbbbbbbb", machinetype="atlas"))
    body = fake.bodies[-1]
    assert body["scheduling"]["provisioningModel"] == "SPOT"
    assert body["disks"][0]["initializeParams"]["sourceImage"] == (
        f"projects/{fake.project}/global/images/family/workers")


def test_spec_image_wins_over_the_block_and_short_names_are_expanded(
        fake: FakeCompute) -> None:
    cloud = driver(fake)
    cloud.create(spec("vcyclectl-cumulus-lhcb-cccccccccc", image="cernvm4"))
    assert fake.bodies[-1]["disks"][0]["initializeParams"]["sourceImage"] == (
        f"projects/{fake.project}/global/images/cernvm4")


def test_create_is_idempotent_on_the_name(fake: FakeCompute) -> None:
    first = driver(fake).create(spec("vcyclectl-cumulus-lhcb-dddddddddd"))
    # a retry after a lost response, from a new pass (new driver): same requestId
    second = driver(fake).create(spec("vcyclectl-cumulus-lhcb-dddddddddd"))
    assert second.id == first.id
    assert fake.instance_names() == ["vcyclectl-cumulus-lhcb-dddddddddd"]
    assert str(uuid.UUID(request_id("p", "z", "n"))) == request_id("p", "z", "n")


def test_create_finds_an_existing_vm_of_that_name(fake: FakeCompute) -> None:
    cloud = driver(fake)
    first = cloud.create(spec("vcyclectl-cumulus-lhcb-eeeeeeeeee"))
    fake.forget_request_ids()
    again = cloud.create(spec("vcyclectl-cumulus-lhcb-eeeeeeeeee"))
    assert again.id == first.id and again.machinetype == "lhcb"
    assert len(fake.instance_names()) == 1


def test_concurrent_creates_from_a_thread_pool(fake: FakeCompute) -> None:
    cloud = driver(fake)
    names = [f"vcyclectl-cumulus-lhcb-pool{i:06d}" for i in range(12)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        made = list(pool.map(lambda n: cloud.create(spec(n)), names))
    assert sorted(m.name for m in made) == sorted(names) == fake.instance_names()
    assert len({m.id for m in made}) == 12
    assert {m.zone for m in made} == set(ZONES)  # spread across the zones


def test_invalid_names_are_refused_before_any_call(fake: FakeCompute) -> None:
    cloud = driver(fake)
    for bad in ("Upper-case", "9starts-with-digit", "ends-with-dash-", "x" * 64, "dots.no"):
        with pytest.raises(Fatal, match="not a valid GCE instance name"):
            cloud.create(spec(bad))
    assert fake.count("compute.instances.insert") == 0


# -- list -----------------------------------------------------------------------------------

def test_list_spans_zones_and_pages_and_only_our_labels(fake: FakeCompute) -> None:
    ours = {TAG_SPACE: label_value(SPACE), TAG_STATE_ID: STATE_ID, TAG_MACHINETYPE: "lhcb",
            "vcyclectl-processors": "2"}
    fake.add_instances(7, ours, prefix="ours")
    fake.add_instances(4, dict(ours, **{TAG_SPACE: "other_example_org"}), prefix="space")
    fake.add_instances(3, dict(ours, **{TAG_STATE_ID: "another-state-dir"}), prefix="dir")
    fake.add_instances(2, {"unrelated": "yes"}, prefix="stranger")
    fake.reset_calls()

    machines = driver(fake, page_size=2).list_machines()

    assert sorted(m.name for m in machines) == [f"ours-{i:05d}" for i in range(7)]
    assert {m.zone for m in machines} == set(ZONES)
    assert all(m.state is MachineState.RUNNING and m.processors == 2 for m in machines)
    # one aggregatedList per page (7 of ours, 2 a page), nothing per instance or per zone
    assert fake.calls == [("compute.instances.aggregatedList",
                           f"projects/{fake.project}/aggregated/instances")] * 4


def test_the_fake_honours_the_label_filter_and_max_results(fake: FakeCompute) -> None:
    fake.add_instances(5, {"colour": "blue"}, prefix="blue")
    fake.add_instances(5, {"colour": "red"}, prefix="red")
    status, page = raw_request(
        fake, "GET", f"projects/{fake.project}/aggregated/instances?"
                     "filter=(labels.colour%20%3D%20%22red%22)&maxResults=3")
    assert status == 200
    names = [i["name"] for s in page["items"].values() for i in s.get("instances", [])]
    assert len(names) == 3 and all(n.startswith("red") for n in names)
    assert page["nextPageToken"]
    status, error = raw_request(fake, "GET", f"projects/{fake.project}/aggregated/instances?"
                                             "maxResults=501")
    assert status == 400 and error["error"]["errors"][0]["reason"] == "invalid"


def test_list_of_an_empty_space_is_one_call(fake: FakeCompute) -> None:
    assert driver(fake).list_machines() == []
    assert fake.count() == 1


def test_unreachable_zone_makes_the_listing_incomplete(fake: FakeCompute) -> None:
    driver(fake).create(spec("vcyclectl-cumulus-lhcb-ffffffffff"))
    fake.unreachable_zones.add("europe-west4-b")
    with pytest.raises(IncompleteListing, match="europe-west4-b"):
        driver(fake).list_machines()


def test_states_follow_the_instance_over_time(fake: FakeCompute) -> None:
    fake.provisioning_seconds = 0.4
    fake.staging_seconds = 0.2
    cloud = driver(fake)
    name = "vcyclectl-cumulus-lhcb-gggggggggg"
    cloud.create(spec(name))
    assert (fake.instance(name) or {}).get("status") == "PROVISIONING"
    assert by_name(cloud.list_machines())[name].state is MachineState.STARTING
    wait_for(lambda: (fake.instance(name) or {}).get("status") == "STAGING")
    assert by_name(cloud.list_machines())[name].state is MachineState.STARTING
    wait_for(lambda: (fake.instance(name) or {}).get("status") == "RUNNING")
    running = by_name(cloud.list_machines())[name]
    assert running.state is MachineState.RUNNING and running.started_at is not None
    fake.halt(name)
    stopped = by_name(cloud.list_machines())[name]
    assert stopped.state is MachineState.STOPPED and stopped.stopped_at is not None
    assert not stopped.preempted


# -- delete ---------------------------------------------------------------------------------

def test_delete_is_idempotent(fake: FakeCompute) -> None:
    cloud = driver(fake)
    made = cloud.create(spec("vcyclectl-cumulus-lhcb-hhhhhhhhhh"))
    cloud.delete(made)
    assert fake.instance_names() == []
    cloud.delete(made)  # 404 is success
    cloud.delete(replace(made, zone=None))  # zone unknown: tries each configured zone
    assert cloud.list_machines() == []


# -- quota, capacity, zone fallback ---------------------------------------------------------

def test_quota_exceeded_from_the_operation(fake: FakeCompute) -> None:
    fake.cpu_quota = 8
    cloud = driver(fake)
    cloud.create(spec("vcyclectl-cumulus-lhcb-quota00001"))
    cloud.create(spec("vcyclectl-cumulus-lhcb-quota00002"))
    with pytest.raises(QuotaExceeded, match="CPUS"):
        cloud.create(spec("vcyclectl-cumulus-lhcb-quota00003"))
    assert len(fake.instance_names()) == 2


def test_exhausted_zone_falls_back_to_the_next_and_is_skipped_for_the_pass(
        fake: FakeCompute) -> None:
    cloud = driver(fake)
    name = "vcyclectl-cumulus-lhcb-zone000001"
    first_zone, second_zone = zone_order(name, ZONES)[:2]
    fake.exhausted_zones.add(first_zone)
    made = cloud.create(spec(name))
    assert made.zone == second_zone
    # later creates in this pass never try the exhausted zone again
    others = [f"vcyclectl-cumulus-lhcb-zone{i:06d}" for i in range(2, 12)]
    for other in others:
        assert cloud.create(spec(other)).zone != first_zone
    tried = [p for m, p in fake.calls if m == "compute.instances.insert"]
    assert sum(f"/zones/{first_zone}/" in p for p in tried) == 1
    # a new pass (new driver) tries the zone again once it has capacity
    fake.exhausted_zones.clear()
    later = [f"vcyclectl-cumulus-lhcb-late{i:06d}" for i in range(12)]
    assert first_zone in {driver(fake).create(spec(n)).zone for n in later}


def test_insufficient_capacity_answered_by_insert_also_falls_back(fake: FakeCompute) -> None:
    name = "vcyclectl-cumulus-lhcb-capacity01"
    fake.fail_next(1, status=503, reason="insufficientCapacity",
                   method="compute.instances.insert")
    made = driver(fake).create(spec(name))
    assert made.zone == zone_order(name, ZONES)[1]
    assert fake.instance_names() == [name]


def test_every_zone_exhausted_is_transient(fake: FakeCompute) -> None:
    fake.exhausted_zones.update(ZONES)
    with pytest.raises(Transient, match="no capacity"):
        driver(fake).create(spec("vcyclectl-cumulus-lhcb-full000001"))
    assert fake.instance_names() == []


def test_a_passing_server_error_on_a_read_is_retried_with_backoff(fake: FakeCompute) -> None:
    cloud = driver(fake)
    fake.fail_next(2, status=503, reason="backendError")
    assert cloud.list_machines() == []
    assert fake.count("compute.instances.aggregatedList") == 3


def test_server_errors_and_throttling_are_transient(fake: FakeCompute) -> None:
    cloud = driver(fake, retry_seconds=0.5)
    fake.fail_next(1000, status=503, reason="backendError")
    with pytest.raises(Transient) as caught:
        cloud.list_machines()
    assert caught.value.retry_after and caught.value.retry_after > 0
    fake.clear_failures()
    fake.fail_next(1, status=429, reason="rateLimitExceeded",
                   method="compute.instances.insert")
    with pytest.raises(Transient):  # writes are left to the reconciler to retry
        cloud.create(spec("vcyclectl-cumulus-lhcb-throttled1"))
    fake.fail_next(1, status=500, reason="backendError", method="compute.instances.insert")
    with pytest.raises(Transient):
        cloud.create(spec("vcyclectl-cumulus-lhcb-throttled1"))
    fake.fail_next(1, status=403, reason="rateLimitExceeded")
    with pytest.raises(Transient):
        cloud.list_machines()
    assert cloud.list_machines() == []  # and the next call works
    assert cloud.create(spec("vcyclectl-cumulus-lhcb-throttled1")).state is (
        MachineState.STARTING)


def test_a_dead_endpoint_is_transient() -> None:
    dead = FakeCompute().start()
    url = dead.url
    dead.stop()
    cloud = GceCloud(CloudContext(space=SPACE, state_id=STATE_ID, state_dir=Path("/x"),
                                  options=GceOptions(project="p", zones=["europe-west4-a"],
                                                     credentials="anonymous",
                                                     api_endpoint=url,
                                                     request_timeout_seconds=2.0)))
    with pytest.raises(Transient, match="network error"):
        cloud.list_machines()


# -- pre-emption ----------------------------------------------------------------------------

def test_preempted_spot_vm_that_stops_is_marked_preempted(fake: FakeCompute) -> None:
    cloud = driver(fake, provisioning_model="SPOT", instance_termination_action="STOP")
    preempted = cloud.create(spec("vcyclectl-cumulus-lhcb-preempt001"))
    finished = cloud.create(spec("vcyclectl-cumulus-lhcb-finished01"))
    fake.preempt(preempted.name)
    fake.halt(finished.name)  # same status as a pre-emption, but the VM halted itself

    listed = by_name(cloud.list_machines())
    assert listed[preempted.name].state is MachineState.STOPPED
    assert listed[preempted.name].preempted and listed[preempted.name].spot
    assert listed[finished.name].state is MachineState.STOPPED
    assert not listed[finished.name].preempted
    assert fake.count("compute.globalOperations.aggregatedList") == 1


def test_preempted_spot_vm_that_gce_deleted_is_reported_gone_and_preempted(
        fake: FakeCompute) -> None:
    cloud = driver(fake, provisioning_model="SPOT")
    made = cloud.create(spec("vcyclectl-cumulus-lhcb-preempt002"))
    fake.preempt(made.name)
    assert fake.instance_names() == []

    listed = by_name(cloud.list_machines())
    gone = listed[made.name]
    assert (gone.state, gone.preempted, gone.id, gone.zone) == (
        MachineState.GONE, True, made.id, made.zone)
    assert not gone.state.is_live
    cloud.delete(gone)  # deleting what GCE already deleted is fine


def test_standard_spaces_do_not_pay_for_the_preemption_listing(fake: FakeCompute) -> None:
    driver(fake).create(spec("vcyclectl-cumulus-lhcb-standard01"))
    fake.reset_calls()
    driver(fake).list_machines()
    assert fake.count() == 1


# -- credentials ----------------------------------------------------------------------------

def _service_account_file(tmp_path: Path, email: str) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = tmp_path / "key.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "vcyclectl-test", "private_key_id": "k1",
        "private_key": pem, "client_email": email, "client_id": "1",
        "token_uri": "http://127.0.0.1:9/token"}))  # discard port: never used (self-signed JWT)
    return path


def test_service_account_key_file_is_used(fake: FakeCompute, tmp_path: Path) -> None:
    email = "vcyclectl@vcyclectl-test.iam.gserviceaccount.com"
    fake.require_auth = True
    cloud = driver(fake, credentials="default",
                   credentials_file=str(_service_account_file(tmp_path, email)))
    assert cloud.list_machines() == []


def test_revoked_credentials_are_fatal_and_name_the_project(fake: FakeCompute,
                                                            tmp_path: Path) -> None:
    email = "revoked@vcyclectl-test.iam.gserviceaccount.com"
    fake.revoked.add(email)
    key = _service_account_file(tmp_path, email)
    cloud = driver(fake, credentials="default", credentials_file=str(key))
    with pytest.raises(Fatal, match="vcyclectl-test.*401") as caught:
        cloud.list_machines()
    assert str(key) in str(caught.value)
    assert "PRIVATE KEY" not in str(caught.value)


def test_anonymous_caller_on_an_authenticated_endpoint_is_fatal(fake: FakeCompute) -> None:
    fake.require_auth = True
    with pytest.raises(Fatal, match="401"):
        driver(fake).create(spec("vcyclectl-cumulus-lhcb-anon000001"))


def test_forbidden_project_is_fatal_and_says_what_to_check(fake: FakeCompute) -> None:
    fake.denied_projects.add(fake.project)
    with pytest.raises(Fatal) as caught:
        driver(fake).list_machines()
    message = str(caught.value)
    assert fake.project in message and "403" in message
    assert "roles/compute.instanceAdmin.v1" in message


def test_missing_key_file_is_fatal(fake: FakeCompute, tmp_path: Path) -> None:
    with pytest.raises(Fatal, match="credentials"):
        driver(fake, credentials="default", credentials_file=str(tmp_path / "missing.json"))


# -- flavors --------------------------------------------------------------------------------

def test_flavors_in_configured_order_with_prices_asked_once(fake: FakeCompute) -> None:
    cloud = driver(fake, machine_types=["e2-standard-8", "e2-standard-2"],
                   price_per_hour={"e2-standard-8": 0.27})
    flavors = cloud.flavors()
    assert [(f.name, f.processors, f.memory_mb, f.price_per_hour) for f in flavors] == [
        ("e2-standard-8", 8, 32768, 0.27), ("e2-standard-2", 2, 8192, None)]
    assert cloud.flavors() == flavors
    assert fake.count("compute.machineTypes.get") == 2


def test_unknown_machine_type_is_fatal(fake: FakeCompute) -> None:
    with pytest.raises(Fatal, match="n9-huge"):
        driver(fake, machine_types=["n9-huge"]).flavors()


# -- the fake is faithful -------------------------------------------------------------------

def _minimal_instance(name: str = "raw-instance") -> dict[str, Any]:
    return {"name": name, "machineType": "zones/europe-west4-a/machineTypes/e2-standard-2",
            "disks": [{"boot": True, "initializeParams": {"sourceImage": IMAGE}}],
            "networkInterfaces": [{"network": "global/networks/default"}]}


@pytest.mark.parametrize("mutate, expected", [
    (lambda b: b.update(bogusField=1), 'Unknown name "bogusField"'),
    (lambda b: b["disks"][0]["initializeParams"].update(diskSizeGigabytes=10),
     'Unknown name "diskSizeGigabytes"'),
    (lambda b: b.update(canIpForward="yes"), "TYPE_BOOL"),
    (lambda b: b["disks"][0]["initializeParams"].update(diskSizeGb="ten"), "TYPE_INT64"),
    (lambda b: b.update(scheduling={"provisioningModel": "CHEAP"}), '"CHEAP"'),
    (lambda b: b.update(labels={"Space": "x"}), "resource.labels"),
    (lambda b: b.update(labels={"space": "a.b"}), "resource.labels"),
    (lambda b: b.update(name="Not_A_Name"), "resource.name"),
    (lambda b: b.update(metadata={"items": [{"key": "user-data", "value": 1}]}), "TYPE_STRING"),
    (lambda b: b.update(networkInterfaces={"network": "default"}), "network_interfaces"),
])
def test_the_fake_rejects_bodies_the_discovery_document_forbids(
        fake: FakeCompute, mutate: Callable[[dict[str, Any]], None], expected: str) -> None:
    body = _minimal_instance()
    mutate(body)
    status, error = raw_request(fake, "POST",
                                f"projects/{fake.project}/zones/europe-west4-a/instances", body)
    assert status == 400, error
    assert error["error"]["code"] == 400 and error["error"]["status"] == "INVALID_ARGUMENT"
    assert error["error"]["errors"][0]["reason"] == "invalid"
    assert expected in error["error"]["message"]
    assert fake.instance_names() == []


def test_the_fake_accepts_a_valid_body_and_checks_request_ids(fake: FakeCompute) -> None:
    path = f"projects/{fake.project}/zones/europe-west4-a/instances"
    status, error = raw_request(fake, "POST", path + "?requestId=not-a-uuid",
                                _minimal_instance())
    assert status == 400 and "requestId" in error["error"]["message"]
    status, error = raw_request(fake, "POST", path + "?unknownParam=1", _minimal_instance())
    assert status == 400 and "unknownParam" in error["error"]["message"]
    status, op = raw_request(fake, "POST", path + f"?requestId={uuid.uuid4()}",
                             _minimal_instance())
    assert status == 200 and op["kind"] == "compute#operation" and op["id"].isdigit()
    assert fake.instance_names() == ["raw-instance"]


def test_the_fake_rejects_filters_it_cannot_parse() -> None:
    assert parse_filter('(labels.a = "x") (labels.b = "y")')({"labels": {"a": "x", "b": "y"}})
    assert not parse_filter('labels.a = "x" AND labels.b = "y"')({"labels": {"a": "x"}})
    assert parse_filter('(name = "a") OR (name = "b")')({"name": "b"})
    assert parse_filter("name ne .*-tmp")({"name": "keep"})
    from gce_fake import ApiError

    for bad in ('(labels.a = "x"', "labels.a =", "= x"):
        with pytest.raises(ApiError):
            parse_filter(bad)


# -- options and naming ---------------------------------------------------------------------

@settings(max_examples=2 * settings().max_examples, deadline=None)
@given(st.from_regex(r"[a-z0-9][a-z0-9.-]{0,120}", fullmatch=True))
def test_label_values_are_always_valid_gce_label_values(name: str) -> None:
    encoded = label_value(name)
    assert LABEL_VALUE.fullmatch(encoded)
    assert label_value(name) == encoded  # stable


def test_label_encoding_is_documented_behaviour() -> None:
    assert label_value("cumulus.example.org") == "cumulus_example_org"
    assert label_value("lhcb") == "lhcb"
    long_a, long_b = "a" * 70 + ".x", "a" * 70 + ".y"
    assert label_value(long_a) != label_value(long_b)
    assert len(label_value(long_a)) == 63


def test_options_problems() -> None:
    assert GceOptions(project="p", zones=["europe-west4-a"]).problems() == []
    keys = {key for key, _ in GceOptions().problems()}
    assert {"project", "zones"} <= keys
    assert ("credentials", ) == tuple(k for k, _ in GceOptions(
        project="p", zones=["europe-west4-a"], credentials="anonymous").problems())
    bad = GceOptions(project="p", zones=["europe-west4-a", "nowhere"],
                     labels={"vcyclectl-space": "x", "Team": "y", "ok": "Bad.Value"},
                     price_per_hour={"e2-standard-9": 1.0}, machine_types=["e2-standard-4"])
    messages = " ".join(m for _, m in bad.problems())
    for fragment in ("nowhere", "set by vcyclectl", "'Team'", "'Bad.Value'", "e2-standard-9"):
        assert fragment in messages


def test_driver_refuses_a_block_with_problems(fake: FakeCompute) -> None:
    with pytest.raises(Fatal, match="zones"):
        driver(fake, zones=[])


def test_options_module_imports_no_google_module() -> None:
    code = ("import sys, vcyclectl.clouds.gce.options; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('google', 'googleapiclient', 'grpc', 'proto', 'requests')); "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_states_module_imports_no_google_module() -> None:
    code = ("import sys, vcyclectl.clouds.gce.states; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('google', 'googleapiclient', 'grpc', 'proto', 'requests')); "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zone_order_spreads_and_is_stable() -> None:
    firsts = [zone_order(f"vcyclectl-x-lhcb-{i:010d}", ZONES)[0] for i in range(60)]
    assert set(firsts) == set(ZONES)
    assert zone_order("abc", ZONES) == zone_order("abc", ZONES)
    assert sorted(zone_order("abc", ZONES)) == sorted(ZONES)


def test_clients_are_per_thread(fake: FakeCompute) -> None:
    cloud = driver(fake)
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(cloud._clients().instances))
    thread.start()
    thread.join()
    assert seen[0] is not cloud._clients().instances
