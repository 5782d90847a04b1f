"""How the GCE driver connects: credentials, the REST clients, and the read retry policy.

Why a module of its own: which credentials are accepted (and which are refused on purpose),
how long an idempotent read may be retried, and which clients a thread needs are decided
once per driver and never change during a pass; the driver only asks for them.

Imported only by the driver package, so the Google SDK is imported here at module level.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import google.auth
import google.auth.exceptions
from google.api_core import exceptions as gexc
from google.api_core import retry as retries
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import compute_v1
from google.oauth2 import service_account
import requests

from vcyclectl.clouds.gce import limits
from vcyclectl.clouds.gce.options import GceOptions
from vcyclectl.clouds.ratelimit import Key, Limit
from vcyclectl.clouds.ratelimit_http import limit_session
from vcyclectl.errors import Fatal

_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


@dataclass
class Clients:
    """The REST clients of one thread (their `requests` sessions are not shared)."""

    instances: compute_v1.InstancesClient
    zone_operations: compute_v1.ZoneOperationsClient
    global_operations: compute_v1.GlobalOperationsClient
    machine_types: compute_v1.MachineTypesClient


def make_clients(credentials: Credentials, options: GceOptions) -> Clients:
    """A fresh set of clients on `credentials`, at `api_endpoint` if one is configured,
    every request of which takes its project's rate-limit token first (`limits`)."""
    kwargs: dict[str, Any] = {"credentials": credentials, "transport": "rest"}
    if options.api_endpoint:
        kwargs["client_options"] = ClientOptions(api_endpoint=options.api_endpoint)
    clients = Clients(
        instances=compute_v1.InstancesClient(**kwargs),
        # operation.result() would poll through an internal client that ignores
        # client_options, so operations are waited for with our own client.
        zone_operations=compute_v1.ZoneOperationsClient(**kwargs),
        global_operations=compute_v1.GlobalOperationsClient(**kwargs),
        machine_types=compute_v1.MachineTypesClient(**kwargs),
    )
    project = options.project or ""

    def classify(method: str, url: str) -> list[tuple[Key, Limit]]:
        return limits.draws(project, method, url, options.read_requests_per_minute,
                            options.write_requests_per_minute)

    for client in (clients.instances, clients.zone_operations, clients.global_operations,
                   clients.machine_types):
        session = getattr(getattr(client, "_transport", None), "_session", None)
        if isinstance(session, requests.Session):
            limit_session(session, classify, rate_limited)
    return clients


def rate_limited(response: requests.Response) -> bool:
    """HTTP 429, or the 403 `rateLimitExceeded` Compute Engine documents for its quotas."""
    return response.status_code == 429 or (
        response.status_code == 403 and "rateLimitExceeded" in response.text)


def load_credentials(options: GceOptions, project: str) -> tuple[Credentials, str]:
    """Application Default Credentials, or anonymous for test and private endpoints.

    Returns the credentials and a description of where they came from, for error
    messages (never the secret itself).
    """
    if options.credentials == "anonymous":
        return AnonymousCredentials(), "anonymous credentials"  # type: ignore[no-untyped-call]
    if options.credentials_file:
        return service_account_key(options.credentials_file, project), (
            f"credentials_file {options.credentials_file}")
    try:
        creds, _ = google.auth.default(scopes=_SCOPES)
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise Fatal(f"GCE project {project}: no usable credentials ({exc}); set "
                    "credentials_file or GOOGLE_APPLICATION_CREDENTIALS to a service "
                    "account key, or run on a GCE host with a service account") from exc
    return creds, "Application Default Credentials"


def service_account_key(path: str, project: str) -> Credentials:
    """A service-account key file, read as exactly that (never a generic config).

    `google.auth.load_credentials_from_file` would accept any credential type a file
    names, including external-account configs that fetch URLs or run programs; a key
    named in our YAML is only ever a service-account key.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            info = json.load(handle)
        if not isinstance(info, dict) or info.get("type") != "service_account":
            raise ValueError("not a service account key (\"type\": \"service_account\")")
        from_info = service_account.Credentials.from_service_account_info
        creds: Credentials = from_info(info, scopes=_SCOPES)  # type: ignore[no-untyped-call]
    except (OSError, ValueError, KeyError) as exc:
        raise Fatal(f"GCE project {project}: credentials_file {path} is not a usable "
                    f"service account key: {exc}") from exc
    return creds


def read_retry(budget: float) -> retries.Retry | None:
    """Bounded, backed-off retries for idempotent reads (lists, gets, operation waits).

    The SDK's own default retries 503s on reads for up to ten minutes, which would hold
    a cron pass (and its space lock) through an outage; ours gives up after `budget`
    seconds and lets `Transient` tell the reconciler. Writes are never retried here:
    the reconciler retries them, and `requestId` makes that safe. None (no retry) when
    `budget` is 0.
    """
    if budget <= 0:
        return None
    return retries.Retry(
        initial=0.2, maximum=5.0, multiplier=2.0, timeout=budget,
        predicate=retries.if_exception_type(
            gexc.ServiceUnavailable, gexc.InternalServerError, gexc.BadGateway,
            gexc.GatewayTimeout, gexc.TooManyRequests, gexc.DeadlineExceeded))
