"""The token buckets of vcyclectl.clouds.ratelimit on an injected clock: no sleeps, no
timing assertions; what is checked is how many tokens are granted by which (fake) time."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import FakeClock
from vcyclectl.clouds import ratelimit
from vcyclectl.clouds.ratelimit import (Limit, NoTokenBeforeDeadline, Registry, TokenBucket,
                                        horizon, retry_after_seconds)
from vcyclectl.clouds.retries import with_retries
from vcyclectl.errors import Transient


def bucket(burst: float, rate: float) -> tuple[TokenBucket, FakeClock]:
    clock = FakeClock(start=0.0)
    return TokenBucket(Limit(burst=burst, rate=rate), clock=clock, sleep=clock.sleep), clock


def test_a_full_bucket_grants_its_burst_at_once_then_paces_at_its_rate() -> None:
    b, clock = bucket(burst=5, rate=2)
    assert [b.reserve() for _ in range(5)] == [0.0] * 5
    # the sixth waits for one refill (0.5 s), the seventh for two
    assert b.reserve() == pytest.approx(0.5)
    assert b.reserve() == pytest.approx(1.0)
    clock.now = 10.0  # long idle: refilled to the burst, never beyond
    assert [b.reserve() for _ in range(5)] == [0.0] * 5
    assert b.reserve() == pytest.approx(0.5)


def test_take_sleeps_exactly_the_reserved_wait_on_the_clock() -> None:
    b, clock = bucket(burst=1, rate=4)
    b.take()
    assert clock.now == 0.0
    b.take()
    assert clock.now == pytest.approx(0.25)
    assert b.granted == 2


def test_a_launch_of_several_instances_takes_several_tokens() -> None:
    b, _ = bucket(burst=10, rate=1)
    assert b.reserve(8) == 0.0
    assert b.reserve(4) == pytest.approx(2.0)


def test_no_limit_grants_everything_at_once_and_counts() -> None:
    b, _ = bucket(burst=0, rate=0)
    assert all(b.reserve() == 0.0 for _ in range(1000))
    assert b.granted == 1000


def test_a_wait_past_the_horizon_raises_and_takes_nothing() -> None:
    b, clock = bucket(burst=1, rate=0.1)
    b.reserve()
    with pytest.raises(NoTokenBeforeDeadline):
        b.reserve(horizon=5.0)  # due at 10 s
    assert b.granted == 1
    assert b.reserve(horizon=10.0) == pytest.approx(10.0)


def test_take_honours_the_threads_horizon() -> None:
    b, clock = bucket(burst=1, rate=0.01)
    b.take()
    with horizon(clock.now + 1.0):
        with pytest.raises(NoTokenBeforeDeadline):
            b.take()
    assert clock.now == 0.0  # it never slept


def test_horizons_nest_to_the_earlier_one_and_are_per_thread() -> None:
    seen: list[float | None] = []
    with horizon(10.0):
        with horizon(20.0):
            assert ratelimit.current_horizon() == 10.0
        with horizon(None):
            assert ratelimit.current_horizon() == 10.0
        other = threading.Thread(target=lambda: seen.append(ratelimit.current_horizon()))
        other.start()
        other.join()
    assert ratelimit.current_horizon() is None
    assert seen == [None]


def test_a_throttling_answer_empties_the_bucket_and_pauses_it_for_retry_after() -> None:
    b, clock = bucket(burst=10, rate=5)
    b.throttled(retry_after=3.0)
    assert b.throttled_count == 1
    assert b.reserve() == pytest.approx(3.0)  # full again by then, but paused until 3 s
    clock.now = 3.0
    assert b.reserve() == 0.0


def test_after_throttling_the_bucket_refills_at_half_speed_for_a_quiet_minute() -> None:
    b, clock = bucket(burst=2, rate=4)
    b.throttled(retry_after=1.0)
    assert b.rate == 2.0
    clock.now = 1.0
    assert b.reserve() == pytest.approx(0.0)  # 2 tokens refilled at 2/s during the pause
    b.reserve()
    assert b.reserve() == pytest.approx(0.5)  # one more at 2/s, not 4/s
    b.throttled(retry_after=1.0)
    assert b.rate == 1.0  # halved again
    for _ in range(10):
        b.throttled()
    assert b.rate == 4 * ratelimit.SLOWEST
    clock.now = 1.0 + 1.0 + ratelimit.SLOW_SECONDS + 0.01  # a minute past the last pause
    b.reserve()
    assert b.rate == 4.0


def test_a_throttling_answer_without_retry_after_pauses_one_refill_interval() -> None:
    b, _ = bucket(burst=10, rate=0.5)
    b.throttled()
    # paused 1/rate = 2 s (at least MIN_PAUSE_SECONDS), and the empty bucket now refills
    # at half speed: its next token is 4 s away
    assert b.reserve() == pytest.approx(4.0)


def test_the_registry_shares_one_bucket_per_key_and_keeps_the_stricter_limit() -> None:
    clock = FakeClock(start=0.0)
    registry = Registry()
    registry.use_clock(clock, clock.sleep)
    first = registry.bucket(("ec2", "acct", "request", "RunInstances"), Limit(5, 2))
    again = registry.bucket(("ec2", "acct", "request", "RunInstances"), Limit(10, 1))
    assert first is again and first.limit == Limit(5, 1)
    other = registry.bucket(("ec2", "other", "request", "RunInstances"), Limit(5, 2))
    assert other is not first
    registry.take(("ec2", "acct", "request", "RunInstances"), Limit(5, 2))
    registry.throttled(("ec2", "acct", "request", "RunInstances"), 1.0)
    registry.throttled(("nowhere",), 1.0)  # no bucket: nothing to slow
    assert registry.granted(("ec2", "acct")) == 1
    assert registry.granted(("ec2",)) == 1


@given(burst=st.integers(min_value=1, max_value=20),
       rate=st.sampled_from([0.5, 1.0, 2.0, 5.0, 20.0]),
       threads=st.integers(min_value=2, max_value=12),
       per_thread=st.integers(min_value=1, max_value=15))
def test_threads_sharing_a_bucket_never_get_more_than_burst_plus_rate_times_t(
        burst: int, rate: float, threads: int, per_thread: int) -> None:
    """Many threads reserve at once on one fake instant, as a burst of creates would; each
    grant is due at (reservation time + wait). By any time t, the grants due are at most
    burst + rate * t, and every token asked for is granted exactly once."""
    b, clock = bucket(burst=burst, rate=rate)
    due: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def worker() -> None:
        start.wait()
        for _ in range(per_thread):
            wait = b.reserve()
            with lock:
                due.append(clock.now + wait)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    due.sort()
    assert len(due) == threads * per_thread == b.granted
    for count, t in enumerate(due, start=1):
        assert count <= burst + rate * t + 1e-9


@given(burst=st.integers(min_value=1, max_value=10),
       rate=st.sampled_from([0.5, 2.0, 10.0]),
       steps=st.lists(st.sampled_from([0.0, 0.01, 0.1, 0.5, 2.0]), min_size=8, max_size=8))
def test_threads_taking_while_the_clock_moves_stay_under_the_bound(
        burst: int, rate: float, steps: list[float]) -> None:
    """Eight threads each take tokens and sleep (advancing the shared fake clock by their
    wait) and also idle by their own steps, interleaving arbitrarily: the grants, by the
    time they are due, never exceed burst + rate * t after the bucket was made."""
    b, clock = bucket(burst=burst, rate=rate)
    made = clock.now
    due: list[float] = []
    lock = threading.Lock()

    def worker(step: float) -> None:
        for _ in range(6):
            _, ready = b.reserve_until()
            with lock:
                due.append(ready)
            clock.sleep(step)

    pool = [threading.Thread(target=worker, args=(step,)) for step in steps]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    due.sort()
    assert len(due) == 48 == b.granted
    for count, t in enumerate(due, start=1):
        assert count <= burst + rate * (t - made) + 1e-9


def test_retry_after_is_read_as_seconds_only() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(" 1.5 ") == 1.5
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("-1") is None


def test_with_retries_never_retries_a_request_that_was_not_sent() -> None:
    calls: list[int] = []

    def call() -> None:
        calls.append(1)
        raise NoTokenBeforeDeadline("no token")

    with pytest.raises(NoTokenBeforeDeadline):
        with_retries(call, "create", not_after=0.0)
    assert calls == [1]
    assert isinstance(NoTokenBeforeDeadline("x"), Transient)  # a listing cut short by it
    # is incomplete, and the space is skipped, never acted on


def test_with_retries_sets_the_horizon_for_the_call_only() -> None:
    seen: list[float | None] = []
    with_retries(lambda: seen.append(ratelimit.current_horizon()), "list", not_after=42.0)
    assert seen == [42.0] and ratelimit.current_horizon() is None
