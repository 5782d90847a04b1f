"""Warnings for `vcyclectl status`: an expiring application credential, a nearly full quota.

Why a module of its own: these are advice for people, not part of the driver contract, and
their thresholds are a policy worth finding in one place. Each check is one API call made
inside the space's error translator; the driver turns a failure into one more warning.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, cast

import openstack.connection

from vcyclectl.clouds.openstack.errors import ErrorTranslator
from vcyclectl.clouds.openstack.options import OpenStackOptions
from vcyclectl.clouds.openstack.servers import parse_time

if TYPE_CHECKING:
    from openstack.identity.v3._proxy import Proxy as IdentityV3

#: How near an application credential's expiry `health()` starts warning.
CREDENTIAL_WARN_DAYS = 14
#: `health()` warns when less than this fraction of a quota is free.
QUOTA_WARN_FRACTION = 0.1


def credential_warnings(conn: openstack.connection.Connection, options: OpenStackOptions,
                        errors: ErrorTranslator) -> list[str]:
    """A warning when the space's application credential has expired or expires soon."""
    cred_id = options.application_credential_id
    if cred_id is None:  # not `uses_application_credential`
        return []
    # Application credentials exist in Identity v3 only, and the session that authenticated
    # with one (connect() fetched its token) always knows its user.
    with errors.translated("reading the application credential"):
        identity = cast("IdentityV3", conn.identity)
        cred = identity.get_application_credential(cast(str, conn.current_user_id), cred_id)
    expires = parse_time(cred.expires_at)
    if expires is None:
        return []
    days = (expires - datetime.now(timezone.utc).timestamp()) / 86400
    if days < 0:
        return [f"application credential {cred_id} has expired"]
    if days <= CREDENTIAL_WARN_DAYS:
        return [f"application credential {cred_id} expires in "
                f"{days:.1f} days ({cred.expires_at})"]
    return []


def quota_warnings(conn: openstack.connection.Connection,
                   errors: ErrorTranslator) -> list[str]:
    """A warning per compute quota (cores, instances, RAM) with less than 10% free."""
    with errors.translated("reading quota usage"):
        limits = conn.compute.get_limits().absolute
    out: list[str] = []
    for what, used, limit in (("cores", limits.total_cores_used, limits.total_cores),
                              ("instances", limits.instances_used, limits.instances),
                              ("RAM MB", limits.total_ram_used, limits.total_ram)):
        if limit is None or used is None or int(limit) < 0:
            continue
        free = int(limit) - int(used)
        if free <= int(limit) * QUOTA_WARN_FRACTION:
            out.append(f"quota: {what} {used}/{limit} used ({free} free)")
    return out
