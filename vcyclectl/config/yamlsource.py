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


#: Values built from one file at the most. YAML aliases share nodes, so a few hundred bytes
#: can stand for billions of values ("billion laughs"); a real config has a few thousand.
MAX_VALUES = 200_000
_STANDARD_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq",
                            "tag:yaml.org,2002:str", "tag:yaml.org,2002:int",
                            "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool",
                            "tag:yaml.org,2002:null", "tag:yaml.org,2002:timestamp",
                            "tag:yaml.org,2002:merge", "tag:yaml.org,2002:binary"})


class _Builder:
    """Turns one file's node graph into `Located` values, bounded: a value that contains
    itself through an alias, more than `MAX_VALUES` values, or a tag we do not know are
    `ConfigError`s with the file and line, never a hang or an internal error."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.built = 0
        self.ancestors: set[int] = set()
        self.loader = _Loader("")

    def close(self) -> None:
        self.loader.dispose()

    def error(self, message: str, node: yaml.Node) -> ConfigError:
        return ConfigError(message, file=self.file, line=node.start_mark.line + 1)

    def build(self, node: yaml.Node) -> Any:
        self.built += 1
        if self.built > MAX_VALUES:
            raise self.error(f"more than {MAX_VALUES:,} values once YAML aliases are expanded "
                             "(an alias bomb?); write the values out, or use fewer aliases",
                             node)
        if node.tag not in _STANDARD_TAGS:
            raise self.error(f"unknown YAML tag {node.tag}", node)
        if isinstance(node, yaml.ScalarNode):
            # Let the safe constructor resolve ints, floats, bools, nulls, timestamps.
            try:
                return self.loader.construct_object(node, deep=True)
            except yaml.YAMLError as exc:
                raise self.error(f"not valid YAML: {getattr(exc, 'problem', exc)}",
                                 node) from None
        if id(node) in self.ancestors:
            raise self.error("a YAML alias refers to a value that contains it", node)
        self.ancestors.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node)
            assert isinstance(node, yaml.SequenceNode)
            return self.sequence(node)
        finally:
            self.ancestors.discard(id(node))

    def mapping(self, node: yaml.MappingNode) -> Located:
        out = Located(Origin(self.file, node.start_mark.line + 1))
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ConfigError("YAML merge keys (<<) are not supported", file=self.file,
                                  line=line)
            key = self.build(key_node)
            if not isinstance(key, str):
                raise ConfigError(f"keys must be strings, got {key!r}", file=self.file,
                                  line=line)
            if key in out:
                raise ConfigError("duplicate key", file=self.file, line=line, key=key)
            out[key] = self.build(value_node)
            out.key_origins[key] = Origin(self.file, line)
        return out

    def sequence(self, node: yaml.SequenceNode) -> LocatedList:
        seq = LocatedList(Origin(self.file, node.start_mark.line + 1))
        for item in node.value:
            seq.append(self.build(item))
            seq.item_origins.append(Origin(self.file, item.start_mark.line + 1))
        return seq


def _construct(node: yaml.Node, file: str) -> Any:
    builder = _Builder(file)
    try:
        return builder.build(node)
    finally:
        builder.close()


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
