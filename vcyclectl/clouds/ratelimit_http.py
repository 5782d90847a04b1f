"""Rate limits for drivers whose SDK talks HTTP through a `requests` session (GCE's REST
transport, OpenStack's keystoneauth): a transport adapter that takes the tokens of every
request before it is sent and slows the bucket on a throttling answer.

Why at the transport: every HTTP request then pays, pages and the SDK's own retries
included, whatever method of the SDK sent it; the driver only says which buckets a request
draws on (`Classify`). Imported only by those drivers, so `requests` is imported here.
"""

from __future__ import annotations

from typing import Any, Callable

import requests
from requests.adapters import BaseAdapter

from vcyclectl.clouds.ratelimit import REGISTRY, Key, Limit, retry_after_seconds

#: (method, url) -> the (key, limit) of each bucket the request takes one token from.
Classify = Callable[[str, str], list[tuple[Key, Limit]]]
#: A response -> whether it says "too many requests" (HTTP 429 and the cloud's own forms).
IsThrottled = Callable[[requests.Response], bool]


def is_429(response: requests.Response) -> bool:
    return response.status_code == 429


class RateLimitedAdapter(BaseAdapter):
    """Wraps the adapter a session already had: tokens first, then the real send."""

    def __init__(self, inner: BaseAdapter, classify: Classify,
                 throttled: IsThrottled = is_429) -> None:
        super().__init__()
        self.inner = inner
        self.classify = classify
        self.is_throttled = throttled

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
             ) -> requests.Response:
        draws = self.classify(str(request.method or "GET"), str(request.url or ""))
        for key, limit in draws:
            REGISTRY.take(key, limit)
        response: requests.Response = self.inner.send(request, *args, **kwargs)
        if draws and self.is_throttled(response):
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            for key, _ in draws:
                REGISTRY.throttled(key, wait)
        return response

    def close(self) -> None:
        self.inner.close()


def limit_session(session: requests.Session, classify: Classify,
                  throttled: IsThrottled = is_429) -> None:
    """Put a `RateLimitedAdapter` in front of the adapters `session` uses for http(s)."""
    for prefix in ("https://", "http://"):
        inner = session.get_adapter(prefix + "x")
        if not isinstance(inner, RateLimitedAdapter):
            session.mount(prefix, RateLimitedAdapter(inner, classify, throttled))
