"""The one place where botocore's exceptions become `vcyclectl.errors`.

Why a module of its own: what the reconciler does next (retry, stop creating in the space,
give up on the space) depends only on EC2's error code, so the code tables below and the
one context manager that reads them (`ErrorTranslator`) say all of it. Before, a module
function and a driver method shared the job under two names; now the driver builds one
`ErrorTranslator` for its space and wraps every call in it.

Imported only by the driver, so botocore is imported here at module level like in the
driver itself; `vcyclectl.clouds.ec2.options` never imports this.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import botocore.exceptions as bce

from vcyclectl.errors import CloudError, Fatal, QuotaExceeded, Transient

#: The tenancy refuses more: stop creating in this space for this pass.
QUOTA_CODES = frozenset({
    "InstanceLimitExceeded", "VcpuLimitExceeded", "MaxSpotInstanceCountExceeded",
    "InsufficientFreeAddressesInSubnet",
})

#: This instance type has no capacity right now (in this zone, or on the spot market):
#: worth trying the next instance type in the same pass, else `Transient`.
CAPACITY_CODES = frozenset({
    "InsufficientInstanceCapacity", "InsufficientCapacity", "UnfulfillableCapacity",
    "InsufficientHostCapacity", "SpotMaxPriceTooLow",
})

#: Retry later. botocore's standard/adaptive retry mode has already retried these.
TRANSIENT_CODES = frozenset({
    "RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled",
    "InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable",
    "RequestTimeout", "RequestTimeoutException", "IncorrectInstanceState",
    "IdempotentInstanceTerminated", "PriorRequestNotComplete",
})

#: Credentials missing, wrong, expired or not allowed: nothing to retry.
AUTH_CODES = frozenset({
    "AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "IncompleteSignature",
    "ExpiredToken", "ExpiredTokenException", "RequestExpired", "OptInRequired", "Blocked",
    "PendingVerification", "InvalidAccessKeyId", "MissingAuthenticationToken",
})
PERMISSION_CODES = frozenset({"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"})

#: A configured value EC2 rejects -> the option the user has to fix.
CONFIG_CODES: dict[str, str] = {
    "InvalidAMIID.NotFound": "image",
    "InvalidAMIID.Malformed": "image",
    "InvalidAMIID.Unavailable": "image",
    "InvalidInstanceType": "instance_types",
    "InvalidInstanceType.NotFound": "instance_types",
    "Unsupported": "instance_types",
    "InvalidSubnetID.NotFound": "subnets",
    "InvalidSubnetID.Malformed": "subnets",
    "InvalidSubnet": "subnets",
    "InvalidGroup.NotFound": "security_group_ids",
    "InvalidSecurityGroupID.NotFound": "security_group_ids",
    "InvalidKeyPair.NotFound": "key_name",
    "InvalidParameterValue": "the ec2 block",
    "InvalidParameterCombination": "the ec2 block",
    "InvalidParameter": "the ec2 block",
    "MissingParameter": "the ec2 block",
    "InvalidSpotInstanceRequestConfig": "max_price",
}

#: Deleting something EC2 no longer knows is what we wanted.
NOT_FOUND_CODES = frozenset({"InvalidInstanceID.NotFound"})


class NoCapacity(Transient):
    """One instance type has no capacity now; `create` falls back to the next one."""


def error_code(exc: bce.ClientError) -> str:
    """EC2's error code of a client error (`InvalidInstanceID.NotFound`), '' if none."""
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class ErrorTranslator:
    """Translates botocore's exceptions for one space; call it around every EC2 request.

    Messages say what to check and never carry credentials: botocore's own messages don't,
    and the encoded authorization blob of `UnauthorizedOperation` is left out on purpose.
    `CloudError`s raised inside (`NoCapacity`, `Fatal` from our own checks) pass unchanged.
    """

    space: str
    profile: str | None = None
    credentials_file: str | None = None

    @contextmanager
    def __call__(self, operation: str, *, machinetype: str | None = None,
                 instance_type: str | None = None, image: str | None = None
                 ) -> Iterator[None]:
        where = f"space {self.space}" + (f", machinetype {machinetype}" if machinetype else "")
        try:
            yield
        except CloudError:
            raise
        except bce.ClientError as exc:
            raise _from_client_error(exc, operation, where, instance_type, image) from exc
        except bce.BotoCoreError as exc:
            raise _from_botocore_error(exc, operation, where, self.profile,
                                       self.credentials_file) from exc


def looked_in(credentials_file: str | None) -> str:
    """The files boto3 read credentials from, as this process sees them, for messages."""
    import os

    creds = credentials_file or os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or \
        os.path.expanduser("~/.aws/credentials")
    how = " (the ec2 block's credentials_file)" if credentials_file else ""
    config = os.environ.get("AWS_CONFIG_FILE") or os.path.expanduser("~/.aws/config")
    return f"{creds}{how} and {config}"


def _from_botocore_error(exc: bce.BotoCoreError, operation: str, where: str,
                         profile: str | None, credentials_file: str | None = None
                         ) -> CloudError:
    """Errors before or around the request: credentials, profile, region, network."""
    if isinstance(exc, (bce.NoCredentialsError, bce.PartialCredentialsError)):
        return Fatal(f"{where}: no usable AWS credentials for {operation} (looked in "
                     f"{looked_in(credentials_file)}, the environment and the instance role): "
                     "set `profile` (and `credentials_file`) in the ec2 block, AWS_PROFILE or "
                     "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment cron gives "
                     "vcyclectl, or give the host an instance role")
    if isinstance(exc, bce.ProfileNotFound):
        return Fatal(f"{where}: AWS profile {profile!r} is not in "
                     f"{looked_in(credentials_file)} (read as the user running vcyclectl)")
    if isinstance(exc, bce.NoRegionError):
        return Fatal(f"{where}: no AWS region: set `region` in the ec2 block")
    if isinstance(exc, (bce.CredentialRetrievalError, bce.TokenRetrievalError, bce.SSOError,
                        bce.UnauthorizedSSOTokenError)):
        return Fatal(f"{where}: AWS credentials could not be obtained ({type(exc).__name__}): "
                     f"check profile {profile!r} (an expired SSO login needs `aws sso login`)")
    if isinstance(exc, bce.ParamValidationError):
        return Fatal(f"{where}: {operation} was refused before sending: {exc}; check "
                     "the ec2 block")
    if isinstance(exc, (bce.ConnectionError, bce.HTTPClientError)):
        return Transient(f"{where}: {operation} could not reach EC2 ({type(exc).__name__}): "
                         f"{exc}")
    return Transient(f"{where}: {operation} failed ({type(exc).__name__}): {exc}")


def _from_client_error(exc: bce.ClientError, operation: str, where: str,
                       instance_type: str | None, image: str | None) -> CloudError:
    """Errors EC2 answered with: classified by code, then by HTTP status."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")).split("Encoded authorization failure message")[0]
    message = message.strip().rstrip(".")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    said = f"{code}: {message}" if message else code
    if code in QUOTA_CODES:
        return QuotaExceeded(f"{where}: EC2 refuses more instances ({said}); ask AWS for a "
                             "higher limit or lower processors_limit")
    if code in CAPACITY_CODES:
        return NoCapacity(f"{where}: no capacity for {instance_type or 'the instance type'} "
                          f"({said})")
    if code in TRANSIENT_CODES or status >= 500 or code.endswith(".Unavailable"):
        return Transient(f"{where}: {operation} failed for now ({said})")
    if code in AUTH_CODES:
        return Fatal(f"{where}: AWS did not accept the credentials for {operation} ({code}): "
                     "check the profile or environment keys are valid, active and not "
                     "expired, and that region and endpoint_url are right")
    if code in PERMISSION_CODES:
        return Fatal(f"{where}: not allowed to call {operation} ({code}): grant "
                     f"ec2:{operation} to the IAM identity vcyclectl runs as (see "
                     "docs/clouds/ec2.md for the full list)")
    if code in CONFIG_CODES:
        option = CONFIG_CODES[code]
        what = {"image": f"image {image!r}", "instance_types": f"instance type {instance_type!r}"
                }.get(option, option)
        return Fatal(f"{where}: EC2 rejected {what} ({said}); check `{option}`"
                     if option != "the ec2 block" else
                     f"{where}: EC2 rejected {operation} ({said}); check the ec2 block")
    return Fatal(f"{where}: {operation} failed ({said})")

