"""Load, merge and validate the YAML configuration into the frozen dataclasses of `types`.

Parsed once at the boundary: everything after this works with typed values, never string
maps. Every error names the file, the line and the dotted key. Loading reads the config
files, and, for `vacuum_pipe:` entries, local pipe files and the last good copy of each
fetched pipe that a reconcile pass left in the state directory (read only; see `pipes`).

Machinetype settings resolve in layers, each a deep merge over the one before:
top-level `defaults:` → the space's `defaults:` → the machinetype. A machinetype may also
carry a block named after its space's cloud (e.g. `local:`), merged over the space's block.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from vcyclectl.config import schema
from vcyclectl.config.checks import MACHINETYPE_NAME, SPACE_NAME, check_name, mapping
from vcyclectl.config.policy import POLICY_KEYS
from vcyclectl.config.policyload import parse_policy
from vcyclectl.config.types import (CLOUDS, CONFIG_ENV, DEFAULT_CONFIG, SPACE_DEFAULT_KEYS,
                                    Config, Machinetype, Space, SpaceSettings)
from vcyclectl.config.yamlsource import Located, deep_merge, load_file
from vcyclectl.errors import ConfigError, ConfigErrors


@dataclass(frozen=True)
class _TopLevel:
    state_dir: str = field(default="/var/lib/vcyclectl", metadata={"path": True})
    feedback_url: str | None = field(default=None, metadata={
        "pattern": r"https?://[^\s]+", "pattern_doc": "an http:// or https:// URL"})
    joboutputs_keep_seconds: float = field(default=86400.0, metadata={"min": 0})
    max_clock_skew_seconds: float = field(default=60.0, metadata={"min": 0})
    metrics_textfile: str | None = field(default=None, metadata={"path": True})
    vacmon_hostport: tuple[str, ...] = field(default=(), metadata={
        "pattern": r"[A-Za-z0-9.-]+:[0-9]{1,5}", "pattern_doc": "host.domain:port"})
    journal_max_bytes: int = field(default=64 * 1024 * 1024, metadata={"min": 4096})
    journal_keep: int = field(default=4, metadata={"min": 1, "max": 1000})


_MT_SPECIAL = frozenset(CLOUDS) | {"name", "cloud_options", "accounting"} | SPACE_DEFAULT_KEYS
_SPACE_SPECIAL = frozenset(CLOUDS) | {"defaults", "machinetypes", "accounting"}


def config_files(path: Path | None) -> list[Path]:
    """The main file (flag, then `$VCYCLECTL_CONFIG`, then the default) and its conf.d/."""
    main = path or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else DEFAULT_CONFIG)
    files = [main]
    conf_d = main.parent / "conf.d"
    if conf_d.is_dir():
        files.extend(sorted(conf_d.glob("*.yaml")))
    return files


def load(path: Path | None = None, *, state_dir: Path | None = None) -> Config:
    """Read, merge and validate; `state_dir` (the `--state-dir` flag) overrides the file."""
    files = config_files(path)
    merged: Located | None = None
    for file in files:
        data = load_file(file)
        merged = data if merged is None else deep_merge(merged, data)
    assert merged is not None
    return build(merged, files=tuple(str(f) for f in files), state_dir=state_dir)


def build(data: Located, *, files: tuple[str, ...] = (), state_dir: Path | None = None) -> Config:
    """Validate a merged tree into a `Config`."""
    data = _expand_library(data)
    errors: list[ConfigError] = []  # top level, defaults and every space: all reported at once
    try:
        top = schema.from_mapping(_TopLevel, data, ignore=frozenset(
            {"defaults", "spaces", "accounting", "machinetypes"}) | POLICY_KEYS)
    except ConfigError as exc:
        errors.append(exc)
        top = _TopLevel()
    if state_dir is None and Path(top.state_dir).exists() and not Path(top.state_dir).is_dir():
        where = data.where("state_dir")
        raise ConfigError(f"{top.state_dir} is a file, not a directory", file=where.file,
                          line=where.line, key="state_dir")
    defaults = mapping(data, "defaults", "defaults")
    try:
        _check_machinetype_keys(defaults, "defaults.")
    except ConfigError as exc:
        errors.append(exc)
    spaces_node = mapping(data, "spaces", "spaces")
    spaces: dict[str, Space] = {}
    for name, node in spaces_node.items():
        try:
            check_name(name, SPACE_NAME, spaces_node.where(name), "spaces." + name,
                        "space names are lowercase letters, digits, '.' and '-'")
            if not isinstance(node, Located):
                raise ConfigError("a space must be a mapping of settings",
                                  file=spaces_node.where(name).file,
                                  line=spaces_node.where(name).line, key=f"spaces.{name}")
            spaces[name] = _space(name, node, defaults, state_dir=state_dir if state_dir
                                  is not None else Path(top.state_dir))
        except ConfigError as exc:
            errors.append(exc)
    ConfigErrors.raise_if_any(_once_each(errors))
    if top.feedback_url is None:
        _require_feedback_url(spaces, spaces_node)
    return Config(
        state_dir=state_dir if state_dir is not None else Path(top.state_dir),
        spaces=spaces,
        feedback_url=top.feedback_url,
        joboutputs_keep_seconds=top.joboutputs_keep_seconds,
        max_clock_skew_seconds=top.max_clock_skew_seconds,
        metrics_textfile=top.metrics_textfile, vacmon_hostport=top.vacmon_hostport,
        journal_max_bytes=top.journal_max_bytes,
        journal_keep=top.journal_keep,
        files=files,
        **_policy(data, spaces),
        accounting=_accounting(data, spaces),
    )


def _once_each(errors: list[ConfigError]) -> list[ConfigError]:
    """Each mistake once: a typo in `defaults:` is seen again in every machinetype that
    inherits it, at the same file and line."""
    seen: set[tuple[str | None, int | None, str]] = set()
    out: list[ConfigError] = []
    for error in ConfigErrors.flatten(errors):
        mark = (error.file, error.line, error.message)
        if mark not in seen:
            seen.add(mark)
            out.append(error)
    return out


def _accounting(data: Located, spaces: dict[str, Space]) -> Any:
    """The `accounting:` blocks (docs/accounting.md), parsed only when there are any."""
    from vcyclectl.config.accounting import parse_accounting

    return parse_accounting(data, list(spaces))


def _require_feedback_url(spaces: dict[str, Space], spaces_node: Located) -> None:
    """On a real cloud a VM's heartbeat can only reach us through `vcyclectl serve`."""
    for name, space in spaces.items():
        if space.cloud == "local":
            continue
        for mt in space.machinetypes.values():
            if mt.heartbeat_checked:
                where = spaces_node.where(name)
                raise ConfigError(
                    f"machinetype {mt.name} checks heartbeats on a {space.cloud} space, which "
                    "needs feedback_url (the public URL of `vcyclectl serve`) at the top level",
                    file=where.file, line=where.line,
                    key=f"spaces.{name}.machinetypes.{mt.name}.heartbeat_seconds")


def _expand_library(data: Located) -> Located:
    """The top-level `machinetypes:` library merged into the spaces that name it (`library`)."""
    from vcyclectl.config.library import expand_library

    return expand_library(data, lambda node, prefix: schema.from_mapping(
        Machinetype, node, prefix=prefix, ignore=(_MT_SPECIAL - {"name"}) | {"vacuum_pipe"}))


def _check_machinetype_keys(node: Located, prefix: str) -> None:
    """Validate a `defaults:` block on its own, so a typo there is caught where it was made."""
    schema.from_mapping(Machinetype, node, prefix=prefix, ignore=_MT_SPECIAL - {"name"})


def _space(name: str, node: Located, top_defaults: Located,
           state_dir: Path | None = None) -> Space:
    prefix = f"spaces.{name}."
    if "cloud" not in node:
        # No silent default: a space that forgot `cloud:` once ran on the simulated local
        # cloud, and its operator saw "created 8" while nothing was created anywhere real.
        raise ConfigError(f"a space must say which cloud it is on: cloud: "
                          f"{' | '.join(CLOUDS)}", file=node.origin.file,
                          line=node.origin.line, key=prefix + "cloud")
    space_defaults = mapping(node, "defaults", prefix + "defaults")
    settings = schema.from_mapping(SpaceSettings, _with_space_defaults(
        node, deep_merge(top_defaults, space_defaults)), prefix=prefix, ignore=_SPACE_SPECIAL)
    for other in CLOUDS:
        if other != settings.cloud and other in node:
            where = node.where(other)
            raise ConfigError(f"this space's cloud is {settings.cloud!r}, so a {other!r} block "
                              "does not apply", file=where.file, line=where.line,
                              key=prefix + other)
    _check_machinetype_keys(space_defaults, prefix + "defaults.")
    defaults = deep_merge(top_defaults, space_defaults)
    cloud_block = mapping(node, settings.cloud, prefix + settings.cloud)
    options_cls = _options_class(settings.cloud, node, prefix)
    cloud_options = schema.from_mapping(options_cls, cloud_block,
                                        prefix=prefix + settings.cloud + ".")
    mts_node = mapping(node, "machinetypes", prefix + "machinetypes")
    mts_node, pipes = _expand_vacuum_pipes(mts_node, defaults, prefix, state_dir)
    machinetypes: dict[str, Machinetype] = {}
    errors: list[ConfigError] = []
    for mt_name, mt_node in mts_node.items():
        mt_key = f"{prefix}machinetypes.{mt_name}"
        where = mts_node.where(mt_name)
        try:
            check_name(mt_name, MACHINETYPE_NAME, where, mt_key,
                        "machinetype names are lowercase letters, digits and '-', at most 40")
            if mt_node is None:
                mt_node = Located(where)
            if not isinstance(mt_node, Located):
                raise ConfigError("a machinetype must be a mapping of settings",
                                  file=where.file, line=where.line, key=mt_key)
            machinetypes[mt_name] = _machinetype(mt_name, mt_node, defaults, settings.cloud,
                                                 cloud_block, options_cls, mt_key)
        except ConfigError as exc:
            errors.append(exc)
    ConfigErrors.raise_if_any(errors)
    return Space(
        **{f.name: getattr(settings, f.name) for f in fields(SpaceSettings)},
        name=name,
        machinetypes=machinetypes,
        cloud_options=cloud_options,
        origin=node.origin,
        pipes=pipes,
    )


def _with_space_defaults(node: Located, defaults: Located) -> Located:
    """The space's mapping with the space settings its `defaults:` blocks give
    (`SPACE_DEFAULT_KEYS`) beneath its own; where each was written is kept for errors."""
    given = Located(node.origin)
    for key in SPACE_DEFAULT_KEYS & defaults.keys():
        given[key] = defaults[key]
        given.key_origins[key] = defaults.where(key)
    return deep_merge(given, node) if given else node


def _expand_vacuum_pipes(mts_node: Located, defaults: Located, prefix: str,
                         state_dir: Path | None) -> tuple[Located, tuple[Any, ...]]:
    """Vacuum Pipes hook: `vacuum_pipe:` entries become the pipe's machinetypes.

    Each entry is first checked as a machinetype (plus `vacuum_pipe`), so a typo in it is
    reported at its own line even while the pipe has not been fetched yet.
    """
    if not any(isinstance(n, Located) and "vacuum_pipe" in n for n in mts_node.values()):
        return mts_node, ()
    from vcyclectl.config import pipeexpand

    for mt_name, mt_node in mts_node.items():
        if isinstance(mt_node, Located) and "vacuum_pipe" in mt_node:
            schema.from_mapping(Machinetype, deep_merge(defaults, mt_node),
                                prefix=f"{prefix}machinetypes.{mt_name}.",
                                ignore=(_MT_SPECIAL - {"name"}) | {"vacuum_pipe"})
    return pipeexpand.expand_entries(mts_node, state_dir=state_dir,
                                       key_prefix=f"{prefix}machinetypes.")


def _options_class(cloud: str, node: Located, prefix: str) -> type:
    from vcyclectl.clouds.options import options_class

    try:
        return options_class(cloud)
    except ConfigError as exc:
        where = node.where("cloud")
        raise ConfigError(exc.message, file=where.file, line=where.line,
                          key=prefix + "cloud") from None


def _machinetype(name: str, node: Located, defaults: Located, cloud: str, cloud_block: Located,
                 options_cls: type, key: str) -> Machinetype:
    for other in CLOUDS:
        if other != cloud and other in node:
            where = node.where(other)
            raise ConfigError(f"the space's cloud is {cloud!r}, so a {other!r} block does not "
                              "apply", file=where.file, line=where.line, key=f"{key}.{other}")
    for own in SPACE_DEFAULT_KEYS & node.keys():
        where = node.where(own)
        raise ConfigError("a setting of the whole space: write it on the space or in a "
                          "defaults: block", file=where.file, line=where.line,
                          key=f"{key}.{own}")
    effective = deep_merge(defaults, node)
    mt: Machinetype = schema.from_mapping(Machinetype, effective, prefix=key + ".",
                                          ignore=_MT_SPECIAL - {"name"})
    override = node.get(cloud)
    options = None
    if override is not None:
        if not isinstance(override, Located):
            where = node.where(cloud)
            raise ConfigError("must be a mapping", file=where.file, line=where.line,
                              key=f"{key}.{cloud}")
        options = schema.from_mapping(options_cls, deep_merge(cloud_block, override),
                                      prefix=f"{key}.{cloud}.")
    from dataclasses import replace

    origins = {k: effective.where(k) for k in ("user_data", "user_data_files") if k in effective}
    files = effective.get("user_data_files")
    if isinstance(files, Located):
        origins.update({f"user_data_files.{k}": files.where(k) for k in files})
    return replace(mt, name=name, cloud_options=options, origins=origins)


# -- provisioning policy: communities, budgets, campaigns (docs/policy.md) -------------------
def _policy(data: Located, spaces: dict[str, Space]) -> dict[str, Any]:
    """Parse the top-level policy keys, when there are any."""
    if not any(k in data for k in POLICY_KEYS):
        return {}
    return parse_policy(data, spaces)
