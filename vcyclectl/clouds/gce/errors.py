"""The one place where SDK, HTTP and operation errors of GCE become `vcyclectl.errors`.

Why a module of its own: what the reconciler does next (retry, stop creating in the space,
give up on the space, try the next zone) depends only on GCE's error codes and HTTP status,
whether they come back on the HTTP response or inside a finished zone operation. Before,
the driver's `_translated` context manager and its `_raise_for_api_error` /
`_raise_for_codes` helpers shared that job; now one `ErrorTranslator` holds it, and both
kinds of error are classified by the same code tables below.

Imported only by the driver package, so the Google SDK is imported here at module level;
`vcyclectl.clouds.gce.options` never imports this.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import google.auth.exceptions
import requests  # the HTTP library (absolute import), not vcyclectl.clouds.gce.requests
from google.api_core import exceptions as gexc

from vcyclectl.errors import CloudError, Fatal, QuotaExceeded, Transient

#: Operation / HTTP error codes, by what the reconciler should do about them.
QUOTA_CODES = frozenset({"QUOTA_EXCEEDED", "quotaExceeded"})
ZONE_EXHAUSTED_CODES = frozenset({"ZONE_RESOURCE_POOL_EXHAUSTED",
                                  "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
                                  "insufficientCapacity", "resourcePoolExhausted"})
TRANSIENT_CODES = frozenset({"RATE_LIMIT_EXCEEDED", "rateLimitExceeded",
                             "userRateLimitExceeded", "RESOURCE_NOT_READY", "resourceNotReady",
                             "INTERNAL_ERROR", "internalError", "backendError",
                             "SERVICE_UNAVAILABLE", "OPERATION_CANCELED_BY_USER",
                             "RESOURCE_OPERATION_RATE_EXCEEDED"})
ALREADY_EXISTS_CODES = frozenset({"RESOURCE_ALREADY_EXISTS", "alreadyExists"})
NOT_FOUND_CODES = frozenset({"RESOURCE_NOT_FOUND", "notFound"})

DEFAULT_RETRY_AFTER = 5.0


class OperationFailed(Exception):
    """A zone operation finished with errors; `ErrorTranslator` decides what that means."""

    def __init__(self, operation: Mapping[str, Any]) -> None:
        errors = operation.get("error", {}).get("errors", [])
        self.codes = frozenset(str(e.get("code", "")) for e in errors)
        self.message = "; ".join(f"{e.get('code')}: {e.get('message', '')}" for e in errors)
        super().__init__(self.message)


class ZoneExhausted(Exception):
    """This zone has no capacity for the machine type now; `create` tries the next zone."""


@dataclass(frozen=True)
class ErrorTranslator:
    """Translates every GCE error of one project; call it around every API request.

    401 and 403 mean the space cannot work until someone fixes credentials or IAM
    (`Fatal`, naming the project and what to check) - except a 403 whose reason is a
    quota or rate limit. 429, 5xx, timeouts and connection errors are `Transient` with a
    retry delay. Operation errors are classified by their code the same way. A zone
    out of capacity raises `ZoneExhausted` only where the caller can fall back to
    another zone (`zone_fallback`, i.e. inserts); anywhere else it is `Transient`.
    `credentials_source` says where the credentials came from, never the secret.
    """

    project: str
    credentials_source: str

    @contextmanager
    def __call__(self, doing: str, *, zone_fallback: bool = False) -> Iterator[None]:
        try:
            yield
        except (CloudError, ZoneExhausted):
            raise
        except OperationFailed as exc:
            raise self._from_codes(exc.codes, exc.message, doing,
                                   zone_fallback=zone_fallback) from exc
        except gexc.GoogleAPICallError as exc:
            raise self._from_api_error(exc, doing, zone_fallback=zone_fallback) from exc
        except gexc.RetryError as exc:
            raise Transient(f"GCE project {self.project}: still failing after retries while "
                            f"{doing}: {exc.cause or exc}",
                            retry_after=DEFAULT_RETRY_AFTER) from exc
        except (google.auth.exceptions.TransportError, requests.RequestException,
                TimeoutError, ConnectionError) as exc:
            raise Transient(f"GCE project {self.project}: network error while {doing}: "
                            f"{type(exc).__name__}", retry_after=DEFAULT_RETRY_AFTER) from exc
        except google.auth.exceptions.GoogleAuthError as exc:
            # RefreshError (key deleted or disabled), or anonymous credentials asked to
            # refresh after a 401: either way the credentials are the problem.
            raise Fatal(f"GCE project {self.project}: {self.credentials_source} could not "
                        f"authenticate (401) while {doing}: {exc}. Check credentials_file / "
                        "GOOGLE_APPLICATION_CREDENTIALS and that the service account key is "
                        "valid and not deleted") from exc

    def _from_api_error(self, exc: gexc.GoogleAPICallError, doing: str, *,
                        zone_fallback: bool) -> Exception:
        """An HTTP error: by its reasons first (a 403 may be a quota), then its status."""
        reasons = {str(e.get("reason")) for e in exc.errors if isinstance(e, dict)}
        if exc.reason:
            reasons.add(str(exc.reason))
        status = int(exc.code) if exc.code is not None else None
        retry_after = _retry_after(exc)
        if reasons & (QUOTA_CODES | ZONE_EXHAUSTED_CODES | TRANSIENT_CODES):
            return self._from_codes(frozenset(reasons), exc.message, doing,
                                    zone_fallback=zone_fallback, retry_after=retry_after)
        if status == 401:
            return Fatal(f"GCE project {self.project}: {self.credentials_source} rejected "
                         f"(401) while {doing}: {exc.message}. Check credentials_file / "
                         "GOOGLE_APPLICATION_CREDENTIALS: the key may be revoked, expired or "
                         "for another account")
        if status == 403:
            return Fatal(f"GCE project {self.project}: permission denied (403) while {doing}: "
                         f"{exc.message}. Check that the project id is right, that the Compute "
                         f"Engine API is enabled in it, and that {self.credentials_source} "
                         "belongs to a principal with roles/compute.instanceAdmin.v1 on the "
                         "project (and roles/iam.serviceAccountUser on the VMs' service "
                         "account)")
        if status == 429 or (status is not None and status >= 500) or isinstance(
                exc, (gexc.DeadlineExceeded, gexc.RetryError)):
            return Transient(f"GCE project {self.project}: {status or 'timeout'} while "
                             f"{doing}: {exc.message}", retry_after=retry_after)
        if status == 409:
            return Transient(f"GCE project {self.project}: conflict while {doing}: "
                             f"{exc.message}", retry_after=retry_after)
        return Fatal(f"GCE project {self.project}: the API refused {doing} ({status}): "
                     f"{exc.message}. Check the gce: block (image, network, machine types, "
                     "zones)")

    def _from_codes(self, codes: frozenset[str], message: str, doing: str, *,
                    zone_fallback: bool, retry_after: float = DEFAULT_RETRY_AFTER
                    ) -> Exception:
        """Error codes, from an operation or an HTTP error's reasons."""
        if codes & QUOTA_CODES:
            return QuotaExceeded(f"GCE project {self.project}: quota exceeded while {doing}: "
                                 f"{message}")
        if codes & ZONE_EXHAUSTED_CODES and zone_fallback:
            return ZoneExhausted(message)
        if codes & (TRANSIENT_CODES | ZONE_EXHAUSTED_CODES):
            return Transient(f"GCE project {self.project}: {doing}: {message}",
                             retry_after=retry_after)
        return Fatal(f"GCE project {self.project}: {doing} failed: {message}")


def _retry_after(exc: gexc.GoogleAPICallError) -> float:
    """The response's `Retry-After` in seconds, else `DEFAULT_RETRY_AFTER`."""
    response = getattr(exc, "response", None)
    if response is None:
        return DEFAULT_RETRY_AFTER
    try:
        return float(response.headers.get("Retry-After", DEFAULT_RETRY_AFTER))
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
