"""Where the pool is and where the user's token lives: ~/.config/vmcondor/ (or
$VMCONDOR_HOME) holds pool.conf (written by `vmcondor setup`), the HTCondor client
configuration generated from it (condor_config: the bindings read it through
CONDOR_CONFIG) and tokens.d/ (0700) with the user's IDTOKEN."""

from __future__ import annotations

import base64
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

TOKEN_NAME = "vmcondor"          # the file in tokens.d/ that `token request` writes
DEFAULT_PORT = 9618


class PoolError(Exception):
    """Something the user must fix (no setup, no token); exit status 2."""


@dataclass(frozen=True)
class Pool:
    address: str                 # the manager's stable name, host[:port]
    name: str                    # the pool's trust domain: identities are USER@name
    home: Path

    @property
    def collector(self) -> str:
        return self.address if ":" in self.address else f"{self.address}:{DEFAULT_PORT}"

    @property
    def token_dir(self) -> Path:
        return self.home / "tokens.d"

    @property
    def token_file(self) -> Path:
        return self.token_dir / TOKEN_NAME

    @property
    def condor_config(self) -> Path:
        return self.home / "condor_config"


def home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("VMCONDOR_HOME"):
        return Path(env["VMCONDOR_HOME"])
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(base) / "vmcondor"


def condor_config_text(pool: Pool) -> str:
    """The HTCondor client configuration for this pool: IDTOKENS from our own token
    directory (SSL only to send a token request before there is a token), always
    encrypted, and nothing from the machine's own HTCondor installation."""
    return "\n".join([
        "# Written by `vmcondor setup`; the vmcondor command points CONDOR_CONFIG here.",
        f"VMCONDOR_POOL = {pool.name}",
        f"COLLECTOR_HOST = {pool.collector}",
        "SEC_CLIENT_AUTHENTICATION_METHODS = IDTOKENS, SSL",
        "SEC_CLIENT_ENCRYPTION = REQUIRED",
        "SEC_CLIENT_INTEGRITY = REQUIRED",
        f"SEC_TOKEN_DIRECTORY = {pool.token_dir}",
        f"SEC_TOKEN_SYSTEM_DIRECTORY = {pool.token_dir}",
        "# Trust the pool's self-made CA only after the user said yes once (known_hosts).",
        f"SEC_SYSTEM_KNOWN_HOSTS = {pool.home / 'known_hosts'}",
        "BOOTSTRAP_SSL_SERVER_TRUST = False",
        "",
    ])


def save(pool: Pool) -> None:
    pool.home.mkdir(parents=True, exist_ok=True)
    pool.token_dir.mkdir(mode=0o700, exist_ok=True)
    pool.token_dir.chmod(0o700)
    (pool.home / "pool.conf").write_text(f"address = {pool.address}\nname = {pool.name}\n")
    pool.condor_config.write_text(condor_config_text(pool))


def load(where: Path | None = None, env: Mapping[str, str] | None = None) -> Pool:
    env = os.environ if env is None else env
    where = where or home(env)
    values: dict[str, str] = {}
    conf = where / "pool.conf"
    if conf.exists():
        for line in conf.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not line.lstrip().startswith("#"):
                values[key.strip()] = value.strip()
    address = env.get("VMCONDOR_POOL") or values.get("address")
    name = env.get("VMCONDOR_POOL_NAME") or values.get("name")
    if not address or not name:
        raise PoolError("no pool set up: run `vmcondor setup --pool cm.example.org "
                        "--name example.org` (your pool admin tells you both)")
    pool = Pool(address=address, name=name, home=where)
    if not pool.condor_config.exists() or pool.condor_config.read_text() != \
            condor_config_text(pool):
        save(pool)
    return pool


def activate(pool: Pool) -> None:
    """Point the bindings at this pool's client configuration (before they are imported,
    or reloading it if they already are)."""
    os.environ["CONDOR_CONFIG"] = str(pool.condor_config)
    for name in ("htcondor2", "htcondor"):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "reload_config"):
            module.reload_config()


def token_claims(token: str) -> dict[str, Any]:
    """The payload of an IDTOKEN (a JWT): sub, iss, iat, exp, scope, jti. Not verified:
    only the pool manager holds the key that can."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise PoolError("not an IDTOKEN (expected three dot-separated parts)")
    header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    if not isinstance(claims, dict) or not isinstance(header, dict):
        raise PoolError("not an IDTOKEN (payload is not a JSON object)")
    claims.setdefault("kid", header.get("kid"))
    return claims


def identity(pool: Pool) -> str:
    """USER@POOL from the user's token; PoolError when there is none yet."""
    if not pool.token_file.exists():
        raise PoolError(f"no token in {pool.token_file}: run `vmcondor token request "
                        "YOURNAME` and ask your pool admin to approve it")
    sub = str(token_claims(pool.token_file.read_text()).get("sub", ""))
    if "@" not in sub:
        raise PoolError(f"{pool.token_file}: the token names no user@pool identity")
    return sub
