"""The `openstack:` block of a space: how to reach the cloud and how to build servers.

No openstacksdk import here, so `vcyclectl config check` validates an OpenStack space
without paying for the SDK. `vcyclectl.config.schema` builds `OpenStackOptions` from the YAML and
reports file/line/key for every mistake, including the cross-field rules in `problems()`.

Two ways to authenticate, exactly one per space:
- `cloud: NAME`, an entry of the standard `clouds.yaml` (looked up where openstacksdk looks:
  `OS_CLIENT_CONFIG_FILE`, `./clouds.yaml`, `~/.config/openstack/`, `/etc/openstack/`), so
  sites reuse the file their operators already have;
- inline `auth_url` with an application credential (preferred: scoped to one project,
  revocable, may expire) or a username/password/project.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Nova's special values for `networks` in a server create request.
SPECIAL_NETWORKS = ("none", "auto")

_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                   r"[0-9a-fA-F]{12}")

#: The keys of inline authentication, which a `cloud:` entry replaces.
_INLINE_AUTH_KEYS = ("auth_url", "application_credential_id", "application_credential_secret",
                     "application_credential_secret_file", "username", "password",
                     "password_file", "project_name", "project_id")


def looks_like_id(value: str) -> bool:
    """OpenStack ids are UUIDs (with or without dashes); anything else is a name."""
    return bool(_UUID.fullmatch(value))


@dataclass(frozen=True)
class OpenStackOptions:
    """One space's OpenStack settings; secrets are marked so `config show` redacts them.

    Secret fields are also left out of `repr()`, so logging the options never leaks them.
    """

    cloud: str | None = None
    auth_url: str | None = None
    region: str | None = None
    application_credential_id: str | None = None
    application_credential_secret: str | None = field(
        default=None, repr=False, metadata={"secret": True})
    application_credential_secret_file: str | None = field(default=None, metadata={"path": True})
    username: str | None = None
    password: str | None = field(default=None, repr=False, metadata={"secret": True})
    password_file: str | None = field(default=None, metadata={"path": True})
    project_name: str | None = None
    project_id: str | None = None
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    cacert: str | None = field(default=None, metadata={"path": True})
    verify: bool = True
    #: A network name or id, or Nova's `auto` (the project's only network, or one made
    #: for it) or `none` (no network at all).
    network: str = "auto"
    security_groups: list[str] = field(default_factory=list)
    key_name: str | None = None
    #: Machines are spread across these zones (the least used first); empty = Nova's choice.
    availability_zones: list[str] = field(default_factory=list)
    #: Extra server metadata; vcyclectl's own keys (vcyclectl-*) always win.
    metadata: dict[str, str] = field(default_factory=dict)
    #: Flavors this space may use, by name; empty = every flavor the project sees.
    flavors: list[str] = field(default_factory=list)
    #: Servers asked for per page of the listing; unset = the cloud's own page size
    #: (Nova's `max_limit`, 1000 unless the operator changed it).
    page_size: int | None = field(default=None, metadata={"min": 1, "max": 1000})
    #: Seconds before one API call is abandoned (and reported as Transient).
    timeout_seconds: float = field(default=60.0, metadata={"min": 1, "max": 3600})
    #: API requests a second to this cloud and project, shared by every thread and space of
    #: the process (OpenStack has no universal limit: each site sets its own, see
    #: docs/clouds/openstack.md); 0 for no client-side limit.
    api_requests_per_second: float = field(default=10.0, metadata={"min": 0})
    #: Requests that may go at once before `api_requests_per_second` paces them.
    api_burst: int = field(default=50, metadata={"min": 1})

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules: exactly one way to authenticate, and a complete one."""
        if self.cloud is not None:
            inline = [k for k in _INLINE_AUTH_KEYS if getattr(self, k) is not None]
            if inline:
                return [(inline[0], "cannot be combined with `cloud:` (a clouds.yaml entry "
                                    "holds the credentials); use one or the other")]
            return []
        if self.auth_url is None:
            return [("auth_url", "is required unless `cloud:` names a clouds.yaml entry")]
        out = self._secret_twice_problems()
        if self.application_credential_id or self._has_application_credential_secret:
            out += self._application_credential_problems()
        else:
            out += self._password_problems()
        if not self.verify and self.cacert:
            out.append(("cacert", "has no effect with verify: false"))
        return out

    @property
    def _has_application_credential_secret(self) -> bool:
        return bool(self.application_credential_secret
                    or self.application_credential_secret_file)

    def _secret_twice_problems(self) -> list[tuple[str, str]]:
        """A secret given both inline and as a file."""
        out: list[tuple[str, str]] = []
        if self.application_credential_secret and self.application_credential_secret_file:
            out.append(("application_credential_secret_file",
                        "give the secret or a file holding it, not both"))
        if self.password and self.password_file:
            out.append(("password_file", "give the password or a file holding it, not both"))
        return out

    def _application_credential_problems(self) -> list[tuple[str, str]]:
        """An application credential needs its id and its secret, and no username."""
        out: list[tuple[str, str]] = []
        if not self.application_credential_id:
            out.append(("application_credential_secret",
                        "needs application_credential_id as well"))
        elif not self._has_application_credential_secret:
            out.append(("application_credential_id",
                        "needs application_credential_secret or "
                        "application_credential_secret_file as well"))
        if self.username is not None:
            out.append(("username", "use an application credential or a username, not both"))
        return out

    def _password_problems(self) -> list[tuple[str, str]]:
        """Password authentication needs a username, a password and a project."""
        missing = [k for k in ("username", "project_name")
                   if getattr(self, k) is None
                   and not (k == "project_name" and self.project_id is not None)]
        if not (self.password or self.password_file):
            missing.append("password")
        if missing:
            return [(missing[0], "is required with auth_url (or use "
                                 "application_credential_id and its secret)")]
        return []

    @property
    def uses_application_credential(self) -> bool:
        return self.application_credential_id is not None
