"""The OpenStack driver's pure parts, without a control plane: the state table, the error
translator, request bodies and tags, and paging links.

tests/clouds/test_openstack.py checks the driver end to end against real Nova; these check
each rule in its one home, in milliseconds, on inputs a healthy test cloud rarely produces
(a 413 quota refusal, a 429 with Retry-After, a status from a newer Nova).
"""

from __future__ import annotations

import base64
from types import SimpleNamespace
from typing import Any

import pytest
import requests as http
from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as sdk_exc

from vcyclectl.clouds.contract import TAG_MACHINETYPE, TAG_SPACE, TAG_STATE_ID
from vcyclectl.clouds.openstack import requests, servers
from vcyclectl.clouds.openstack.errors import ErrorTranslator
from vcyclectl.clouds.openstack.options import OpenStackOptions
from vcyclectl.clouds.openstack.states import STATE_MAP, machine_state
from vcyclectl.core.model import Flavor, MachineSpec, MachineState
from vcyclectl.errors import CloudError, Fatal, IncompleteListing, QuotaExceeded, Transient

#: Every server status in the Compute API reference (api-guide "Server concepts", "Server
#: status values"; api-ref "Show Server Details", `status`).
NOVA_STATUSES = ["ACTIVE", "BUILD", "DELETED", "ERROR", "HARD_REBOOT", "MIGRATING", "PASSWORD",
                 "PAUSED", "REBOOT", "REBUILD", "RESCUE", "RESIZE", "REVERT_RESIZE",
                 "SHELVED", "SHELVED_OFFLOADED", "SHUTOFF", "SOFT_DELETED", "SUSPENDED",
                 "UNKNOWN", "VERIFY_RESIZE"]


# -- states ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", NOVA_STATUSES)
def test_every_documented_nova_status_is_mapped(status: str) -> None:
    assert status in STATE_MAP
    assert machine_state(status, None) is STATE_MAP[status]


def test_state_table_says_what_the_docs_say() -> None:
    assert machine_state("BUILD", None) is MachineState.STARTING
    assert machine_state("ACTIVE", None) is MachineState.RUNNING
    assert machine_state("SHUTOFF", None) is MachineState.STOPPED
    assert machine_state("ERROR", None) is MachineState.FAILED
    assert machine_state("SOFT_DELETED", None) is MachineState.GONE


def test_unlisted_and_missing_statuses_are_unknown() -> None:
    assert machine_state("SOMETHING_NEWER", None) is MachineState.UNKNOWN
    assert machine_state(None, None) is MachineState.UNKNOWN
    assert machine_state("active", None) is MachineState.RUNNING


def test_a_deleting_task_wins_unless_the_server_is_gone() -> None:
    assert machine_state("ACTIVE", "deleting") is MachineState.DELETING
    assert machine_state("ERROR", "soft-deleting") is MachineState.DELETING
    assert machine_state("DELETED", "deleting") is MachineState.GONE
    assert machine_state("ACTIVE", "powering-off") is MachineState.RUNNING


# -- errors ---------------------------------------------------------------------------------


def translate(exc: BaseException, *, listing: bool = False, secrets: tuple[str, ...] = (),
              options: OpenStackOptions | None = None) -> CloudError:
    translator = ErrorTranslator("os.unit", options or OpenStackOptions(auth_url="http://k/v3"))
    translator.secrets = secrets
    with pytest.raises(CloudError) as caught:
        with translator.translated("doing a thing", listing=listing):
            raise exc
    error = caught.value
    assert "space os.unit: doing a thing" in str(error)
    assert error.__suppress_context__ or error is exc
    return error


def http_error(status: int, message: str = "Error", headers: dict[str, str] | None = None
               ) -> sdk_exc.HttpException:
    response = http.Response()
    response.status_code = status
    response.headers.update(headers or {})
    return sdk_exc.HttpException(message=message, response=response)


@pytest.mark.parametrize("status", [403, 413])
def test_quota_refusal_is_quota_exceeded(status: int) -> None:
    error = translate(http_error(status, "Quota exceeded for cores: Requested 2, but already "
                                         "used 2 of 2 cores"))
    assert type(error) is QuotaExceeded


@pytest.mark.parametrize("status, kind", [
    (401, Fatal), (403, Fatal), (400, Fatal), (404, Fatal),
    (409, Transient), (500, Transient), (503, Transient), (429, Transient)])
def test_http_status_decides_the_error(status: int, kind: type[CloudError]) -> None:
    assert type(translate(http_error(status))) is kind


def test_retryable_failures_of_a_listing_are_incomplete_listings() -> None:
    assert type(translate(http_error(503), listing=True)) is IncompleteListing
    assert type(translate(ksa_exc.ConnectFailure("refused"), listing=True)) is IncompleteListing
    assert type(translate(http_error(401), listing=True)) is Fatal


def test_rate_limit_carries_retry_after() -> None:
    error = translate(http_error(429, headers={"Retry-After": "7"}))
    assert isinstance(error, Transient) and error.retry_after == 7.0
    error = translate(http_error(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    assert isinstance(error, Transient) and error.retry_after is None


@pytest.mark.parametrize("exc, kind, says", [
    (ksa_exc.Unauthorized("nope"), Fatal, "credentials"),
    (ksa_exc.SSLError("bad cert"), Fatal, "cacert"),
    (ksa_exc.ConnectFailure("refused"), Transient, "ConnectFailure"),
    (ksa_exc.ConnectTimeout("slow"), Transient, "ConnectTimeout"),
    (ksa_exc.EndpointNotFound("no compute"), Fatal, "region"),
    (sdk_exc.ConfigException("no cloud"), Fatal, "clouds.yaml"),
    (sdk_exc.SDKException("odd"), Transient, "SDKException"),
    (ksa_exc.ClientException("odd"), Transient, "ClientException"),
])
def test_sdk_exceptions_become_the_taxonomy(exc: BaseException, kind: type[CloudError],
                                            says: str) -> None:
    error = translate(exc)
    assert type(error) is kind and says in str(error)


def test_refused_credentials_say_what_to_check() -> None:
    appcred = OpenStackOptions(auth_url="http://k/v3", application_credential_id="abc")
    assert "application credential" in str(translate(ksa_exc.Unauthorized(), options=appcred))
    entry = OpenStackOptions(cloud="cumulus")
    assert "'cumulus'" in str(translate(http_error(401), options=entry))


def test_cloud_errors_pass_unchanged() -> None:
    quota = QuotaExceeded("already ours")
    translator = ErrorTranslator("os.unit", OpenStackOptions())
    with pytest.raises(QuotaExceeded) as caught:
        with translator.translated("x"):
            raise quota
    assert caught.value is quota


def test_messages_never_carry_a_secret() -> None:
    error = translate(http_error(400, "bad request for s3cr3t-value\n  and more"),
                      secrets=("s3cr3t-value",))
    assert "s3cr3t-value" not in str(error) and "***" in str(error)
    assert "\n" not in str(error)


# -- requests -------------------------------------------------------------------------------


def make_spec(**overrides: Any) -> MachineSpec:
    values: dict[str, Any] = dict(
        name="os-unit-abc.1", space="os.unit", machinetype="lhcb",
        flavor=Flavor(name="m1.small", processors=2), image="cernvm4",
        user_data="#!/bin/sh\n", state_id="state1", metadata={"owner": "tests"})
    values.update(overrides)
    return MachineSpec(**values)


def test_tags_are_short_and_hashed_when_they_must_be() -> None:
    assert requests.tag(TAG_SPACE, "os.unit") == "vcyclectl-space=os.unit"
    long = requests.tag(TAG_SPACE, "x" * 80)
    assert len(long) <= requests.TAG_MAX and long.startswith("vcyclectl-space=sha256:")
    assert requests.tag(TAG_SPACE, "a/b") != "vcyclectl-space=a/b"
    assert requests.tag(TAG_SPACE, "a,b").startswith("vcyclectl-space=sha256:")
    assert requests.filter_tags("state1", "x" * 80)[1] == long


def test_create_body_carries_everything_and_our_metadata_wins() -> None:
    options = OpenStackOptions(
        cloud="c", security_groups=["default", "ssh"], key_name="ops",
        metadata={"site": "here", TAG_SPACE: "forged", "k" * 300: "v" * 300})
    body = requests.server_create(make_spec(metadata={"owner": "tests", TAG_STATE_ID: "forged"}),
                                  options, image_id="img-id", flavor_id="fl-id",
                                  networks=[{"uuid": "net-id"}], zone="az2")
    assert body["name"] == "os-unit-abc.1"
    assert body["image_id"] == "img-id" and body["flavor_id"] == "fl-id"
    assert base64.b64decode(body["user_data"]).decode() == "#!/bin/sh\n"
    metadata = body["metadata"]
    assert metadata[TAG_SPACE] == "os.unit" and metadata[TAG_STATE_ID] == "state1"
    assert metadata[TAG_MACHINETYPE] == "lhcb"
    assert metadata["site"] == "here" and metadata["owner"] == "tests"
    assert metadata["k" * 255] == "v" * 255
    assert body["tags"] == ["vcyclectl-state-id=state1", "vcyclectl-space=os.unit",
                            "vcyclectl-machinetype=lhcb"]
    assert body["networks"] == [{"uuid": "net-id"}]
    assert body["security_groups"] == [{"name": "default"}, {"name": "ssh"}]
    assert body["key_name"] == "ops" and body["availability_zone"] == "az2"


def test_create_body_leaves_out_what_is_not_configured() -> None:
    body = requests.server_create(make_spec(), OpenStackOptions(cloud="c"), image_id="i",
                                  flavor_id="f", networks="auto", zone=None)
    assert body["networks"] == "auto"
    assert not {"security_groups", "key_name", "availability_zone"} & set(body)


def test_queries() -> None:
    tags = requests.filter_tags("state1", "os.unit")
    assert requests.listing_query(tags, None) == {
        "tags": "vcyclectl-state-id=state1,vcyclectl-space=os.unit"}
    assert requests.listing_query(tags, 5)["limit"] == 5
    assert requests.name_query("os-unit-abc.1", tags)["name"] == "^os-unit-abc\\.1$"


# -- servers --------------------------------------------------------------------------------


def test_paging_follows_only_the_next_links_query() -> None:
    body = {"servers": [], "servers_links": [
        {"rel": "next", "href": "http://wrong-host:8774/v2.1/servers/detail?"
                                "limit=5&tags=a%3D1&marker=abc"}]}
    assert servers.next_page_query(body) == {"limit": "5", "tags": "a=1", "marker": "abc"}
    assert servers.next_page_query({"servers": []}) is None
    assert servers.next_page_query({"servers_links": [{"rel": "prev", "href": "x?a=1"}]}) is None


def fake_server(**fields: Any) -> Any:
    values: dict[str, Any] = dict(
        id="uuid-1", name="os-unit-abc.1", status="ERROR", task_state=None,
        flavor={"original_name": "m1.small", "vcpus": 2}, fault=None,
        metadata={TAG_STATE_ID: "state1", TAG_SPACE: "os.unit", TAG_MACHINETYPE: "lhcb"},
        addresses={"net": [{"addr": "10.0.0.5"}, {"addr": None}]},
        created_at="2024-05-01T10:00:00Z", launched_at="2024-05-01T10:00:30.123456",
        terminated_at=None, availability_zone="")
    values.update(fields)
    raw = {**values, "user_data": "c2VjcmV0", "adminPass": "pw"}
    return SimpleNamespace(**values, to_dict=lambda computed=True: dict(raw))


def test_a_server_becomes_a_machine() -> None:
    machine = servers.to_machine(fake_server(), "os.unit", processors=2)
    assert machine.id == "uuid-1" and machine.machinetype == "lhcb"
    assert machine.state is MachineState.FAILED
    assert machine.state_reason == "server in ERROR state"
    assert machine.flavor == "m1.small" and machine.processors == 2
    assert machine.addresses == ("10.0.0.5",) and machine.zone is None
    assert machine.created_at == 1714557600.0
    assert machine.started_at == pytest.approx(1714557630.123456)
    assert "user_data" not in machine.raw and "adminPass" not in machine.raw
    faulted = servers.to_machine(fake_server(fault={"message": " No valid host was found. "}),
                                 "os.unit", processors=2)
    assert faulted.state_reason == "No valid host was found."
    running = servers.to_machine(fake_server(status="ACTIVE"), "os.unit", processors=2)
    assert running.state is MachineState.RUNNING and running.state_reason is None


def test_metadata_must_agree_with_the_tags() -> None:
    assert servers.is_ours(fake_server(), "state1", "os.unit")
    assert not servers.is_ours(fake_server(), "state2", "os.unit")
    assert not servers.is_ours(fake_server(metadata=None), "state1", "os.unit")


def test_nova_timestamps() -> None:
    assert servers.parse_time(None) is None and servers.parse_time("not a time") is None
    assert servers.parse_time("2024-05-01T10:00:00Z") == servers.parse_time(
        "2024-05-01T10:00:00")
