"""What the driver sends Nova: server create bodies, tags, metadata and listing queries.

Why a module of its own: the tags and metadata are how vcyclectl recognises its own servers
(docs/clouds/openstack.md, "Which servers are ours"), so the code that writes them and the
queries that select by them sit side by side, as pure functions of a spec and the options.
Look-ups the body needs (image, flavor and network ids, the zone) are the driver's: it
passes their results in. No SDK import.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TypedDict, Union

from vcyclectl.clouds.contract import TAG_MACHINETYPE, TAG_SPACE, TAG_STATE_ID
from vcyclectl.clouds.openstack.options import OpenStackOptions
from vcyclectl.core.model import MachineSpec

#: Nova tags are at most 60 characters, without "/" or ",".
TAG_MAX = 60
#: Nova's limit on a metadata key and on a metadata value.
METADATA_MAX = 255

#: A `networks` value of a create: Nova's `auto` or `none`, or a list of `{"uuid": id}`.
NetworksArg = Union[str, list[dict[str, str]]]
#: A `GET /servers/detail` query: tags, name, limit and the paging marker.
Query = dict[str, Union[str, int]]


class ServerCreate(TypedDict, total=False):
    """The keyword arguments of `conn.compute.create_server()`."""

    name: str
    image_id: str
    flavor_id: str
    user_data: str
    metadata: dict[str, str]
    tags: list[str]
    networks: NetworksArg
    security_groups: list[dict[str, str]]
    key_name: str
    availability_zone: str


def tag(key: str, value: str) -> str:
    """A Nova tag for key=value; a value too long or with forbidden characters is hashed."""
    text = f"{key}={value}"
    if len(text) > TAG_MAX or "/" in text or "," in text:
        text = f"{key}=sha256:{hashlib.sha256(value.encode()).hexdigest()[:16]}"
    return text


def filter_tags(state_id: str, space: str) -> list[str]:
    """The tags that select this state directory's servers of this space."""
    return [tag(TAG_STATE_ID, state_id), tag(TAG_SPACE, space)]


def listing_query(tags: list[str], page_size: int | None) -> Query:
    """The first page's query of the listing; later pages add Nova's marker."""
    query: Query = {"tags": ",".join(tags)}
    if page_size is not None:
        query["limit"] = page_size
    return query


def name_query(name: str, tags: list[str]) -> Query:
    """The query that finds our server called `name`: Nova's name filter is a regex."""
    return {"name": "^" + name.replace(".", "\\.") + "$", "tags": ",".join(tags)}


def server_metadata(spec: MachineSpec, options: OpenStackOptions) -> dict[str, str]:
    """The configured metadata, then the spec's, then ours (which always wins), cut to size."""
    metadata = {**options.metadata, **spec.metadata,
                TAG_SPACE: spec.space, TAG_MACHINETYPE: spec.machinetype,
                TAG_STATE_ID: spec.state_id}
    return {str(k)[:METADATA_MAX]: str(v)[:METADATA_MAX] for k, v in metadata.items()}


def server_tags(spec: MachineSpec) -> list[str]:
    """The tags a listing selects by, plus the machinetype."""
    return [tag(TAG_STATE_ID, spec.state_id), tag(TAG_SPACE, spec.space),
            tag(TAG_MACHINETYPE, spec.machinetype)]


def server_create(spec: MachineSpec, options: OpenStackOptions, *, image_id: str,
                  flavor_id: str, networks: NetworksArg, zone: str | None) -> ServerCreate:
    """The create request for `spec`, given the ids the driver looked up."""
    body: ServerCreate = {
        "name": spec.name,
        "image_id": image_id,
        "flavor_id": flavor_id,
        "user_data": base64.b64encode(spec.user_data.encode()).decode(),
        "metadata": server_metadata(spec, options),
        "tags": server_tags(spec),
        "networks": networks,
    }
    if options.security_groups:
        body["security_groups"] = [{"name": sg} for sg in options.security_groups]
    if options.key_name:
        body["key_name"] = options.key_name
    if zone:
        body["availability_zone"] = zone
    return body
