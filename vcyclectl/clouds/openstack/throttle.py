"""The OpenStack account's token bucket: every HTTP request of the connection (Keystone,
Nova, Glance, Neutron) takes a token, and a throttling answer (429, or the 413 with
`Retry-After` of Nova's old rate-limit middleware; a 413 without it is Nova's "quota
exceeded", not a rate) pauses it for its `Retry-After`.

OpenStack documents no universal rate limit: each site sets its own (a proxy, a gateway),
so the limit is the openstack block's `api_requests_per_second` and `api_burst`, one
bucket per Keystone URL, project and region.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from vcyclectl.clouds.openstack.options import OpenStackOptions
from vcyclectl.clouds.ratelimit import Key, Limit
from vcyclectl.clouds.ratelimit_http import limit_session


def account_key(auth: Mapping[str, Any], region: str | None) -> Key:
    """Keystone URL, project (id, else domain and name) and region: never a secret."""
    project = str(auth.get("project_id") or
                  f"{auth.get('project_domain_name') or auth.get('project_domain_id') or ''}/"
                  f"{auth.get('project_name') or ''}")
    return ("openstack", str(auth.get("auth_url") or ""), project, region or "")


def limit_of(options: OpenStackOptions) -> Limit:
    return Limit(burst=float(options.api_burst), rate=options.api_requests_per_second)


def is_throttled(response: requests.Response) -> bool:
    return response.status_code == 429 or (response.status_code == 413
                                           and "Retry-After" in response.headers)


def install(session: requests.Session, key: Key, options: OpenStackOptions) -> None:
    """Every request `session` sends takes a token of the account's bucket first."""
    limit = limit_of(options)
    limit_session(session, lambda method, url: [(key, limit)], is_throttled)
