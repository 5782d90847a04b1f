"""Retries for cloud calls: `Transient` errors (throttling, 5xx, timeouts) are tried again
with jittered exponential backoff; every other error goes straight to the caller, which
decides (skip the space, stop creating, record the failure).

Every call also runs under the pass's deadline for rate-limit waits (`not_after`, see
`vcyclectl.clouds.ratelimit`): a request the account's token bucket could only send after
the deadline raises `NoTokenBeforeDeadline`, which is never retried (nothing was sent)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Callable, TypeVar

from vcyclectl import log
from vcyclectl.clouds import ratelimit
from vcyclectl.clouds.ratelimit import NoTokenBeforeDeadline as NoTokenBeforeDeadline
from vcyclectl.errors import Transient

T = TypeVar("T")
RETRY_ATTEMPTS = 3
#: Cloud API calls this process made, by (call, "ok" or the error's class name), retries
#: included: what the metrics count (vcyclectl.monitoring).
CALLS: Counter[tuple[str, str]] = Counter()
_CALLS_LOCK = threading.Lock()


def _counted(call: Callable[[], T], what: str) -> T:
    outcome = "ok"
    try:
        return call()
    except Exception as exc:
        outcome = type(exc).__name__
        raise
    finally:
        with _CALLS_LOCK:
            CALLS[(what, outcome)] += 1


def with_retries(call: Callable[[], T], what: str, attempts: int = RETRY_ATTEMPTS, *,
                 not_after: float | None = None) -> T:
    """Retry `Transient` errors with jittered exponential backoff (tenacity).

    `not_after` (a `time.monotonic()` time, the pass's deadline) bounds how long the
    driver's requests may wait for their cloud account's rate-limit tokens."""
    from tenacity import (Retrying, retry_if_exception, stop_after_attempt,
                          wait_random_exponential)

    def retryable(exc: BaseException) -> bool:
        return isinstance(exc, Transient) and not isinstance(exc, ratelimit.NoTokenBeforeDeadline)

    with ratelimit.horizon(not_after):
        for attempt in Retrying(retry=retry_if_exception(retryable),
                                stop=stop_after_attempt(attempts),
                                wait=wait_random_exponential(multiplier=0.2, max=3.0),
                                reraise=True):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    log.debug("retrying", call=what,
                              attempt=attempt.retry_state.attempt_number)
                return _counted(call, what)
    raise AssertionError("unreachable")  # pragma: no cover
