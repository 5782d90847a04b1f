"""What the driver reads from Nova: the paged server listing, and servers and flavors as ours.

Why a module of its own: paging is where a listing can silently come back short, and the
conversion of a server is where a wrong field would mislead the planner, so each is written
once, here. `pages()` is the only code that walks `/servers/detail`; `to_machine()` is the
only code that turns a Nova server into a `CloudMachine` (its state through
`states.machine_state()`). Errors are not handled here: the driver runs these inside its
error translator.

The Protocols below name the fields of openstacksdk's resources the driver reads
(openstacksdk ships no type information).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Protocol
from urllib.parse import parse_qs, urlsplit

from openstack import exceptions as sdk_exc

from vcyclectl.clouds.contract import TAG_MACHINETYPE, TAG_SPACE, TAG_STATE_ID
from vcyclectl.clouds.openstack.requests import Query
from vcyclectl.clouds.openstack.states import machine_state
from vcyclectl.core.model import CloudMachine, Flavor, MachineState

if TYPE_CHECKING:
    from openstack.connection import Connection
    from openstack.compute.v2._proxy import Proxy as ComputeProxy

#: Server fields never kept in `CloudMachine.raw` (admins see user_data, which may hold tokens).
RAW_EXCLUDED = frozenset({"user_data", "OS-EXT-SRV-ATTR:user_data", "admin_password",
                          "adminPass"})


class NovaServer(Protocol):
    """The fields of an openstacksdk `Server` the driver reads."""

    id: str
    name: str
    status: str | None
    task_state: str | None
    flavor: Mapping[str, Any] | None
    metadata: Mapping[str, str] | None
    fault: Mapping[str, Any] | None
    addresses: Mapping[str, list[Mapping[str, Any]]] | None
    created_at: str | None
    launched_at: str | None
    terminated_at: str | None
    availability_zone: str | None

    def to_dict(self, *, computed: bool = ...) -> dict[str, Any]: ...


class NovaFlavor(Protocol):
    """The fields of an openstacksdk `Flavor` the driver reads."""

    id: str
    name: str
    vcpus: int
    ram: int | None


def parse_time(value: object) -> float | None:
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


# -- paging ------------------------------------------------------------------------------


def newest_microversion(compute: ComputeProxy) -> str:
    """The newest microversion both sides know, or "" (2.26+ filters by tag, 2.47+ embeds
    the flavor, so listing needs no flavor look-ups)."""
    from openstack import utils
    from openstack.compute.v2.server import Server

    return str(utils.maximum_supported_microversion(compute, Server._max_microversion) or "")


def next_page_query(body: Mapping[str, Any]) -> Query | None:
    """The query of Nova's `next` link, or None on the last page.

    Only the link's query (the marker) is used, since clouds behind a proxy often put the
    wrong host in the link's URL.
    """
    next_href = next((link.get("href") for link in body.get("servers_links", [])
                      if link.get("rel") == "next"), None)
    if not next_href:
        return None
    return {k: v[-1] for k, v in parse_qs(urlsplit(next_href).query).items()}


def pages(conn: Connection, query: Query, microversion: str | None) -> Iterator[NovaServer]:
    """`GET /servers/detail`, page after page, following Nova's `next` links.

    Not `conn.compute.servers(limit=...)`: with a limit, openstacksdk asks for one more
    page after the last, short one. A cloud whose `max_limit` is below the page size still
    gets every page: Nova links to the next page whenever it cut one short.
    """
    from openstack.compute.v2.server import Server

    compute = conn.compute
    page: Query | None = dict(query)
    while page is not None:
        response = compute.get("/servers/detail", params=page, microversion=microversion)
        sdk_exc.raise_from_response(response)
        body = response.json()
        for raw in body.get("servers", []):
            yield Server.existing(microversion=microversion, connection=conn, **raw)
        page = next_page_query(body)


# -- servers and flavors as ours ---------------------------------------------------------


def is_ours(server: NovaServer, state_id: str, space: str) -> bool:
    """Tags chose the server; the full values in its metadata must agree."""
    metadata = server.metadata or {}
    return metadata.get(TAG_STATE_ID) == state_id and metadata.get(TAG_SPACE) == space


def failure_reason(state: MachineState, fault: Mapping[str, Any]) -> str | None:
    """Why a failed server failed: Nova's fault message, or a generic reason."""
    if state is not MachineState.FAILED:
        return None
    return str(fault.get("message") or "server in ERROR state").strip()


def to_machine(server: NovaServer, space: str, processors: int) -> CloudMachine:
    """The single place a Nova server becomes a CloudMachine.

    `processors` is the driver's: the embedded flavor's vCPUs, or its flavor table's.
    """
    state = machine_state(server.status, server.task_state)
    flavor = server.flavor or {}
    metadata = server.metadata or {}
    addresses = tuple(str(a.get("addr")) for nets in (server.addresses or {}).values()
                      for a in nets if a.get("addr"))
    raw = {k: v for k, v in server.to_dict(computed=False).items() if k not in RAW_EXCLUDED}
    return CloudMachine(
        id=str(server.id), name=str(server.name), space=space,
        machinetype=str(metadata.get(TAG_MACHINETYPE, "")), state=state,
        processors=processors, created_at=parse_time(server.created_at),
        started_at=parse_time(server.launched_at),
        stopped_at=parse_time(server.terminated_at),
        flavor=flavor.get("original_name") or flavor.get("name") or flavor.get("id"),
        zone=server.availability_zone or None, addresses=addresses,
        state_reason=failure_reason(state, server.fault or {}), raw=raw)


def to_flavor(flavor: NovaFlavor) -> Flavor:
    """A Nova flavor as a size the planner can pick."""
    return Flavor(name=str(flavor.name), processors=int(flavor.vcpus),
                  memory_mb=int(flavor.ram) if flavor.ram is not None else None)
