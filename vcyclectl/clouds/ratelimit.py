"""Client-side token buckets, one per cloud account and limit, shared by every thread of
the process, so vcyclectl stays inside each cloud's documented API rate limits.

Why: a pass creates from a pool of `concurrency` threads, and one `vcyclectl reconcile`
runs every space of a config one after another; several spaces may share one cloud account.
The clouds meter requests per account (EC2: per account and region, per action; GCE: per
project; OpenStack: whatever the site set), so the bucket must be per account too, not per
thread, space or pass. Each driver names its account (`Key`) and the limits of its
requests; this module only keeps the buckets.

How a bucket works (the algorithm EC2 documents for its own throttling): it holds at most
`burst` tokens and gains `rate` tokens a second; a request takes one token (a launch of n
instances takes n resource tokens). A thread that finds too few tokens *reserves* them
anyway (the balance goes below zero) and sleeps until they have been refilled, outside the
lock, so waiting threads are served in order and, by any time t after the bucket was made,
at most `burst + rate * t` tokens have been granted. A throttling answer from the cloud
(`throttled`) empties the bucket, pauses it for the cloud's `Retry-After` (or one refill
interval) and halves its refill rate for a minute, so the whole process slows down, not
only the call that was refused.

A wait never runs past the pass's deadline: `with_retries` sets the thread's `horizon`
(`max_pass_seconds`), and a request whose tokens would only come later raises
`NoTokenBeforeDeadline` at once without sleeping, which the reconciler counts as a call
not started. Time comes from an injectable clock and sleep (`REGISTRY.use_clock`), so
tests run on a fake clock and never sleep.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from vcyclectl import log
from vcyclectl.errors import Transient

#: Identifies one bucket: (cloud, account..., limit name); never holds a secret (drivers
#: put a digest of credentials here, not the credentials).
Key = tuple[str, ...]

#: How long a throttled bucket pauses when the cloud gives no Retry-After, at least.
MIN_PAUSE_SECONDS = 1.0
#: After a throttling answer the bucket refills at half its rate (halved again by each
#: further one, down to an eighth) until this long has passed without one: the account may
#: be shared with other tools the bucket cannot see.
SLOW_SECONDS = 60.0
SLOWEST = 1 / 8


class NoTokenBeforeDeadline(Transient):
    """The request would have had to wait for its rate limit past the pass's deadline: it
    was not sent (nothing happened on the cloud), so the next pass carries on."""


@dataclass(frozen=True)
class Limit:
    """A token bucket's size: `burst` tokens at most, refilled at `rate` a second.
    A rate of 0 (or less) means no limit."""

    burst: float
    rate: float

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def tighter(self, other: "Limit") -> "Limit":
        """The stricter of two limits, for two spaces that configure one account apart."""
        if self.unlimited:
            return other
        if other.unlimited:
            return self
        return Limit(burst=min(self.burst, other.burst), rate=min(self.rate, other.rate))


class TokenBucket:
    """One bucket, safe to share between threads; see the module docstring."""

    def __init__(self, limit: Limit, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limit = limit
        self._clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(limit.burst)
        self._stamp = clock()
        self._paused_until = self._stamp
        self._factor = 1.0
        self._slow_until = self._stamp
        #: Tokens handed out (granted or reserved), and throttling answers seen: for tests,
        #: benchmarks and `-v` logs.
        self.granted = 0.0
        self.throttled_count = 0

    @property
    def rate(self) -> float:
        """Tokens a second now: the limit's, or less for a while after throttling."""
        return self.limit.rate * self._factor

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(float(self.limit.burst),
                               self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
        if self._factor < 1.0 and now >= self._slow_until:
            self._factor = 1.0

    def reserve(self, tokens: float = 1.0, horizon: float | None = None) -> float:
        """Take `tokens` now and return how many seconds the caller must wait before using
        them (0: at once). Raises `NoTokenBeforeDeadline`, taking nothing, if that wait would
        end after `horizon` (a time of this bucket's clock)."""
        now, ready = self.reserve_until(tokens, horizon)
        return max(0.0, ready - now)

    def reserve_until(self, tokens: float = 1.0, horizon: float | None = None
                      ) -> tuple[float, float]:
        """`reserve`, as (the clock's time of the reservation, the time the tokens are due)."""
        with self._lock:
            now = self._clock()
            if self.limit.unlimited:
                self.granted += tokens
                return now, now
            self._refill(now)
            deficit = tokens - self._tokens
            ready = max(now + max(0.0, deficit) / self.rate, self._paused_until)
            if horizon is not None and ready > horizon and ready > now:
                raise NoTokenBeforeDeadline(
                    f"the cloud's API rate limit ({self.limit.burst:g} burst, "
                    f"{self.limit.rate:g}/s) has no token for this request before the "
                    "pass's deadline; not sent")
            self._tokens -= tokens
            self.granted += tokens
            return now, max(now, ready)

    def take(self, tokens: float = 1.0) -> None:
        """Take `tokens`, sleeping until they are due; the wait stops at the thread's
        `horizon` (see `horizon()`)."""
        wait = self.reserve(tokens, current_horizon())
        if wait > 0:
            self.sleep(wait)

    def throttled(self, retry_after: float | None = None) -> None:
        """The cloud refused a request for its rate: empty the bucket, pause it for
        `retry_after` seconds (the cloud's own word), else one refill interval, and refill
        it at half speed for `SLOW_SECONDS` (see there)."""
        if self.limit.unlimited:
            return
        pause = retry_after if retry_after is not None and retry_after > 0 else \
            max(MIN_PAUSE_SECONDS, 1.0 / self.limit.rate)
        with self._lock:
            now = self._clock()
            self._refill(now)
            self._tokens = min(self._tokens, 0.0)
            self._paused_until = max(self._paused_until, now + pause)
            self._factor = max(SLOWEST, self._factor / 2)
            self._slow_until = self._paused_until + SLOW_SECONDS
            self.throttled_count += 1


class Registry:
    """The process's buckets by `Key`, made on first use; what drivers take tokens from."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[Key, TokenBucket] = {}
        self.clock: Callable[[], float] = time.monotonic
        self.sleep: Callable[[float], None] = time.sleep

    def bucket(self, key: Key, limit: Limit) -> TokenBucket:
        """The bucket for `key`; a later, stricter `limit` for the same key tightens it."""
        with self._lock:
            found = self._buckets.get(key)
            if found is None:
                found = TokenBucket(limit, clock=self.clock, sleep=self.sleep)
                self._buckets[key] = found
            elif limit != found.limit:
                found.limit = found.limit.tighter(limit)
            return found

    def take(self, key: Key, limit: Limit, tokens: float = 1.0) -> None:
        """Take `tokens` from `key`'s bucket, sleeping until they are due (to the thread's
        horizon at most); a wait of a second or more is logged at `-v`."""
        found = self.bucket(key, limit)
        wait = found.reserve(tokens, current_horizon())
        if wait >= 1.0:
            log.debug("waiting for the cloud's API rate limit", bucket="/".join(key),
                      seconds=round(wait, 2))
        if wait > 0:
            found.sleep(wait)

    def throttled(self, key: Key, retry_after: float | None = None) -> None:
        with self._lock:
            found = self._buckets.get(key)
        if found is not None:
            found.throttled(retry_after)

    def granted(self, prefix: Key = ()) -> float:
        """Tokens handed out by the buckets whose key starts with `prefix`."""
        with self._lock:
            return sum(b.granted for k, b in self._buckets.items() if k[:len(prefix)] == prefix)

    def snapshot(self) -> dict[Key, TokenBucket]:
        with self._lock:
            return dict(self._buckets)

    def use_clock(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        """Forget every bucket and make new ones on `clock` and `sleep` (tests, benchmarks)."""
        with self._lock:
            self._buckets.clear()
            self.clock, self.sleep = clock, sleep

    def reset(self) -> None:
        self.use_clock(time.monotonic, time.sleep)


#: The one registry of the process.
REGISTRY = Registry()

_local = threading.local()


def current_horizon() -> float | None:
    """The time (monotonic clock) past which this thread may not wait for a token."""
    value: float | None = getattr(_local, "horizon", None)
    return value


@contextmanager
def horizon(at: float | None) -> Iterator[None]:
    """Within the block, this thread's token waits end at `at` (None: no bound)."""
    before = current_horizon()
    _local.horizon = before if at is None else at if before is None else min(at, before)
    try:
        yield
    finally:
        _local.horizon = before


def retry_after_seconds(value: str | None) -> float | None:
    """An HTTP `Retry-After` header as seconds (its date form counts as absent)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
