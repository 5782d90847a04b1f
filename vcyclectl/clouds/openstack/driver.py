"""The OpenStack driver: Nova servers through openstacksdk, the contract's four calls.

Imported only when a space says `cloud: openstack` (see `vcyclectl.clouds.registry`), so
it alone pays for openstacksdk and keystoneauth.

How it finds its own servers: by **server tags**, filtered by Nova (`GET /servers/detail?
tags=...`, microversion 2.26+). Each server carries two tags, `vcyclectl-state-id=<id>` and
`vcyclectl-space=<space>`, so one paginated listing returns this state directory's machines
of this space and nothing else, whatever else lives in the project. Nova cannot filter a
listing by metadata for ordinary users, which is why tags, not metadata, do the selecting;
metadata carries the same facts plus the machinetype, in full, for people and for `inspect`
(and is checked again on every listed server, in case a tag had to be shortened).

This module keeps what needs the driver's per-pass memory (the connection, look-ups cached
for the pass, the zone spread, the names already attempted) and delegates the rest, one home
per rule: `states` (the Nova status table), `errors` (the one exception translator),
`requests` (create bodies, tags, metadata, queries), `servers` (paging and the one server to
`CloudMachine` conversion), `connection` (authentication) and `health` (status warnings).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace
from typing import Any, Mapping

import openstack.connection

from vcyclectl import log
from vcyclectl.clouds.contract import CloudContext
from vcyclectl.clouds.openstack import health, requests, servers
from vcyclectl.clouds.openstack.connection import connect
from vcyclectl.clouds.openstack.errors import ErrorTranslator
from vcyclectl.clouds.openstack.options import SPECIAL_NETWORKS, OpenStackOptions, looks_like_id
from vcyclectl.clouds.openstack.servers import NovaFlavor, NovaServer
from vcyclectl.core.model import CloudMachine, Flavor, MachineSpec, MachineState
from vcyclectl.errors import CloudError, Fatal, Transient

#: Failed servers listed without their fault whose fault one listing may look up.
FAULT_LOOKUPS = 10


class OpenStackCloud:
    """One space on one OpenStack project; builds its connection on first use.

    One instance serves one pass: look-ups (images, networks, flavors) are cached for its
    lifetime, so a new pass sees a re-uploaded image. Safe to share between the
    reconciler's worker threads: the connection, the image and
    network look-ups and the flavor table are made once, under a lock, and then only read.
    """

    def __init__(self, context: CloudContext[OpenStackOptions]) -> None:
        if not isinstance(context.options, OpenStackOptions):
            raise Fatal(f"space {context.space}: the openstack driver needs an `openstack:` block")
        self._context = context
        self._options: OpenStackOptions = context.options
        self._space = context.space
        self._errors = ErrorTranslator(context.space, context.options)
        self._lock = threading.Lock()
        self._lookup_lock = threading.RLock()
        self._conn: openstack.connection.Connection | None = None
        self._images: dict[str, str] = {}
        self._networks: dict[str, str] = {}
        self._flavors: list[NovaFlavor] | None = None
        self._microversion: str | None = None
        self._fault_lookups = 0
        self._attempted: set[str] = set()
        self._zone_use: Counter[str] = Counter()
        self._filter_tags = requests.filter_tags(context.state_id, context.space)

    # -- the contract ------------------------------------------------------------------

    def list_machines(self) -> list[CloudMachine]:
        """Every page of this space's servers in one listing; any failure is IncompleteListing."""
        query = requests.listing_query(self._filter_tags, self._options.page_size)
        with self._errors.translated("listing servers", listing=True):
            listed = list(self._servers(query))
        machines = [self._with_fault(self._to_machine(s)) for s in listed if self._is_ours(s)]
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
        body = self._create_request(spec)
        conn = self._connection()
        try:
            with self._errors.translated(f"creating {spec.name}"):
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
        with self._errors.translated(f"deleting {machine.name}"):
            conn.compute.delete_server(machine.id, ignore_missing=True)
        log.debug("server deleted", space=self._space, machine=machine.name, id=machine.id)

    def flavors(self) -> list[Flavor]:
        """The configured flavors in configured order (all the project sees if none)."""
        table = {f.name: f for f in self._flavor_table()}
        wanted = self._configured_flavor_names()
        if not wanted:
            return sorted((servers.to_flavor(f) for f in table.values()),
                          key=lambda f: (f.processors, f.memory_mb or 0, f.name))
        missing = [name for name in wanted if name not in table]
        if missing:
            raise Fatal(f"space {self._space}: flavor {missing[0]!r} does not exist in this "
                        f"project (it has: {', '.join(sorted(table)) or 'none'}); check the "
                        f"space's `flavors:`")
        return [servers.to_flavor(table[name]) for name in wanted]

    # -- optional extras ---------------------------------------------------------------

    def health(self) -> list[str]:
        """Warnings for `vcyclectl status`: credential expiry and quota headroom."""
        warnings: list[str] = []
        try:
            conn = self._connection()
            warnings += health.credential_warnings(conn, self._options, self._errors)
            warnings += health.quota_warnings(conn, self._errors)
        except CloudError as exc:
            warnings.append(f"could not check the project's health: {exc}")
        return warnings

    @property
    def connection(self) -> openstack.connection.Connection:
        """The openstacksdk connection (for diagnostics and benchmarks; not for decisions)."""
        return self._connection()

    # -- the connection and the listing ------------------------------------------------

    def _connection(self) -> openstack.connection.Connection:
        with self._lock:
            if self._conn is None:
                self._conn = connect(self._options, self._errors)
            return self._conn

    def _servers(self, query: requests.Query) -> list[NovaServer]:
        """Every page of a server query (call it inside the error translator)."""
        conn = self._connection()
        return list(servers.pages(conn, query, self._list_microversion(conn)))

    def _list_microversion(self, conn: openstack.connection.Connection) -> str | None:
        """The listing's microversion, found once per driver."""
        with self._lock:
            if self._microversion is None:
                self._microversion = servers.newest_microversion(conn.compute)
            return self._microversion or None

    def _is_ours(self, server: NovaServer) -> bool:
        return servers.is_ours(server, self._context.state_id, self._space)

    def _to_machine(self, server: NovaServer) -> CloudMachine:
        return servers.to_machine(server, self._space, self._processors(server.flavor or {}))

    def _find(self, name: str) -> CloudMachine | None:
        """Our live server called `name`, or None."""
        with self._errors.translated(f"looking for {name}"):
            found = self._servers(requests.name_query(name, self._filter_tags))
        for server in found:
            machine = self._to_machine(server)
            if (self._is_ours(server) and machine.name == name
                    and machine.state is not MachineState.GONE):
                return machine
        return None

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
            with self._errors.translated(f"reading the fault of {machine.name}"):
                server = self._connection().compute.get_server(machine.id)
        except CloudError:
            return machine
        message = (server.fault or {}).get("message")
        return replace(machine, state_reason=str(message).strip()) if message else machine

    # -- look-ups for a create, made once per driver instance (one pass) ----------------

    def _create_request(self, spec: MachineSpec) -> requests.ServerCreate:
        if not spec.image:
            raise Fatal(f"space {self._space}: machinetype {spec.machinetype} has no image")
        options: OpenStackOptions = self._context.options_for(spec.machinetype)
        return requests.server_create(
            spec, options, image_id=self._image_id(spec.image),
            flavor_id=self._flavor_id(spec.flavor), networks=self._networks_arg(options.network),
            zone=self._pick_zone(list(options.availability_zones)))

    def _image_id(self, image: str) -> str:
        """An image name resolved once per driver (pass); an id is used as given."""
        if looks_like_id(image):
            return image
        with self._lookup_lock:  # held while resolving: concurrent creates wait, not repeat
            if image not in self._images:
                conn = self._connection()
                with self._errors.translated(f"looking up image {image!r}"):
                    found = [i for i in conn.image.images(name=image) if i.status == "active"]
                if not found:
                    raise Fatal(f"space {self._space}: no active image named {image!r}; check "
                                f"the machinetype's `image:`")
                # Sites re-upload images under the same name; the newest is the one meant.
                self._images[image] = str(max(found, key=lambda i: str(i.created_at or "")).id)
            return self._images[image]

    def _networks_arg(self, network: str) -> requests.NetworksArg:
        if network in SPECIAL_NETWORKS:
            return network
        if looks_like_id(network):
            return [{"uuid": network}]
        with self._lookup_lock:
            if network not in self._networks:
                conn = self._connection()
                with self._errors.translated(f"looking up network {network!r}"):
                    found = list(conn.network.networks(name=network))
                if len(found) != 1:
                    what = "no network" if not found else f"{len(found)} networks"
                    raise Fatal(f"space {self._space}: {what} named {network!r}; check "
                                f"`network:` (a name, an id, `auto` or `none`)")
                self._networks[network] = str(found[0].id)
            return [{"uuid": self._networks[network]}]

    def _flavor_table(self) -> list[NovaFlavor]:
        with self._lookup_lock:
            if self._flavors is None:
                conn = self._connection()
                with self._errors.translated("listing flavors"):
                    self._flavors = list(conn.compute.flavors(details=True))
            return self._flavors

    def _configured_flavor_names(self) -> list[str]:
        names: list[str] = list(self._options.flavors)
        for options in self._context.machinetype_options.values():
            names += [n for n in getattr(options, "flavors", []) if n not in names]
        return names

    def _flavor_id(self, flavor: Flavor) -> str:
        for candidate in self._flavor_table():
            if candidate.name == flavor.name:
                return str(candidate.id)
        if looks_like_id(flavor.name) or flavor.name.isdigit():
            return flavor.name
        raise Fatal(f"space {self._space}: flavor {flavor.name!r} does not exist in this project")

    def _processors(self, flavor: Mapping[str, Any]) -> int:
        """vCPUs from the embedded flavor (2.47+), else from the flavor table by id."""
        if flavor.get("vcpus") is not None:
            return int(flavor["vcpus"])
        for candidate in self._flavor_table():
            if str(candidate.id) == str(flavor.get("id")):
                return int(candidate.vcpus)
        return 0

    def _pick_zone(self, zones: list[str]) -> str | None:
        """The configured zone with the fewest of our machines (ties: configured order)."""
        if not zones:
            return None
        with self._lock:
            zone = min(zones, key=lambda z: (self._zone_use[z], zones.index(z)))
            self._zone_use[zone] += 1
        return zone
