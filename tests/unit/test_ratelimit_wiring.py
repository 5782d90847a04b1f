"""Which buckets each driver's requests draw on (keys, documented sizes, overrides), and the
HTTP adapter the GCE and OpenStack drivers put in front of their sessions, against a real
loopback HTTP server. The OpenStack driver is covered here only (its control plane is shared
and its tests are not run by this change)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.conftest import FakeClock
from vcyclectl.clouds.ec2 import limits as ec2_limits
from vcyclectl.clouds.ec2 import throttle as ec2_throttle
from vcyclectl.clouds.ec2.options import Ec2Options
from vcyclectl.clouds.gce import limits as gce_limits
from vcyclectl.clouds.openstack import throttle as os_throttle
from vcyclectl.clouds.openstack.options import OpenStackOptions
from vcyclectl.clouds.ratelimit import REGISTRY, Limit


# -- EC2 ----------------------------------------------------------------------------------

def test_ec2_actions_draw_on_the_documented_buckets() -> None:
    opts = Ec2Options(region="eu-west-1")
    account = ec2_throttle.account_key(opts, "eu-west-1", None)
    run = ec2_throttle.draws(account, "RunInstances", b"Action=RunInstances&MaxCount=3", opts)
    assert run == [(account + ("request", "RunInstances"), Limit(5, 2), 1.0),
                   (account + ("resource", "RunInstances"), Limit(1000, 2), 3.0)]
    term = ec2_throttle.draws(account, "TerminateInstances",
                              "Action=TerminateInstances&InstanceId.1=i-1&InstanceId.2=i-2", opts)
    assert term[0][1] == Limit(100, 5) and term[1] == (
        account + ("resource", "TerminateInstances"), Limit(1000, 20), 2.0)
    assert ec2_throttle.draws(account, "DescribeInstances", b"", opts) == [
        (account + ("request", "DescribeInstances"), Limit(100, 20), 1.0)]
    assert ec2_limits.request_bucket("CreateTags") == ec2_limits.MUTATING
    assert ec2_limits.request_bucket("DescribeRegions") == ec2_limits.NON_MUTATING


def test_ec2_block_overrides_replace_the_documented_sizes() -> None:
    opts = Ec2Options(request_bucket_capacity={"RunInstances": 15},
                      request_bucket_refill={"RunInstances": 6},
                      resource_bucket_refill={"RunInstances": 0})
    account = ec2_throttle.account_key(opts, "us-east-1", None)
    run = ec2_throttle.draws(account, "RunInstances", b"MaxCount=1", opts)
    assert run[0][1] == Limit(15, 6)
    assert run[1][1].unlimited


def test_ec2_account_key_names_credentials_by_digest_and_separates_regions() -> None:
    keyed = Ec2Options(access_key_id="AKIAEXAMPLE", secret_access_key="s3cret")
    key = ec2_throttle.account_key(keyed, "us-east-1", "https://ec2.example")
    assert "AKIAEXAMPLE" not in repr(key) and "s3cret" not in repr(key)
    assert key != ec2_throttle.account_key(keyed, "eu-west-1", "https://ec2.example")
    assert key != ec2_throttle.account_key(Ec2Options(profile="other"), "us-east-1",
                                           "https://ec2.example")
    assert key == ec2_throttle.account_key(
        Ec2Options(access_key_id="AKIAEXAMPLE", secret_access_key="s3cret", region="x"),
        "us-east-1", "https://ec2.example")


def test_ec2_block_rejects_unknown_bucket_names() -> None:
    problems = dict(Ec2Options(resource_bucket_refill={"DescribeImages": 1},
                               request_bucket_capacity={"run instances": 1}).problems())
    assert "resource_bucket_refill" in problems and "request_bucket_capacity" in problems


# -- GCE ----------------------------------------------------------------------------------

BASE = "https://compute.googleapis.com/compute/v1/projects/p1"


@pytest.mark.parametrize(("method", "url", "group"), [
    ("GET", f"{BASE}/aggregated/instances?filter=x", ("reads", "")),
    ("GET", f"{BASE}/aggregated/operations", ("reads", "")),
    ("POST", f"{BASE}/zones/europe-west4-a/instances?requestId=1",
     ("writes_per_region", "europe-west4")),
    ("DELETE", f"{BASE}/zones/europe-west4-b/instances/vm", ("writes_per_region", "europe-west4")),
    ("POST", f"{BASE}/zones/us-central1-f/operations/op-1/wait",
     ("reads_per_region", "us-central1")),
    ("GET", f"{BASE}/zones/us-central1-f/machineTypes/n2-standard-4",
     ("reads_per_region", "us-central1")),
    ("GET", f"{BASE}/regions/us-east1/operations/x", ("reads_per_region", "us-east1")),
])
def test_gce_requests_count_against_their_quota_group(method: str, url: str,
                                                      group: tuple[str, str]) -> None:
    assert gce_limits.quota_group(method, url) == group


def test_gce_bucket_never_passes_the_minutes_quota_in_any_window() -> None:
    limit = gce_limits.per_minute(1500)
    assert limit.burst + 60 * limit.rate == pytest.approx(1500)
    assert gce_limits.per_minute(0).unlimited
    tiny = gce_limits.per_minute(1)
    assert not tiny.unlimited and tiny.burst + 60 * tiny.rate < 2  # one request a window
    key, writes = gce_limits.draws("p1", "POST", f"{BASE}/zones/a-b-c/instances", 600, 60)[0]
    assert key == ("gce", "p1", "writes_per_region", "a-b")
    assert writes.burst + 60 * writes.rate == pytest.approx(60)


# -- OpenStack, and the HTTP adapter ------------------------------------------------------

@pytest.fixture
def http_server() -> Iterator[tuple[str, list[int]]]:
    """Answers 200, or 429 with Retry-After: 4 for paths under /busy."""
    hits: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            busy = self.path.startswith("/busy")
            hits.append(429 if busy else 200)
            self.send_response(429 if busy else 200)
            if busy:
                self.send_header("Retry-After", "4")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def test_openstack_key_is_keystone_project_and_region_without_secrets() -> None:
    auth = {"auth_url": "https://keystone.example:5000/v3", "project_name": "atlas",
            "project_domain_name": "Default", "password": "hunter2"}
    key = os_throttle.account_key(auth, "RegionOne")
    assert key == ("openstack", "https://keystone.example:5000/v3", "Default/atlas", "RegionOne")
    assert os_throttle.account_key({"auth_url": "u", "project_id": "abc"}, None) == (
        "openstack", "u", "abc", "")


def test_openstack_session_takes_a_token_per_request_and_obeys_retry_after(
        http_server: tuple[str, list[int]], ratelimit_clock: FakeClock) -> None:
    url, hits = http_server
    options = OpenStackOptions(auth_url="https://keystone.example/v3", api_burst=2,
                               api_requests_per_second=1.0)
    key = ("openstack", "k", "p", "r")
    with requests.Session() as session:
        os_throttle.install(session, key, options)
        os_throttle.install(session, key, options)  # a second install does not stack
        started = ratelimit_clock.now
        for _ in range(4):
            assert session.get(f"{url}/servers").status_code == 200
        # burst 2, then 1/s: the 3rd and 4th waited 1 s each on the fake clock
        assert ratelimit_clock.now - started == pytest.approx(2.0)
        assert session.get(f"{url}/busy").status_code == 429
        waited = ratelimit_clock.now
        session.get(f"{url}/servers")
        # the 429's Retry-After (4 s) paused the bucket, from when it was answered
        assert ratelimit_clock.now - waited == pytest.approx(4.0)
    bucket = REGISTRY.snapshot()[key]
    assert bucket.granted == 6 and bucket.throttled_count == 1
    assert hits == [200, 200, 200, 200, 429, 200]


def test_openstack_413_is_a_rate_limit_only_with_retry_after() -> None:
    def answer(status: int, **headers: str) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response.headers.update(headers)
        return response

    assert os_throttle.is_throttled(answer(429))
    assert os_throttle.is_throttled(answer(413, **{"Retry-After": "10"}))
    assert not os_throttle.is_throttled(answer(413))  # Nova's "Quota exceeded"
    assert not os_throttle.is_throttled(answer(403))
