"""The machinetype library: one definition shared by many spaces (docs/machinetypes.md).

A site with five OpenStack projects and a commercial cloud runs the same machinetypes in
each; YAML merge keys are refused (they hide where a value came from), so the top-level
`machinetypes:` mapping holds shared definitions and a space's machinetype names one with
`from:`, overriding what differs:

    machinetypes:
      lhcb: {image: cernvm4, flavors: [m1.large], user_data: lhcb.user_data}
    spaces:
      spot.example.org:
        machinetypes:
          lhcb: {from: lhcb, flavors: [c5.2xlarge]}

The references are resolved here, on the merged YAML tree and before anything is
validated as a space, so everything after (validation, `config show`, `render`) sees
ordinary machinetypes. Each key keeps the file and line where it was written (the
library's or the override's), so an error still points at the line to fix, and a relative
path still resolves against the file that names it. Layers, later winning: top-level
`defaults:` → the space's `defaults:` → the library entry → the space's own keys.
"""

from __future__ import annotations

from typing import Callable

from vcyclectl.config.checks import MACHINETYPE_NAME, check_name, mapping
from vcyclectl.config.yamlsource import Located, deep_merge
from vcyclectl.errors import ConfigError, ConfigErrors

#: The top-level key holding the library, and the key a space's machinetype names it with.
LIBRARY_KEY = "machinetypes"
REFERENCE_KEY = "from"

#: Validates one library entry's keys (type, bounds, unknown keys) with a dotted prefix.
EntryCheck = Callable[[Located, str], None]


def expand_library(data: Located, check_entry: EntryCheck) -> Located:
    """`data` with every `from:` machinetype replaced by its library entry merged under it.

    Every problem (a bad entry, an unknown reference) is collected, so one `config check`
    reports all of them, each at its own file and line.
    """
    library = mapping(data, LIBRARY_KEY, LIBRARY_KEY)
    errors: list[ConfigError] = []
    for name, entry in library.items():
        try:
            _check_entry(library, name, entry, check_entry)
        except ConfigError as exc:
            errors.append(exc)
    ConfigErrors.raise_if_any(errors)
    spaces = data.get("spaces")
    if not isinstance(spaces, Located) or not _uses_library(spaces):
        return data
    new_spaces = _copy(spaces)
    for space_name, space in spaces.items():
        if not isinstance(space, Located) or not isinstance(space.get("machinetypes"), Located):
            continue
        try:
            new_spaces[space_name] = _expand_space(space, library, f"spaces.{space_name}.")
        except ConfigError as exc:
            errors.append(exc)
    ConfigErrors.raise_if_any(errors)
    out = _copy(data)
    out["spaces"] = new_spaces
    return out


def _check_entry(library: Located, name: str, entry: object, check_entry: EntryCheck) -> None:
    where = library.where(name)
    key = f"{LIBRARY_KEY}.{name}"
    check_name(name, MACHINETYPE_NAME, where, key,
               "machinetype names are lowercase letters, digits and '-', at most 40")
    if not isinstance(entry, Located):
        raise ConfigError("a library machinetype must be a mapping of settings",
                          file=where.file, line=where.line, key=key)
    if REFERENCE_KEY in entry:
        inner = entry.where(REFERENCE_KEY)
        raise ConfigError("a library machinetype cannot itself use `from:` (one level only, "
                          "so every value has one place it comes from)", file=inner.file,
                          line=inner.line, key=f"{key}.{REFERENCE_KEY}")
    check_entry(entry, key + ".")


def _uses_library(spaces: Located) -> bool:
    return any(isinstance(mt, Located) and REFERENCE_KEY in mt
               for space in spaces.values() if isinstance(space, Located)
               for mt in (space.get("machinetypes") or {}).values())


def _expand_space(space: Located, library: Located, prefix: str) -> Located:
    mts = space["machinetypes"]
    new_mts = _copy(mts)
    errors: list[ConfigError] = []
    for mt_name, node in mts.items():
        if isinstance(node, Located) and REFERENCE_KEY in node:
            try:
                new_mts[mt_name] = resolve(node, library, f"{prefix}machinetypes.{mt_name}")
            except ConfigError as exc:
                errors.append(exc)
    ConfigErrors.raise_if_any(errors)
    out = _copy(space)
    out["machinetypes"] = new_mts
    return out


def resolve(node: Located, library: Located, key: str) -> Located:
    """One machinetype naming a library entry: the entry with the node's own keys over it."""
    name = node[REFERENCE_KEY]
    where = node.where(REFERENCE_KEY)
    if not isinstance(name, str) or name not in library:
        known = ", ".join(sorted(library)) or "none: add a top-level `machinetypes:` mapping"
        raise ConfigError(f"no machinetype {name!r} in the top-level machinetypes library "
                          f"(it has: {known})", file=where.file, line=where.line,
                          key=f"{key}.{REFERENCE_KEY}")
    overrides = Located(node.origin)
    for k, value in node.items():
        if k != REFERENCE_KEY:
            overrides[k] = value
            overrides.key_origins[k] = node.where(k)
    merged = deep_merge(library[name], overrides)
    merged.origin = node.origin  # "is required" and the like point at the space's entry
    return merged


def _copy(node: Located) -> Located:
    """A shallow copy that keeps every key's origin: the tree read from files is shared."""
    out = Located(node.origin)
    out.update(node)
    out.key_origins.update(node.key_origins)
    return out
