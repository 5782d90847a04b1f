"""The OpenStack driver: Nova servers through openstacksdk.

Imported only when a space says `cloud: openstack` (see `vcyclectl.clouds.registry`), so it alone
pays for openstacksdk and keystoneauth.

How it finds its own servers: by **server tags**, filtered by Nova (`GET /servers/detail?
tags=...`, microversion 2.26+). Each server carries two tags, `vcyclectl-state-id=<id>` and
`vcyclectl-space=<space>`, so one paginated listing returns this state directory's machines
of this space and nothing else, whatever else lives in the project. Nova cannot filter a
listing by metadata for ordinary users, which is why tags, not metadata, do the selecting;
metadata carries the same facts plus the machinetype, in full, for people and for `inspect`
(and is checked again on every listed server, in case a tag had to be shortened).

Everything that can go wrong with a call becomes a `vcyclectl.errors` type in one place,
`_translated()`; every Nova status becomes a `MachineState` in one table, `STATE_MAP`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import threading
from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import openstack.config
import openstack.connection
from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as sdk_exc

from vcyclectl import log
from vcyclectl.clouds.contract import TAG_MACHINETYPE, TAG_SPACE, TAG_STATE_ID, CloudContext
from vcyclectl.clouds.openstack.options import SPECIAL_NETWORKS, OpenStackOptions, looks_like_id
from vcyclectl.errors import CloudError, Fatal, IncompleteListing, QuotaExceeded, Transient
from vcyclectl.core.model import CloudMachine, Flavor, MachineSpec, MachineState


#: Every server status in the Compute API reference, and what it means to us. Statuses
#: not listed (a newer Nova's) are UNKNOWN, which the planner counts as live capacity.
STATE_MAP: dict[str, MachineState] = {
    "BUILD": MachineState.STARTING,
    "ACTIVE": MachineState.RUNNING,
    "SHUTOFF": MachineState.STOPPED,
    "STOPPED": MachineState.STOPPED,
    "ERROR": MachineState.FAILED,
    "DELETED": MachineState.GONE,
    "SOFT_DELETED": MachineState.GONE,
    "HARD_REBOOT": MachineState.UNKNOWN,
    "REBOOT": MachineState.UNKNOWN,
    "MIGRATING": MachineState.UNKNOWN,
    "PASSWORD": MachineState.UNKNOWN,
    "PAUSED": MachineState.UNKNOWN,
    "REBUILD": MachineState.UNKNOWN,
    "RESCUE": MachineState.UNKNOWN,
    "RESIZE": MachineState.UNKNOWN,
    "REVERT_RESIZE": MachineState.UNKNOWN,
    "VERIFY_RESIZE": MachineState.UNKNOWN,
    "SHELVED": MachineState.UNKNOWN,
    "SHELVED_OFFLOADED": MachineState.UNKNOWN,
    "SUSPENDED": MachineState.UNKNOWN,
    "UNKNOWN": MachineState.UNKNOWN,
}

#: Nova keeps a server's status (e.g. ACTIVE) while it deletes it; the task state says so.
DELETING_TASK_STATES = frozenset({"deleting", "soft-deleting"})

#: Nova tags are at most 60 characters, without "/" or ",".
_TAG_MAX = 60

#: Server fields never kept in `CloudMachine.raw` (admins see user_data, which may hold tokens).
_RAW_EXCLUDED = frozenset({"user_data", "OS-EXT-SRV-ATTR:user_data", "admin_password",
                           "adminPass"})

#: Failed servers listed without their fault whose fault one listing may look up.
FAULT_LOOKUPS = 10

#: How near an application credential's expiry `health()` starts warning.
CREDENTIAL_WARN_DAYS = 14
#: `health()` warns when less than this fraction of a quota is free.
QUOTA_WARN_FRACTION = 0.1


def _tag(key: str, value: str) -> str:
    """A Nova tag for key=value; a value too long or with forbidden characters is hashed."""
    tag = f"{key}={value}"
    if len(tag) > _TAG_MAX or "/" in tag or "," in tag:
        tag = f"{key}=sha256:{hashlib.sha256(value.encode()).hexdigest()[:16]}"
    return tag


def _parse_time(value: Any) -> float | None:
    """Nova's timestamps: `created` has a Z, `launched_at` is naive UTC with microseconds."""
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp()


def _http_status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None) or getattr(exc, "http_status", None)
    return int(status) if status else None


def _exception_text(exc: BaseException) -> str:
    details = getattr(exc, "details", None)
    return " ".join(str(part) for part in (exc, details or "") if part)


class OpenStackCloud:
    """One space on one OpenStack project; builds its connection on first use.

    One instance serves one pass: look-ups (images, networks, flavors) are cached for its
    lifetime, so a new pass sees a re-uploaded image. Safe to share between the
    reconciler's worker threads: the connection, the image and
    network look-ups and the flavor table are made once, under a lock, and then only read.
    """

    def __init__(self, context: CloudContext) -> None:
        if not isinstance(context.options, OpenStackOptions):
            raise Fatal(f"space {context.space}: the openstack driver needs an `openstack:` block")
        self._context = context
        self._options: OpenStackOptions = context.options
        self._space = context.space
        self._lock = threading.Lock()
        self._lookup_lock = threading.RLock()
        self._conn: Any = None
        self._secrets: tuple[str, ...] = ()
        self._images: dict[str, str] = {}
        self._networks: dict[str, str] = {}
        self._flavors: list[Any] | None = None
        self._microversion: str | None = None
        self._fault_lookups = 0
        self._attempted: set[str] = set()
        self._zone_use: Counter[str] = Counter()
        self._filter_tags = [_tag(TAG_STATE_ID, context.state_id), _tag(TAG_SPACE, context.space)]

    # -- the contract ------------------------------------------------------------------

    def list_machines(self) -> list[CloudMachine]:
        """Every page of this space's servers in one listing; any failure is IncompleteListing."""
        params: dict[str, Any] = {"tags": ",".join(self._filter_tags)}
        if self._options.page_size is not None:
            params["limit"] = self._options.page_size
        with self._translated("listing servers", listing=True):
            servers = list(self._servers(params))
        machines = [self._with_fault(self._to_machine(s)) for s in servers if self._is_ours(s)]
        with self._lock:
            self._zone_use = Counter(m.zone for m in machines
                                     if m.zone and m.state is not MachineState.GONE)
        return machines

    def create(self, spec: MachineSpec) -> CloudMachine:
        """Create `spec.name`, or return the server of that name a lost response made.

        A create whose response was lost (connection dropped, timeout, 5xx after Nova may
        have acted) is followed by a look-up by name, so the caller gets the server Nova made
        rather than an error that would lead to a second one; if that look-up fails too, the
        error is raised and the caller's retry of the same name looks before it creates
        again. A first attempt does not look: names are fresh, and a later pass sees an
        earlier pass's server in its listing (and adopts it) before it plans any create.
        """
        with self._lock:
            retry = spec.name in self._attempted
            self._attempted.add(spec.name)
        if retry:
            existing = self._find(spec.name)
            if existing is not None:
                log.debug("server already exists", space=self._space, machine=spec.name)
                return existing
        options: OpenStackOptions = self._context.options_for(spec.machinetype)
        body = self._create_body(spec, options)
        conn = self._connection()
        try:
            with self._translated(f"creating {spec.name}"):
                server = conn.compute.create_server(**body)
        except Transient:
            found = self._find(spec.name)
            if found is None:
                raise
            log.info("create response lost; server found", space=self._space,
                     machine=spec.name)
            return found
        log.debug("server created", space=self._space, machine=spec.name, id=server.id)
        return CloudMachine(
            id=str(server.id), name=spec.name, space=spec.space, machinetype=spec.machinetype,
            state=MachineState.STARTING, processors=spec.processors,
            flavor=spec.flavor.name, zone=body.get("availability_zone"))

    def delete(self, machine: CloudMachine) -> None:
        """Delete by id; a server already gone (404) is success."""
        conn = self._connection()
        with self._translated(f"deleting {machine.name}"):
            conn.compute.delete_server(machine.id, ignore_missing=True)
        log.debug("server deleted", space=self._space, machine=machine.name, id=machine.id)

    def flavors(self) -> list[Flavor]:
        """The configured flavors in configured order (all the project sees if none)."""
        table = {f.name: f for f in self._flavor_table()}
        wanted = self._configured_flavor_names()
        if not wanted:
            return sorted((self._to_flavor(f) for f in table.values()),
                          key=lambda f: (f.processors, f.memory_mb or 0, f.name))
        missing = [name for name in wanted if name not in table]
        if missing:
            raise Fatal(f"space {self._space}: flavor {missing[0]!r} does not exist in this "
                        f"project (it has: {', '.join(sorted(table)) or 'none'}); check the "
                        f"space's `flavors:`")
        return [self._to_flavor(table[name]) for name in wanted]

    # -- optional extras ---------------------------------------------------------------

    def health(self) -> list[str]:
        """Warnings for `vcyclectl status`: credential expiry and quota headroom."""
        warnings: list[str] = []
        try:
            warnings += self._credential_warnings()
            warnings += self._quota_warnings()
        except CloudError as exc:
            warnings.append(f"could not check the project's health: {exc}")
        return warnings

    @property
    def connection(self) -> Any:
        """The openstacksdk connection (for diagnostics and benchmarks; not for decisions)."""
        return self._connection()

    # -- connection and errors ---------------------------------------------------------

    def _connection(self) -> Any:
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()
            return self._conn

    def _connect(self) -> Any:
        opts = self._options
        # connect_retries=0 whatever clouds.yaml says: keystoneauth would resend a POST
        # whose connection dropped, and a resent create is a second server. Retries are
        # the reconciler's, and its retry of a create looks the name up first.
        with self._translated("connecting"):
            if opts.cloud is not None:
                # Environment variables on: OS_CLIENT_CONFIG_FILE is part of where
                # openstacksdk looks for clouds.yaml.
                config = openstack.config.get_cloud_region(
                    cloud=opts.cloud, region_name=opts.region, api_timeout=opts.timeout_seconds,
                    connect_retries=0)
            else:
                config = openstack.config.get_cloud_region(
                    load_yaml_config=False, load_envvars=False, region_name=opts.region,
                    api_timeout=opts.timeout_seconds, connect_retries=0, verify=opts.verify,
                    cacert=opts.cacert, **self._inline_auth(opts))
            conn = openstack.connection.Connection(config=config, app_name="vcyclectl")
            secrets = [v for k, v in (config.auth or {}).items()
                       if v and any(w in k for w in ("secret", "password", "token"))]
            self._secrets = tuple(str(s) for s in secrets)
            _widen_connection_pool(conn)
            # One token now, before worker threads race to fetch their own; the session's
            # call (not conn.authorize()) so keystoneauth's own exception types reach us.
            conn.session.get_token()
        return conn

    def _inline_auth(self, opts: OpenStackOptions) -> dict[str, Any]:
        if opts.uses_application_credential:
            secret = opts.application_credential_secret or self._read_secret(
                opts.application_credential_secret_file, "application_credential_secret_file")
            self._secrets = (secret,)
            return {"auth_type": "v3applicationcredential",
                    "auth": {"auth_url": opts.auth_url,
                             "application_credential_id": opts.application_credential_id,
                             "application_credential_secret": secret}}
        password = opts.password or self._read_secret(opts.password_file, "password_file")
        self._secrets = (password,)
        auth: dict[str, Any] = {"auth_url": opts.auth_url, "username": opts.username,
                                "password": password, "user_domain_name": opts.user_domain_name,
                                "project_domain_name": opts.project_domain_name}
        if opts.project_id:
            auth["project_id"] = opts.project_id
        else:
            auth["project_name"] = opts.project_name
        return {"auth_type": "password", "auth": auth}

    def _read_secret(self, path: str | None, key: str) -> str:
        try:
            return Path(str(path)).read_text().strip()
        except OSError as exc:
            raise Fatal(f"space {self._space}: cannot read {key} {path}: {exc.strerror}") from None

    @contextlib.contextmanager
    def _translated(self, action: str, *, listing: bool = False) -> Iterator[None]:
        """The one place SDK and HTTP failures become Transient / QuotaExceeded / Fatal.

        Messages name the space and the action and never carry a secret (any configured
        secret found in an SDK message is masked). With `listing`, every retryable failure
        is an IncompleteListing, so the reconciler never acts on part of a listing.
        """
        transient: type[Transient] = IncompleteListing if listing else Transient
        where = f"space {self._space}: {action}"
        try:
            yield
        except CloudError:
            raise
        except (ksa_exc.Unauthorized, ksa_exc.AuthorizationFailure, ksa_exc.MissingAuthPlugin,
                ksa_exc.NoMatchingPlugin, ksa_exc.MissingRequiredOptions) as exc:
            raise Fatal(f"{where}: the cloud refused our credentials ({self._clean(exc)}); "
                        f"check {self._what_to_check()}") from None
        except ksa_exc.SSLError as exc:
            raise Fatal(f"{where}: TLS failed ({self._clean(exc)}); check `cacert`/`verify` "
                        f"and the endpoint's certificate") from None
        except (ksa_exc.ConnectionError, ksa_exc.RequestTimeout) as exc:
            raise transient(f"{where}: {type(exc).__name__}: {self._clean(exc)}") from None
        except (ksa_exc.EndpointNotFound, sdk_exc.EndpointNotFound) as exc:
            raise Fatal(f"{where}: {self._clean(exc)}; check `region` and that the project "
                        f"has a compute service in its catalog") from None
        except (sdk_exc.HttpException, ksa_exc.HttpError) as exc:
            raise self._from_status(_http_status(exc), exc, where, transient) from None
        except sdk_exc.ConfigException as exc:
            raise Fatal(f"{where}: {self._clean(exc)}; check `cloud:` and the clouds.yaml "
                        f"entry it names") from None
        except ksa_exc.ClientException as exc:
            raise transient(f"{where}: {type(exc).__name__}: {self._clean(exc)}") from None
        except sdk_exc.SDKException as exc:
            raise transient(f"{where}: {type(exc).__name__}: {self._clean(exc)}") from None

    def _from_status(self, status: int | None, exc: BaseException, where: str,
                     transient: type[Transient]) -> CloudError:
        text = self._clean(exc)
        lowered = text.lower()
        if status in (403, 413) and "quota" in lowered:
            return QuotaExceeded(f"{where}: {text}")
        if status == 401:
            return Fatal(f"{where}: the cloud refused our credentials (HTTP 401); "
                         f"check {self._what_to_check()}")
        if status == 403:
            return Fatal(f"{where}: not allowed (HTTP 403: {text}); check the role the "
                         f"credential has in its project")
        if status == 429:
            retry_after = getattr(getattr(exc, "response", None), "headers", {}).get("Retry-After")
            try:
                delay = float(retry_after) if retry_after else None
            except ValueError:
                delay = None
            return transient(f"{where}: rate limited (HTTP 429)", retry_after=delay)
        if status is None or status == 409 or status >= 500:
            return transient(f"{where}: {text}")
        return Fatal(f"{where}: the cloud rejected the request (HTTP {status}: {text}); "
                     f"check the space's `openstack:` settings and machinetype image/flavor")

    def _what_to_check(self) -> str:
        opts = self._options
        if opts.cloud is not None:
            return f"the clouds.yaml entry {opts.cloud!r} (auth_url, credentials, project)"
        if opts.uses_application_credential:
            return ("auth_url, application_credential_id and its secret, and that the "
                    "application credential has not expired or been deleted")
        return "auth_url, username, password, project and the user/project domains"

    def _clean(self, exc: BaseException) -> str:
        text = _exception_text(exc).strip() or type(exc).__name__
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "***")
        return " ".join(text.split())[:500]

    # -- look-ups, made once per driver instance (one pass) ----------------------------

    def _find(self, name: str) -> CloudMachine | None:
        """Our live server called `name`, or None; Nova's name filter is a regex."""
        pattern = "^" + name.replace(".", "\\.") + "$"
        with self._translated(f"looking for {name}"):
            servers = list(self._servers({"name": pattern, "tags": ",".join(self._filter_tags)}))
        for server in servers:
            machine = self._to_machine(server)
            if self._is_ours(server) and machine.name == name and machine.state is not MachineState.GONE:
                return machine
        return None

    def _servers(self, params: dict[str, Any]) -> Iterator[Any]:
        """`GET /servers/detail`, page after page, following Nova's `next` links.

        Not `conn.compute.servers(limit=...)`: with a limit, openstacksdk asks for one more
        page after the last, short one. Only the next link's query (the marker) is used,
        since clouds behind a proxy often put the wrong host in the link's URL. A cloud whose
        `max_limit` is below `page_size` still gets every page: Nova links to the next page
        whenever it cut one short.
        """
        from openstack.compute.v2.server import Server

        conn = self._connection()
        compute = conn.compute
        microversion = self._list_microversion(compute)
        query = dict(params)
        while True:
            response = compute.get("/servers/detail", params=query, microversion=microversion)
            sdk_exc.raise_from_response(response)
            body = response.json()
            for raw in body.get("servers", []):
                yield Server.existing(microversion=microversion, connection=conn, **raw)
            next_href = next((link.get("href") for link in body.get("servers_links", [])
                              if link.get("rel") == "next"), None)
            if not next_href:
                return
            query = {k: v[-1] for k, v in parse_qs(urlsplit(next_href).query).items()}

    def _list_microversion(self, compute: Any) -> str | None:
        """The newest microversion both sides know (2.26+ filters by tag, 2.47+ embeds
        the flavor, so listing needs no flavor look-ups), found once per driver."""
        with self._lock:
            if self._microversion is None:
                from openstack import utils
                from openstack.compute.v2.server import Server

                self._microversion = utils.maximum_supported_microversion(
                    compute, Server._max_microversion) or ""
            return self._microversion or None

    def _with_fault(self, machine: CloudMachine) -> CloudMachine:
        """A failed machine whose listing entry had no fault gets it from one GET.

        Nova's detail listing reads faults from one cell database only, so a server that
        never got past the scheduler (it lives in cell0: "No valid host was found") is
        often listed in ERROR with no fault at all. Only such servers cost a request, at
        most `FAULT_LOOKUPS` per listing, and a failed look-up keeps the generic reason.
        """
        if machine.state is not MachineState.FAILED or machine.raw.get("fault"):
            return machine
        with self._lock:
            if self._fault_lookups >= FAULT_LOOKUPS:
                return machine
            self._fault_lookups += 1
        try:
            with self._translated(f"reading the fault of {machine.name}"):
                server = self._connection().compute.get_server(machine.id)
        except CloudError:
            return machine
        message = (server.fault or {}).get("message")
        return replace(machine, state_reason=str(message).strip()) if message else machine

    def _image_id(self, image: str) -> str:
        """An image name resolved once per driver (pass); an id is used as given."""
        if looks_like_id(image):
            return image
        with self._lookup_lock:  # held while resolving: concurrent creates wait, not repeat
            if image not in self._images:
                conn = self._connection()
                with self._translated(f"looking up image {image!r}"):
                    found = [i for i in conn.image.images(name=image) if i.status == "active"]
                if not found:
                    raise Fatal(f"space {self._space}: no active image named {image!r}; check "
                                f"the machinetype's `image:`")
                # Sites re-upload images under the same name; the newest is the one meant.
                self._images[image] = str(max(found, key=lambda i: str(i.created_at or "")).id)
            return self._images[image]

    def _networks_arg(self, network: str) -> Any:
        if network in SPECIAL_NETWORKS:
            return network
        if looks_like_id(network):
            return [{"uuid": network}]
        with self._lookup_lock:
            if network not in self._networks:
                conn = self._connection()
                with self._translated(f"looking up network {network!r}"):
                    found = list(conn.network.networks(name=network))
                if len(found) != 1:
                    what = "no network" if not found else f"{len(found)} networks"
                    raise Fatal(f"space {self._space}: {what} named {network!r}; check "
                                f"`network:` (a name, an id, `auto` or `none`)")
                self._networks[network] = str(found[0].id)
            return [{"uuid": self._networks[network]}]

    def _flavor_table(self) -> list[Any]:
        with self._lookup_lock:
            if self._flavors is None:
                conn = self._connection()
                with self._translated("listing flavors"):
                    self._flavors = list(conn.compute.flavors(details=True))
            return self._flavors

    def _configured_flavor_names(self) -> list[str]:
        names: list[str] = list(self._options.flavors)
        for options in self._context.machinetype_options.values():
            names += [n for n in getattr(options, "flavors", []) if n not in names]
        return names

    @staticmethod
    def _to_flavor(flavor: Any) -> Flavor:
        return Flavor(name=str(flavor.name), processors=int(flavor.vcpus),
                      memory_mb=int(flavor.ram) if flavor.ram is not None else None)

    def _flavor_id(self, flavor: Flavor) -> str:
        for candidate in self._flavor_table():
            if candidate.name == flavor.name:
                return str(candidate.id)
        if looks_like_id(flavor.name) or flavor.name.isdigit():
            return flavor.name
        raise Fatal(f"space {self._space}: flavor {flavor.name!r} does not exist in this project")

    def _pick_zone(self, zones: list[str]) -> str | None:
        """The configured zone with the fewest of our machines (ties: configured order)."""
        if not zones:
            return None
        with self._lock:
            zone = min(zones, key=lambda z: (self._zone_use[z], zones.index(z)))
            self._zone_use[zone] += 1
        return zone

    # -- translation -------------------------------------------------------------------

    def _create_body(self, spec: MachineSpec, options: OpenStackOptions) -> dict[str, Any]:
        if not spec.image:
            raise Fatal(f"space {self._space}: machinetype {spec.machinetype} has no image")
        metadata = {**options.metadata, **spec.metadata,
                    TAG_SPACE: spec.space, TAG_MACHINETYPE: spec.machinetype,
                    TAG_STATE_ID: spec.state_id}
        body: dict[str, Any] = {
            "name": spec.name,
            "image_id": self._image_id(spec.image),
            "flavor_id": self._flavor_id(spec.flavor),
            "user_data": base64.b64encode(spec.user_data.encode()).decode(),
            "metadata": {str(k)[:255]: str(v)[:255] for k, v in metadata.items()},
            "tags": [_tag(TAG_STATE_ID, spec.state_id), _tag(TAG_SPACE, spec.space),
                     _tag(TAG_MACHINETYPE, spec.machinetype)],
            "networks": self._networks_arg(options.network),
        }
        if options.security_groups:
            body["security_groups"] = [{"name": sg} for sg in options.security_groups]
        if options.key_name:
            body["key_name"] = options.key_name
        zone = self._pick_zone(list(options.availability_zones))
        if zone:
            body["availability_zone"] = zone
        return body

    def _is_ours(self, server: Any) -> bool:
        """Tags chose the server; the full values in its metadata must agree."""
        metadata = server.metadata or {}
        return (metadata.get(TAG_STATE_ID) == self._context.state_id
                and metadata.get(TAG_SPACE) == self._space)

    def _to_machine(self, server: Any) -> CloudMachine:
        """The single place a Nova server becomes a CloudMachine."""
        status = str(server.status or "UNKNOWN").upper()
        state = STATE_MAP.get(status, MachineState.UNKNOWN)
        if server.task_state in DELETING_TASK_STATES and state is not MachineState.GONE:
            state = MachineState.DELETING
        flavor = server.flavor or {}
        metadata = server.metadata or {}
        fault = server.fault or {}
        reason = None
        if state is MachineState.FAILED:
            reason = str(fault.get("message") or "server in ERROR state").strip()
        addresses = tuple(str(a.get("addr")) for nets in (server.addresses or {}).values()
                          for a in nets if a.get("addr"))
        raw = {k: v for k, v in server.to_dict(computed=False).items() if k not in _RAW_EXCLUDED}
        return CloudMachine(
            id=str(server.id), name=str(server.name), space=self._space,
            machinetype=str(metadata.get(TAG_MACHINETYPE, "")), state=state,
            processors=self._processors(flavor), created_at=_parse_time(server.created_at),
            started_at=_parse_time(server.launched_at),
            stopped_at=_parse_time(server.terminated_at),
            flavor=flavor.get("original_name") or flavor.get("name") or flavor.get("id"),
            zone=server.availability_zone or None, addresses=addresses, state_reason=reason,
            raw=raw)

    def _processors(self, flavor: dict[str, Any]) -> int:
        """vCPUs from the embedded flavor (2.47+), else from the flavor table by id."""
        if flavor.get("vcpus") is not None:
            return int(flavor["vcpus"])
        for candidate in self._flavor_table():
            if str(candidate.id) == str(flavor.get("id")):
                return int(candidate.vcpus)
        return 0

    def _credential_warnings(self) -> list[str]:
        opts = self._options
        if not opts.uses_application_credential:
            return []
        conn = self._connection()
        with self._translated("reading the application credential"):
            cred = conn.identity.get_application_credential(
                conn.current_user_id, opts.application_credential_id)
        expires = _parse_time(cred.expires_at)
        if expires is None:
            return []
        days = (expires - datetime.now(timezone.utc).timestamp()) / 86400
        if days < 0:
            return [f"application credential {opts.application_credential_id} has expired"]
        if days <= CREDENTIAL_WARN_DAYS:
            return [f"application credential {opts.application_credential_id} expires in "
                    f"{days:.1f} days ({cred.expires_at})"]
        return []

    def _quota_warnings(self) -> list[str]:
        conn = self._connection()
        with self._translated("reading quota usage"):
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


def _widen_connection_pool(conn: Any) -> None:
    """Let the reconciler's worker threads each keep a connection instead of discarding."""
    adapter = getattr(getattr(conn, "session", None), "session", None)
    if adapter is None:
        return
    from keystoneauth1.session import TCPKeepAliveAdapter

    for prefix in ("http://", "https://"):
        adapter.mount(prefix, TCPKeepAliveAdapter(pool_maxsize=32))
