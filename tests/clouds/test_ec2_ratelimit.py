"""Real reconcile passes against moto make every EC2 request through the account's token
buckets (vcyclectl.clouds.ratelimit): counted grants on a fake clock, and calls not started
when the configured rate could only send them after the pass's deadline. No timing
assertions: the fake clock says how long the buckets made the pass wait."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from moto_server import dummy_aws_credentials, register_image
from tests.conftest import FakeClock
from vcyclectl import config as config_module
from vcyclectl.clouds.ec2 import throttle
from vcyclectl.clouds.ec2.options import Ec2Options
from vcyclectl.clouds.ratelimit import REGISTRY
from vcyclectl.reconcile import reconcile_space
from vcyclectl.state.store import StateDir

SPACE = "aws.example.org"
REGION = "us-east-1"


@pytest.fixture
def ec2_worker(ec2: Any) -> Any:
    """`ec2` with the image the passes here launch."""
    register_image(ec2, "rl-worker")
    return ec2


def load(tmp_path: Path, spaces: str) -> tuple[Any, str]:
    """The config of these spaces (YAML under `spaces:`), and its fresh state directory's id."""
    path = tmp_path / "vcyclectl.yaml"
    path.write_text(f"""\
state_dir: {tmp_path / 'state'}
defaults: {{backoff_seconds: 0, fizzle_seconds: 0, min_pass_interval_seconds: 0,
            max_wallclock_seconds: 3600}}
spaces:
{spaces}""")
    cfg = config_module.load(path)
    return cfg, StateDir(cfg.state_dir).open(create=True)


def run_pass(tmp_path: Path, endpoint: str, creates: int, limits: str) -> Any:
    cfg, state_id = load(tmp_path, f"""\
  {SPACE}:
    cloud: ec2
    processors_limit: {2 * creates}
    max_starting_processors: {2 * creates}
    max_creates_per_pass: {creates}
    concurrency: 4
    ec2: {{region: {REGION}, endpoint_url: "{endpoint}", image: rl-worker,
          image_owners: [self], instance_types: [m5.large], max_attempts: 1, {limits}}}
    machinetypes:
      w: {{target_share: 1}}
""")
    return reconcile_space(cfg, cfg.spaces[SPACE], state_id, force=True)


def instances(ec2: Any) -> int:
    return sum(len(r["Instances"]) for r in ec2.describe_instances()["Reservations"])


def run_instances_bucket() -> Any:
    [found] = [b for k, b in REGISTRY.snapshot().items()
               if k[0] == "ec2" and k[-2:] == ("request", "RunInstances")]
    return found


def test_a_pass_takes_one_token_per_request_and_waits_at_the_configured_rate(
        tmp_path: Path, endpoint: str, ec2_worker: Any, ratelimit_clock: FakeClock) -> None:
    started = ratelimit_clock.now
    result = run_pass(tmp_path, endpoint, 8, "request_bucket_capacity: {RunInstances: 2}, "
                                             "request_bucket_refill: {RunInstances: 0.5}")
    assert result.outcome == "done", result.summary()
    assert result.created == 8 == instances(ec2_worker)
    bucket = run_instances_bucket()
    assert bucket.granted == 8 and bucket.limit.burst == 2
    # 2 at once, then one every 2 s: the threads slept at least 12 s of bucket time
    assert ratelimit_clock.now - started >= (8 - 2) / 0.5
    granted = {k[-1]: b.granted for k, b in REGISTRY.snapshot().items() if k[0] == "ec2"}
    assert granted["DescribeInstances"] >= 1 and granted["DescribeImages"] == 1
    resource = [b for k, b in REGISTRY.snapshot().items() if k[-2:] == ("resource",
                                                                        "RunInstances")]
    assert resource[0].granted == 8  # one instance per launch


def test_creates_the_rate_cannot_send_before_the_deadline_are_not_started(
        tmp_path: Path, endpoint: str, ec2_worker: Any) -> None:
    REGISTRY.reset()  # the real clock: the deadline is real, and nothing has to sleep
    result = run_pass(tmp_path, endpoint, 6, "request_bucket_capacity: {RunInstances: 2}, "
                                             "request_bucket_refill: {RunInstances: 0.0001}")
    assert result.created == 2 and instances(ec2_worker) == 2
    assert result.not_started == 4 and result.deadline_passed
    assert result.outcome == "failed" and "not started" in result.reason
    assert run_instances_bucket().granted == 2


def test_spaces_of_one_account_reconciled_in_turn_share_its_buckets(
        tmp_path: Path, endpoint: str, ec2_worker: Any, ratelimit_clock: FakeClock) -> None:
    """Two spaces, same credentials, region and endpoint: one bucket, as EC2 has one."""
    block = (f'{{region: {REGION}, endpoint_url: "{endpoint}", image: rl-worker, '
             "image_owners: [self], instance_types: [m5.large], max_attempts: 1, "
             "request_bucket_capacity: {RunInstances: 2}, "
             "request_bucket_refill: {RunInstances: 0.5}}")
    spaces = "".join(f"""\
  {name}:
    cloud: ec2
    processors_limit: 6
    max_starting_processors: 6
    concurrency: 3
    ec2: {block}
    machinetypes:
      w: {{target_share: 1}}
""" for name in ("one.example.org", "two.example.org"))
    cfg, state_id = load(tmp_path, spaces)
    started = ratelimit_clock.now
    for space in cfg.spaces.values():  # one after another, as `vcyclectl reconcile` does
        result = reconcile_space(cfg, space, state_id, force=True)
        assert result.outcome == "done" and result.created == 3, result.summary()
    assert instances(ec2_worker) == 6
    assert run_instances_bucket().granted == 6  # one bucket for both spaces
    # 2 at once then one each 2 s for the account: 8 s, not 2 x 2 s as per-space buckets
    assert ratelimit_clock.now - started >= (6 - 2) / 0.5


@pytest.fixture
def throttling_ec2() -> Iterator[str]:
    """An endpoint that answers every request as EC2 does when its bucket is empty."""
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = (b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>"
                    b"Request limit exceeded.</Message></Error></Errors>"
                    b"<RequestID>r</RequestID></Response>")
            self.send_response(503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_request_limit_exceeded_slows_the_accounts_bucket(
        throttling_ec2: str, monkeypatch: pytest.MonkeyPatch,
        ratelimit_clock: FakeClock) -> None:
    dummy_aws_credentials(monkeypatch)
    from botocore.config import Config

    client = boto3.client("ec2", region_name=REGION, endpoint_url=throttling_ec2,
                          config=Config(retries={"mode": "standard", "total_max_attempts": 2}))
    opts = Ec2Options(region=REGION)
    account = throttle.install(client, opts)
    assert account is not None
    with pytest.raises(Exception, match="RequestLimitExceeded"):
        client.terminate_instances(InstanceIds=["i-1"])
    bucket = REGISTRY.snapshot()[account + ("request", "TerminateInstances")]
    assert bucket.throttled_count == 2 and bucket.granted == 2  # botocore retried once
    before = ratelimit_clock.now
    assert bucket.reserve() >= 1.0  # paused: the next request waits
    assert ratelimit_clock.now == before
    assert throttle.install(client, Ec2Options(rate_limits=False)) is None
