"""Compute Engine's API rate quotas, as data: which quota group a request counts against,
and a token bucket that keeps inside it.

Source: "Compute Engine rate quotas" (cloud.google.com/compute/docs/api-rate-limits).
Quotas are per project and per group, enforced per minute (a refused request gets 403
`rateLimitExceeded`, or 429): global `get`/`list`/`aggregatedList` count against "Read
requests per minute"; zonal and regional reads (`instances.get`, `machineTypes.get`,
`zoneOperations.wait`) against "Read requests per minute per region", and zonal writes
(`instances.insert`, `instances.delete`) against "Write requests per region". The page
used to give 1,500 requests a minute as the default of each group; a project's own values
(on its Quotas page) go in the gce block (`read_requests_per_minute`,
`write_requests_per_minute`).

A bucket of a tenth of the minute's quota refilled at the rest over 60 seconds lets
through at most the quota in any 60-second window, so no minute of Google's can be
overrun, however its windows fall.

Imports no SDK.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from vcyclectl.clouds.ratelimit import Key, Limit

_SCOPED = re.compile(r"/projects/[^/]+/(?P<scope>zones|regions)/(?P<where>[^/]+)/")


def per_minute(quota: int) -> Limit:
    """A bucket that never lets more than `quota` requests through in any 60 s (0: none)."""
    if quota <= 0:
        return Limit(burst=0.0, rate=0.0)
    burst = max(1.0, quota / 10)
    # at least half a token a minute: a quota of 1 is one request a window, not "no limit"
    return Limit(burst=burst, rate=max(quota - burst, 0.5) / 60.0)


def region_of(zone: str) -> str:
    """europe-west4-a -> europe-west4."""
    return zone.rsplit("-", 1)[0] if zone.count("-") >= 2 else zone


def quota_group(method: str, url: str) -> tuple[str, str]:
    """The (group, region) a request counts against: group `reads`, `reads_per_region` or
    `writes_per_region`; region '' for global groups."""
    path = urlsplit(url).path
    match = _SCOPED.search(path)
    reading = method.upper() == "GET" or path.endswith("/wait")
    if match is None:
        return ("reads" if reading else "writes", "")
    where = match.group("where")
    region = region_of(where) if match.group("scope") == "zones" else where
    return ("reads_per_region" if reading else "writes_per_region", region)


def draws(project: str, method: str, url: str, reads: int, writes: int
          ) -> list[tuple[Key, Limit]]:
    """The one bucket a request to `project` takes a token from."""
    group, region = quota_group(method, url)
    limit = per_minute(reads if group.startswith("reads") else writes)
    return [(("gce", project, group, region), limit)]
