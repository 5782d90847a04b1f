"""Every EC2 request the driver's boto3 client sends takes its tokens first (the documented
limits in `limits`, kept by `vcyclectl.clouds.ratelimit`), and a throttling answer slows
the account's bucket down.

Why botocore events rather than a wrapper around each driver call: `before-send` fires for
every HTTP request, so each page of a paginated listing and each of botocore's own retries
pays its token too, exactly as EC2 counts them; `response-received` sees every answer,
including the `RequestLimitExceeded` botocore is about to retry.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qs

from vcyclectl.clouds.ec2.limits import RESOURCE_BUCKETS, request_bucket, sized
from vcyclectl.clouds.ec2.options import Ec2Options
from vcyclectl.clouds.ratelimit import REGISTRY, Key, Limit

#: EC2's answers that mean "slow down" (the API reference's throttling codes).
THROTTLING_CODES = frozenset({"RequestLimitExceeded", "Throttling", "ThrottlingException",
                              "RequestThrottled"})


def account_key(opts: Ec2Options, region: str | None, endpoint: str | None) -> Key:
    """Which account's buckets a client draws on: the credentials it uses (a digest: never
    the key itself), region and endpoint. Two spaces with the same profile or keys in one
    region share buckets, as they share EC2's."""
    who = "|".join(str(v) for v in (opts.access_key_id, opts.profile, opts.credentials_file))
    digest = hashlib.sha256(who.encode()).hexdigest()[:16]
    return ("ec2", digest, region or "", endpoint or "")


def draws(account: Key, action: str, body: Any, opts: Ec2Options
          ) -> list[tuple[Key, Limit, float]]:
    """The buckets one request takes tokens from, with their limits and token counts: its
    action's request bucket (one token) and, for launches and terminations, the resource
    bucket (one token per instance)."""
    request = sized(action, request_bucket(action), opts.request_bucket_capacity,
                    opts.request_bucket_refill)
    found = [(account + ("request", action), Limit(*request), 1.0)]
    if action in RESOURCE_BUCKETS:
        resource = sized(action, RESOURCE_BUCKETS[action], opts.resource_bucket_capacity,
                         opts.resource_bucket_refill)
        found.append((account + ("resource", action), Limit(*resource),
                      float(instances_in(action, body))))
    return found


def instances_in(action: str, body: Any) -> int:
    """Instances a RunInstances (MaxCount) or TerminateInstances (InstanceId.N) request
    names, read from its form-encoded body; at least 1."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    fields = parse_qs(body if isinstance(body, str) else "")
    if action == "RunInstances":
        try:
            return max(1, int(fields.get("MaxCount", ["1"])[0]))
        except ValueError:
            return 1
    return max(1, sum(1 for name in fields if name.startswith("InstanceId.")))


def install(client: Any, opts: Ec2Options) -> Key | None:
    """Hook the buckets into `client` (a boto3 EC2 client); returns the account's key, or
    None when the ec2 block turns rate limits off."""
    if not opts.rate_limits:
        return None
    account = account_key(opts, client.meta.region_name, client.meta.endpoint_url)

    def before_send(request: Any, event_name: str, **_: Any) -> None:
        action = event_name.rsplit(".", 1)[-1]
        for key, limit, tokens in draws(account, action, request.body, opts):
            REGISTRY.take(key, limit, tokens)

    def received(event_name: str, parsed_response: Any = None, **_: Any) -> None:
        error = (parsed_response or {}).get("Error") or {}
        if error.get("Code") in THROTTLING_CODES:
            REGISTRY.throttled(account + ("request", event_name.rsplit(".", 1)[-1]))

    client.meta.events.register("before-send.ec2", before_send)
    client.meta.events.register("response-received.ec2", received)
    return account
