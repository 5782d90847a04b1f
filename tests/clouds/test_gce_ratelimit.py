"""The GCE driver's requests go through the project's quota buckets
(vcyclectl.clouds.ratelimit, gce/limits.py), against the fake Compute API over HTTP: grants
counted per quota group on a fake clock, and a `rateLimitExceeded` answer slows the bucket.
No timing assertions: the fake clock says how long the buckets made the threads wait."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from gce_fake import FakeCompute  # noqa: E402
from test_gce import ZONES, driver, spec  # noqa: E402

from tests.conftest import FakeClock  # noqa: E402
from vcyclectl.clouds.ratelimit import REGISTRY, NoTokenBeforeDeadline  # noqa: E402
from vcyclectl.clouds.retries import with_retries  # noqa: E402
from vcyclectl.errors import Transient  # noqa: E402


@pytest.fixture
def fake() -> Iterator[FakeCompute]:
    server = FakeCompute(zones=tuple(ZONES)).start()
    try:
        yield server
    finally:
        server.stop()


def granted(project: str) -> dict[tuple[str, ...], float]:
    return {k[2:]: b.granted for k, b in REGISTRY.snapshot().items()
            if k[:2] == ("gce", project)}


def test_creates_from_many_threads_share_the_projects_write_quota(
        fake: FakeCompute, ratelimit_clock: FakeClock) -> None:
    cloud = driver(fake, write_requests_per_minute=12, read_requests_per_minute=600)
    started = ratelimit_clock.now
    with ThreadPoolExecutor(max_workers=4) as pool:
        made = list(pool.map(lambda i: cloud.create(spec(f"vcyclectl-rl-w-{i:010d}")),
                             range(6)))
    assert len(made) == 6 == len(fake.instance_names())
    seen = granted(fake.project)
    writes = sum(v for k, v in seen.items() if k[0] == "writes_per_region")
    assert writes == fake.count("compute.instances.insert") == 6
    assert seen[("reads_per_region", "europe-west4")] >= 1  # the operation waits
    # a 12-a-minute quota: 1.2 at once, then 0.18/s; 6 inserts waited >= (6 - 1.2) / 0.18 s
    assert ratelimit_clock.now - started >= (6 - 1.2) / 0.18 - 1e-6
    cloud.list_machines()
    assert granted(fake.project)[("reads", "")] >= 1  # aggregatedList: the global group


def test_rate_limit_exceeded_slows_the_bucket_down(fake: FakeCompute,
                                                    ratelimit_clock: FakeClock) -> None:
    cloud = driver(fake, retry_seconds=5.0)
    fake.fail_next(1, status=429, reason="rateLimitExceeded")
    cloud.list_machines()  # the SDK's read retry gets through on the second try
    [bucket] = [b for k, b in REGISTRY.snapshot().items() if k[:3] == ("gce", fake.project,
                                                                        "reads")]
    assert bucket.throttled_count == 1 and bucket.granted == 2
    fake.fail_next(1, status=403, reason="rateLimitExceeded")
    with pytest.raises(Transient):
        cloud.list_machines()
    assert bucket.throttled_count == 2


def test_a_create_whose_token_comes_after_the_deadline_is_not_sent(fake: FakeCompute) -> None:
    REGISTRY.reset()  # the real clock; nothing sleeps: the wait would pass the deadline
    cloud = driver(fake, write_requests_per_minute=1)
    deadline = time.monotonic() + 30.0
    with_retries(lambda: cloud.create(spec("vcyclectl-rl-w-first00001")), "create",
                 not_after=deadline)
    with pytest.raises(NoTokenBeforeDeadline):
        with_retries(lambda: cloud.create(spec("vcyclectl-rl-w-second0001")), "create",
                     not_after=deadline)
    assert fake.count("compute.instances.insert") == 1
    assert fake.instance_names() == ["vcyclectl-rl-w-first00001"]
