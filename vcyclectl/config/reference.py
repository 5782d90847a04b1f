"""The configuration reference (docs/config.md) and its JSON Schema, both generated from the
dataclasses the loader validates against, so a key exists in one place only: its field.

A key's type, default and bounds come from the field (`metadata` `min`/`max`/`pattern`); its
meaning from `metadata["doc"]`, else the `#:` comment above the field or the `#` comment on
its line, else `config.meanings`. A new field in any of these dataclasses appears in both
outputs with no change here; a new *block* (a key the loader parses by hand) is added to the
tree below. Regenerate after changing a config dataclass:

    python -m vcyclectl.config.reference > docs/config.md

(`tests/unit/test_config_reference.py` fails while docs/config.md is stale.)
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

from vcyclectl.config import schema
from vcyclectl.config.meanings import MEANINGS

#: Fields of a dataclass that are never written in YAML (the map key, what the loader adds).
_NOT_KEYS = frozenset({"name", "cloud_options", "origins"})


@dataclass(frozen=True)
class Block:
    """A YAML mapping: the fields of `classes`, plus keys the loader parses itself."""

    title: str
    classes: tuple[type, ...]
    about: str = ""
    extra: dict[str, "Child"] = field(default_factory=dict)
    skip: frozenset[str] = _NOT_KEYS
    #: Keys the loader requires although their field has a default.
    required: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Child:
    """A key holding a block: a single mapping, a mapping of named ones, or a list."""

    block: Block
    shape: Literal["one", "named", "list"] = "one"
    meaning: str = ""
    placeholder: str = "NAME"


def _cloud_blocks() -> dict[str, Block]:
    from vcyclectl.clouds.options import OPTIONS, options_class

    return {cloud: Block(f"{cloud}", (options_class(cloud),),
                         about=f"The `{cloud}:` block of a `cloud: {cloud}` space; a "
                               "machinetype's own block is merged over the space's.")
            for cloud in OPTIONS}


def tree() -> Block:
    """The whole configuration, top level first."""
    from vcyclectl.config.accounting import AccountingSettings
    from vcyclectl.config.load import _TopLevel
    from vcyclectl.config.policyload import _PolicySettings
    from vcyclectl.config.types import Machinetype, SpaceSettings

    accounting = Child(Block("accounting", (AccountingSettings,), about=(
        "APEL publishing (docs/accounting.md). May sit at the top level, in a space, in a "
        "`defaults:` block and in a machinetype; each is merged over the one before.")),
        meaning="APEL publishing settings (docs/accounting.md)")
    clouds = {name: Child(block, meaning=f"the `{name}` cloud's settings (only on a "
                                         f"`cloud: {name}` space)")
              for name, block in _cloud_blocks().items()}
    defaults = Block("defaults", (Machinetype, _space_defaults()), about=(
        "Machinetype settings every machinetype inherits: top-level `defaults:`, then the "
        "space's `defaults:`, then the machinetype itself, each merged over the one before."),
        extra={"accounting": accounting})
    machinetype = Block("machinetype", (Machinetype,), about=(
        "One kind of VM in a space (names: lowercase letters, digits and '-', at most 40). "
        "Every key may also come from `defaults:`."),
        extra={"accounting": accounting, **clouds,
               "vacuum_pipe": Child(Block("vacuum_pipe", ()), meaning=(
                   "a Vacuum Pipe URL or file: this entry becomes the pipe's machinetypes")),
               "from": Child(Block("from", ()), meaning=(
                   "the name of an entry of the top-level `machinetypes:` library this "
                   "machinetype starts from; its own keys override (docs/machinetypes.md)"))})
    library = Block("library machinetype", (Machinetype,), about=(
        "A shared machinetype definition in the top-level `machinetypes:` library; spaces "
        "name it with `from:` and override what differs (docs/machinetypes.md)."),
        extra={"accounting": accounting, **clouds})
    space = Block("space", (SpaceSettings,), about=(
        "One tenancy on one cloud endpoint and region (names: lowercase letters, digits, "
        "'.' and '-')."), required=frozenset({"cloud"}),
        extra={"defaults": Child(defaults, meaning="machinetype defaults for this space"),
               **clouds, "accounting": accounting,
               "machinetypes": Child(machinetype, "named", "the space's machinetypes",
                                     "MACHINETYPE")})
    return Block("top level", (_TopLevel, _PolicySettings), about=(
        "`/etc/vcyclectl/vcyclectl.yaml` and every `conf.d/*.yaml` beside it, deep-merged "
        "in name order."),
        extra={"accounting": accounting,
               "defaults": Child(defaults, meaning="machinetype defaults for every space"),
               "spaces": Child(space, "named", "the spaces, by name", "SPACE"),
               "machinetypes": Child(library, "named", "shared machinetype definitions "
                                     "that spaces name with `from:`", "MACHINETYPE")})


def _space_defaults() -> type:
    """The space settings a `defaults:` block may also hold (`SPACE_DEFAULT_KEYS`), as a
    dataclass of their own made from `SpaceSettings`' fields, so they stay defined once."""
    from vcyclectl.config.types import SPACE_DEFAULT_KEYS, SpaceSettings

    comments = _comments(SpaceSettings)
    fields = [(f.name, f.type, field(default=f.default, metadata={
        **f.metadata, "doc": f.metadata.get("doc") or comments.get(f.name, "")}))
        for f in dataclasses.fields(SpaceSettings) if f.name in SPACE_DEFAULT_KEYS]
    made: type = dataclasses.make_dataclass("SpaceDefaults", fields, frozen=True)
    made.__module__ = __name__
    return made


# -- one key ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Key:
    name: str
    tp: Any
    default: Any
    required: bool
    meta: typing.Mapping[str, Any]
    meaning: str


def keys(block: Block) -> list[Key]:
    """The block's keys in field order (its classes' fields, then the hand-parsed ones)."""
    out: list[Key] = []
    seen: set[str] = set()
    for cls in block.classes:
        hints = schema._hints(cls)
        comments = _comments(cls)
        for f in dataclasses.fields(cls):
            if f.name in block.skip or f.name in seen or f.metadata.get("internal"):
                continue
            seen.add(f.name)
            default: Any = dataclasses.MISSING
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            meaning = (f.metadata.get("doc") or comments.get(f.name)
                       or MEANINGS.get(f"{cls.__name__}.{f.name}", ""))
            out.append(Key(f.name, hints[f.name], default,
                           default is dataclasses.MISSING or f.name in block.required,
                           f.metadata, meaning))
    return out


def _comments(cls: type) -> dict[str, str]:
    """Per field, the `#:` lines above it or the `#` comment on its line."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    found: dict[str, str] = {}
    pending: list[str] = []
    for line in source.splitlines()[1:]:
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        match = re.match(r"\s{4}(\w+)\s*:", line)
        if match and not line.startswith(" " * 5):
            trailing = re.search(r"#\s*(?!type:|noqa)(.+)$", line)
            text = " ".join(pending) or (trailing.group(1).strip() if trailing else "")
            if text:
                found[match.group(1)] = text
        if not stripped.startswith("#"):
            pending = []
    return found


# -- JSON Schema -----------------------------------------------------------------------------
def json_schema() -> dict[str, Any]:
    """A JSON Schema (draft-07, what yaml-language-server reads best) for editors and tests."""
    defs: dict[str, Any] = {}
    root = _block_schema(tree(), defs)
    return {"$schema": "http://json-schema.org/draft-07/schema#",
            "title": "vcyclectl configuration", **root, "$defs": defs}


def _block_schema(block: Block, defs: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for key in keys(block):
        prop = _type_schema(key.tp, key.meta, defs)
        if key.meaning:
            prop = {**prop, "description": key.meaning}
        if not key.required:
            prop["default"] = _plain(key.default)
        properties[key.name] = prop
        if key.required:
            required.append(key.name)
    for name, child in block.extra.items():
        properties[name] = {**_child_schema(child, defs), "description": child.meaning}
    out: dict[str, Any] = {"type": "object", "properties": properties,
                           "additionalProperties": False}
    if block.about:
        out["description"] = block.about
    if required:
        out["required"] = required
    return out


def _child_schema(child: Child, defs: dict[str, Any]) -> dict[str, Any]:
    if not child.block.classes and not child.block.extra:
        return {"type": "string"}
    ref = _ref(child.block, defs)
    if child.shape == "named":
        return {"type": ["object", "null"], "additionalProperties": ref}
    if child.shape == "list":
        return {"type": "array", "items": ref}
    return {"anyOf": [ref, {"type": "null"}]}


def _ref(block: Block, defs: dict[str, Any]) -> dict[str, Any]:
    """A reference to the block's definition, made the first time it is named."""
    name = re.sub(r"\W", "_", block.title)
    if name not in defs:
        defs[name] = {}  # placeholder first: blocks may name each other
        defs[name] = _block_schema(block, defs)
    return {"$ref": f"#/$defs/{name}"}


def _type_schema(tp: Any, meta: typing.Mapping[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """What the loader (`config.schema`) accepts for a field of type `tp`."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(tp) if a is not type(None)]
        return {"anyOf": [_type_schema(inner[0], meta, defs), {"type": "null"}]}
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if tp is bool:
        return {"type": "boolean"}
    if tp in (int, float):
        out: dict[str, Any] = {"type": "integer" if tp is int else "number"}
        if meta.get("min") is not None:
            out["minimum"] = meta["min"]
        if meta.get("max") is not None:
            out["maximum"] = meta["max"]
        return out
    if tp is str:
        if meta.get("pattern"):  # the loader matches the whole value
            return {"type": "string", "pattern": f"^(?:{meta['pattern']})$"}
        return {"type": ["string", "number"]}  # numbers are accepted as strings
    if origin in (list, tuple):
        item = _type_schema(get_args(tp)[0], meta, defs)
        if "$ref" in item or item.get("type") == "object":
            return {"type": "array", "items": item}
        return {"anyOf": [{"type": "array", "items": item}, item]}  # one value: a 1-item list
    if origin is dict:
        values = _type_schema(get_args(tp)[1], {**meta, "_named": True}, defs)
        return {"type": "object", "additionalProperties": values}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _ref(nested_block(tp, named=meta.get("_named", False)), defs)
    return {}


_NESTED: dict[tuple[type, bool], Block] = {}


def nested_block(cls: type, *, named: bool) -> Block:
    """The block of a dataclass held in a field (a flavor, a community): in a mapping its
    name is the mapping's key, in a list it may carry `name:` itself."""
    if (cls, named) not in _NESTED:
        _NESTED[(cls, named)] = Block(cls.__name__, (cls,), about=_doc(cls),
                                      skip=_NOT_KEYS if named else _NOT_KEYS - {"name"})
    return _NESTED[(cls, named)]


def _doc(cls: type) -> str:
    """The class docstring on one line; not the signature a dataclass gets without one."""
    text = " ".join((cls.__doc__ or "").split())
    return "" if text.startswith(cls.__name__ + "(") else text


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def main() -> None:
    """`python -m vcyclectl.config.reference`: docs/config.md on stdout."""
    from vcyclectl.config.referencedoc import markdown

    print(markdown(tree()), end="")


if __name__ == "__main__":
    main()
