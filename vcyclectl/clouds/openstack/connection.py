"""How a space reaches its cloud: the openstacksdk connection, built from the options.

Why a module of its own: authentication has two shapes (a clouds.yaml entry, or inline
credentials with an application credential or a password, perhaps read from a file), and
the connection has settings that keep creates safe (no retried POST) and the worker threads
fast (a wider connection pool). None of that is the driver's business beyond "connect once".
Errors leave through the space's `ErrorTranslator`, which also learns the secrets to mask.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

import openstack.config
import openstack.connection

from vcyclectl.clouds.openstack import throttle
from vcyclectl.clouds.openstack.errors import ErrorTranslator
from vcyclectl.clouds.openstack.options import OpenStackOptions
from vcyclectl.errors import Fatal

#: Connections each worker thread may keep open to one endpoint.
POOL_SIZE = 32


class InlineAuth(TypedDict):
    """openstacksdk's `auth_type` and `auth` arguments for inline credentials."""

    auth_type: str
    auth: dict[str, str | None]


def connect(options: OpenStackOptions, errors: ErrorTranslator) -> openstack.connection.Connection:
    """An authenticated connection: the token is fetched now, once, before threads race."""
    # connect_retries=0 whatever clouds.yaml says: keystoneauth would resend a POST
    # whose connection dropped, and a resent create is a second server. Retries are
    # the reconciler's, and its retry of a create looks the name up first.
    with errors.translated("connecting"):
        if options.cloud is not None:
            # Environment variables on: OS_CLIENT_CONFIG_FILE is part of where
            # openstacksdk looks for clouds.yaml.
            config = openstack.config.get_cloud_region(
                cloud=options.cloud, region_name=options.region,
                api_timeout=options.timeout_seconds, connect_retries=0)
        else:
            config = openstack.config.get_cloud_region(
                load_yaml_config=False, load_envvars=False, region_name=options.region,
                api_timeout=options.timeout_seconds, connect_retries=0, verify=options.verify,
                cacert=options.cacert, **inline_auth(options, errors))
        conn = openstack.connection.Connection(config=config, app_name="vcyclectl")
        secrets = [v for k, v in (config.auth or {}).items()
                   if v and any(w in k for w in ("secret", "password", "token"))]
        errors.secrets = tuple(str(s) for s in secrets)
        widen_connection_pool(conn)
        session = getattr(getattr(conn, "session", None), "session", None)
        if session is not None:
            throttle.install(session, throttle.account_key(config.auth or {},
                                                           config.region_name), options)
        # The session's call (not conn.authorize()) so keystoneauth's own exception types
        # reach the translator.
        conn.session.get_token()
    return conn


def inline_auth(options: OpenStackOptions, errors: ErrorTranslator) -> InlineAuth:
    """`auth_type` and `auth` for inline credentials; the secret is masked from now on."""
    if options.uses_application_credential:
        secret = options.application_credential_secret or read_secret(
            options.application_credential_secret_file, "application_credential_secret_file",
            errors.space)
        errors.secrets = (secret,)
        return {"auth_type": "v3applicationcredential",
                "auth": {"auth_url": options.auth_url,
                         "application_credential_id": options.application_credential_id,
                         "application_credential_secret": secret}}
    password = options.password or read_secret(options.password_file, "password_file",
                                                errors.space)
    errors.secrets = (password,)
    auth: dict[str, str | None] = {
        "auth_url": options.auth_url, "username": options.username, "password": password,
        "user_domain_name": options.user_domain_name,
        "project_domain_name": options.project_domain_name}
    if options.project_id:
        auth["project_id"] = options.project_id
    else:
        auth["project_name"] = options.project_name
    return {"auth_type": "password", "auth": auth}


def read_secret(path: str | None, key: str, space: str) -> str:
    """A secret file's content without its trailing newline, read at each connect."""
    try:
        return Path(str(path)).read_text().strip()
    except OSError as exc:
        raise Fatal(f"space {space}: cannot read {key} {path}: {exc.strerror}") from None


def widen_connection_pool(conn: openstack.connection.Connection) -> None:
    """Let the reconciler's worker threads each keep a connection instead of discarding."""
    adapter = getattr(getattr(conn, "session", None), "session", None)
    if adapter is None:
        return
    from keystoneauth1.session import TCPKeepAliveAdapter

    for prefix in ("http://", "https://"):
        adapter.mount(prefix, TCPKeepAliveAdapter(pool_maxsize=POOL_SIZE))
