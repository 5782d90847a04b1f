"""Names and shapes every part of the configuration checks the same way: the patterns for
space, machinetype and file names, and a mapping where the YAML must have one. Errors name
the file, the line and the dotted key."""

from __future__ import annotations

import re

from vcyclectl.config.yamlsource import Located, Origin
from vcyclectl.errors import ConfigError

SPACE_NAME = r"[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?"
MACHINETYPE_NAME = r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?"
PLAIN_FILE_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"


def mapping(parent: Located, key: str, dotted: str) -> Located:
    """`parent[key]` as a mapping (empty when absent), or an error where it is not one."""
    value = parent.get(key)
    if value is None:
        return Located(parent.where(key))
    if not isinstance(value, Located):
        where = parent.where(key)
        raise ConfigError("must be a mapping", file=where.file, line=where.line, key=dotted)
    return value


def check_name(name: str, pattern: str, where: Origin, key: str, doc: str) -> None:
    if not re.fullmatch(pattern, name):
        raise ConfigError(f"bad name {name!r}: {doc}", file=where.file, line=where.line, key=key)
