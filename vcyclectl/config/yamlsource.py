"""YAML loading that remembers where every key came from.

Errors must name the file, the line and the key; PyYAML's plain loaders forget positions, so
we compose the node graph (C loader when present) and build `Located` mappings that carry
each key's origin. Deep-merging keeps the origin of whichever file set a key last.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vcyclectl.errors import ConfigError

try:  # the C loader is several times faster on large configs
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader


@dataclass(frozen=True)
class Origin:
    """Where a value was written: file and 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class Located(dict[str, Any]):
    """A mapping from YAML that knows the origin of itself and of each of its keys."""

    origin: Origin
    key_origins: dict[str, Origin]

    def __init__(self, origin: Origin) -> None:
        super().__init__()
        self.origin = origin
        self.key_origins = {}

    def where(self, key: str) -> Origin:
        return self.key_origins.get(key, self.origin)


class LocatedList(list[Any]):
    """A sequence from YAML that knows the origin of each item."""

    origin: Origin
    item_origins: list[Origin]

    def __init__(self, origin: Origin) -> None:
        super().__init__()
        self.origin = origin
        self.item_origins = []


def _construct(node: yaml.Node, file: str) -> Any:
    origin = Origin(file, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out = Located(origin)
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ConfigError("YAML merge keys (<<) are not supported", file=file,
                                  line=key_node.start_mark.line + 1)
            key = _construct(key_node, file)
            if not isinstance(key, str):
                raise ConfigError(f"keys must be strings, got {key!r}", file=file,
                                  line=key_node.start_mark.line + 1)
            if key in out:
                raise ConfigError("duplicate key", file=file, line=key_node.start_mark.line + 1,
                                  key=key)
            out[key] = _construct(value_node, file)
            out.key_origins[key] = Origin(file, key_node.start_mark.line + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = LocatedList(origin)
        for item in node.value:
            seq.append(_construct(item, file))
            seq.item_origins.append(Origin(file, item.start_mark.line + 1))
        return seq
    # Scalars: let the safe constructor resolve ints, floats, bools, nulls, timestamps.
    loader = _Loader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def load_file(path: Path) -> Located:
    """Parse one YAML file into a `Located` mapping (an empty file is an empty mapping)."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such file", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=file) from None
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(f"not valid YAML: {exc.problem or exc.context}", file=file,
                          line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=file) from None
    if node is None:
        return Located(Origin(file, 1))
    value = _construct(node, file)
    if not isinstance(value, Located):
        raise ConfigError("the top level must be a mapping of keys", file=file, line=1)
    return value


def deep_merge(base: Located, override: Located) -> Located:
    """Merge `override` into a copy of `base`: mappings merge, everything else replaces."""
    out = Located(base.origin)
    out.update(base)
    out.key_origins.update(base.key_origins)
    for key, value in override.items():
        old = out.get(key)
        if isinstance(old, Located) and isinstance(value, Located):
            out[key] = deep_merge(old, value)
        else:
            out[key] = value
        out.key_origins[key] = override.where(key)
    return out
