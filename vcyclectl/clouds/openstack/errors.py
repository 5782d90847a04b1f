"""The one place openstacksdk and keystoneauth failures become vcyclectl's error taxonomy.

Why a module of its own: the reconciler decides what to do next from the error's type alone
(`Transient`: retry; `IncompleteListing`: skip the space; `QuotaExceeded`: stop creating;
`Fatal`: give up on the space), so every SDK call of the driver runs inside
`ErrorTranslator.translated()`, and no other code of the package catches an SDK exception.
Messages name the space and the action, say what to check, and never carry a secret: any
configured secret an SDK message quotes is masked.

Imported only by the driver, so only a pass over an OpenStack space pays for the SDK.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as sdk_exc

from vcyclectl.clouds.openstack.options import OpenStackOptions
from vcyclectl.errors import CloudError, Fatal, IncompleteListing, QuotaExceeded, Transient

#: The longest message an SDK exception contributes to ours.
_MESSAGE_MAX = 500

_CREDENTIALS_REFUSED = (ksa_exc.Unauthorized, ksa_exc.AuthorizationFailure,
                        ksa_exc.MissingAuthPlugin, ksa_exc.NoMatchingPlugin,
                        ksa_exc.MissingRequiredOptions)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an SDK or keystoneauth exception carries, if any."""
    status = getattr(exc, "status_code", None) or getattr(exc, "http_status", None)
    return int(status) if status else None


def exception_text(exc: BaseException) -> str:
    """The exception's message with the server's `details` (Nova's explanation) appended."""
    details = getattr(exc, "details", None)
    return " ".join(str(part) for part in (exc, details or "") if part)


def retry_after_seconds(exc: BaseException) -> float | None:
    """A 429 response's `Retry-After` header in seconds, when it is a number."""
    retry_after = getattr(getattr(exc, "response", None), "headers", {}).get("Retry-After")
    try:
        return float(retry_after) if retry_after else None
    except ValueError:
        return None


class ErrorTranslator:
    """Translates the SDK's exceptions for one space.

    `secrets` is filled when the driver connects (the configured secret first, then every
    secret-looking value of the resolved auth), so messages raised after that mask them.
    """

    def __init__(self, space: str, options: OpenStackOptions) -> None:
        self.space = space
        self._options = options
        self.secrets: tuple[str, ...] = ()

    @contextlib.contextmanager
    def translated(self, action: str, *, listing: bool = False) -> Iterator[None]:
        """Run a block of SDK calls; anything it raises leaves as a `CloudError`.

        With `listing`, every retryable failure is an IncompleteListing, so the reconciler
        never acts on part of a listing. `CloudError`s raised inside pass unchanged.
        """
        transient: type[Transient] = IncompleteListing if listing else Transient
        where = f"space {self.space}: {action}"
        try:
            yield
        except CloudError:
            raise
        except _CREDENTIALS_REFUSED as exc:
            raise Fatal(f"{where}: the cloud refused our credentials ({self.clean(exc)}); "
                        f"check {self.what_to_check()}") from None
        except ksa_exc.SSLError as exc:
            raise Fatal(f"{where}: TLS failed ({self.clean(exc)}); check `cacert`/`verify` "
                        f"and the endpoint's certificate") from None
        except (ksa_exc.ConnectionError, ksa_exc.RequestTimeout) as exc:
            raise transient(f"{where}: {type(exc).__name__}: {self.clean(exc)}") from None
        except (ksa_exc.EndpointNotFound, sdk_exc.EndpointNotFound) as exc:
            raise Fatal(f"{where}: {self.clean(exc)}; check `region` and that the project "
                        f"has a compute service in its catalog") from None
        except (sdk_exc.HttpException, ksa_exc.HttpError) as exc:
            raise self.from_status(http_status(exc), exc, where, transient) from None
        except sdk_exc.ConfigException as exc:
            raise Fatal(f"{where}: {self.clean(exc)}; check `cloud:` and the clouds.yaml "
                        f"entry it names") from None
        except (ksa_exc.ClientException, sdk_exc.SDKException) as exc:
            raise transient(f"{where}: {type(exc).__name__}: {self.clean(exc)}") from None

    def from_status(self, status: int | None, exc: BaseException, where: str,
                    transient: type[Transient]) -> CloudError:
        """An HTTP error by its status: quota, credentials, role, throttling, or the rest."""
        text = self.clean(exc)
        if status in (403, 413) and "quota" in text.lower():
            return QuotaExceeded(f"{where}: {text}")
        if status == 401:
            return Fatal(f"{where}: the cloud refused our credentials (HTTP 401); "
                         f"check {self.what_to_check()}")
        if status == 403:
            return Fatal(f"{where}: not allowed (HTTP 403: {text}); check the role the "
                         f"credential has in its project")
        if status == 429:
            return transient(f"{where}: rate limited (HTTP 429)",
                             retry_after=retry_after_seconds(exc))
        if status is None or status == 409 or status >= 500:
            return transient(f"{where}: {text}")
        return Fatal(f"{where}: the cloud rejected the request (HTTP {status}: {text}); "
                     f"check the space's `openstack:` settings and machinetype image/flavor")

    def what_to_check(self) -> str:
        """Which settings a refused authentication points at, by the way the space authenticates."""
        opts = self._options
        if opts.cloud is not None:
            return f"the clouds.yaml entry {opts.cloud!r} (auth_url, credentials, project)"
        if opts.uses_application_credential:
            return ("auth_url, application_credential_id and its secret, and that the "
                    "application credential has not expired or been deleted")
        return "auth_url, username, password, project and the user/project domains"

    def clean(self, exc: BaseException) -> str:
        """The exception's text on one line, secrets masked, at most `_MESSAGE_MAX` long."""
        text = exception_text(exc).strip() or type(exc).__name__
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return " ".join(text.split())[:_MESSAGE_MAX]
