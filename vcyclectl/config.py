"""Load, merge and validate the YAML configuration into frozen dataclasses.

Parsed once at the boundary: everything after this module works with typed values, never
string maps. Every error names the file, the line and the dotted key, and loading touches
nothing on disk but the config files themselves.

Machinetype settings resolve in layers, each a deep merge over the one before:
top-level `defaults:` → the space's `defaults:` → the machinetype. A machinetype may also
carry a block named after its space's cloud (e.g. `local:`), merged over the space's block.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Mapping

from vcyclectl import schema
from vcyclectl.errors import ConfigError
from vcyclectl.yamlsource import Located, Origin, deep_merge, load_file

DEFAULT_CONFIG = Path("/etc/vcyclectl/vcyclectl.yaml")
CONFIG_ENV = "VCYCLECTL_CONFIG"
CLOUDS = ("local", "openstack", "ec2", "gce")
CloudName = Literal["local", "openstack", "ec2", "gce"]

SPACE_NAME = r"[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?"
MACHINETYPE_NAME = r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?"
PLAIN_FILE_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"


@dataclass(frozen=True)
class Machinetype:
    """One kind of VM in a space. Every field can come from `defaults:`."""

    name: str = ""
    image: str | None = None
    flavors: tuple[str, ...] = ()
    min_processors: int = field(default=1, metadata={"min": 1})
    max_processors: int | None = field(default=None, metadata={"min": 1})
    processors_limit: int | None = field(default=None, metadata={"min": 0})
    max_starting_processors: int | None = field(default=None, metadata={"min": 0})
    target_share: float = field(default=1.0, metadata={"min": 0})
    hs06_per_processor: float = field(default=1.0, metadata={"min": 0.001})
    user_data: str | None = field(default=None, metadata={"path": True})
    user_data_options: dict[str, str] = field(default_factory=dict,
                                              metadata={"secret_values": True})
    user_data_files: dict[str, str] = field(default_factory=dict, metadata={"path": True})
    heartbeat_file: str | None = field(default=None, metadata={
        "pattern": PLAIN_FILE_NAME, "pattern_doc": "a plain file name"})
    heartbeat_seconds: float | None = field(default=None, metadata={"min": 0.001})
    backoff_seconds: float = field(default=600.0, metadata={"min": 0})
    fizzle_seconds: float = field(default=600.0, metadata={"min": 0})
    max_wallclock_seconds: float = field(default=86400.0, metadata={"min": 0.001})
    drain_grace_seconds: float = field(default=3600.0, metadata={"min": 0})
    cloud_options: Any = field(default=None, compare=False)

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if self.max_processors is not None and self.min_processors > self.max_processors:
            out.append(("min_processors", f"min_processors ({self.min_processors}) is more "
                                          f"than max_processors ({self.max_processors})"))
        for key in self.user_data_options:
            if not key.replace("_", "a").isalnum():
                out.append(("user_data_options", f"option name {key!r} may hold only letters, "
                                                 "digits and '_'"))
        for key in self.user_data_files:
            if key in self.user_data_options:
                out.append(("user_data_files", f"{key!r} is also in user_data_options"))
        return out

    @property
    def heartbeat_checked(self) -> bool:
        return self.heartbeat_file is not None or self.heartbeat_seconds is not None

    @property
    def heartbeat_limit(self) -> float:
        return self.heartbeat_seconds if self.heartbeat_seconds is not None else 600.0

    @property
    def heartbeat_name(self) -> str:
        return self.heartbeat_file or "heartbeat"


@dataclass(frozen=True)
class SpaceSettings:
    """The plain settings of a space, as its YAML mapping holds them (besides its blocks)."""

    cloud: CloudName = "local"
    processors_limit: int = field(default=0, metadata={"min": 0})
    max_starting_processors: int | None = field(default=None, metadata={"min": 0})
    max_creates_per_pass: int = field(default=100, metadata={"min": 0})
    max_deletes_per_pass: int = field(default=100, metadata={"min": 0})
    concurrency: int = field(default=16, metadata={"min": 1, "max": 256})
    create_timeout_seconds: float = field(default=900.0, metadata={"min": 0})
    intent_timeout_seconds: float = field(default=120.0, metadata={"min": 0})


@dataclass(frozen=True)
class Space(SpaceSettings):
    """One tenancy on one cloud endpoint and region: its settings, machinetypes and block."""

    name: str = ""
    machinetypes: dict[str, Machinetype] = field(default_factory=dict)
    cloud_options: Any = field(default=None, compare=False)
    origin: Origin | None = field(default=None, compare=False)
    #: The `vacuum_pipe:` entries this space's machinetypes were expanded from
    #: (`vcyclectl.pipes.PipeSource`); the reconciler refreshes them under the lock.
    pipes: tuple[Any, ...] = field(default=(), compare=False)

    @property
    def slug(self) -> str:
        """The space's name as it appears inside machine names."""
        return self.name.replace(".", "-")


#: An ISO 8601 date or date and time (UTC unless it says otherwise), as YAML gives it back.
WHEN_PATTERN = (r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
                r"(Z|[+-]\d{2}:?\d{2})?)?")
_WHEN_DOC = "an ISO date like 2026-12-01 or date and time like 2026-12-01T08:00:00Z"


def parse_when(text: str, *, end: bool = False) -> float:
    """Epoch seconds of a `WHEN_PATTERN` value. A bare date used as an `end` means the end of
    that day, so `end: 2027-03-31` includes 31 March, which is how people write budgets."""
    from datetime import datetime, timedelta, timezone

    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    if end and len(text.strip()) == 10:
        value += timedelta(days=1)
    return value.timestamp()


@dataclass(frozen=True)
class Community:
    """A group of machinetypes (across spaces) that share one priority (docs/policy.md).

    `machinetypes` entries are `SPACE/MACHINETYPE`, or `MACHINETYPE` for that machinetype in
    every space. Higher `priority` takes capacity first; `target_share` divides capacity among
    communities of equal priority; `backfill: true` communities take only what is left, and
    their machines make room (`make_room: drain | delete`) when a priority community needs it.
    """

    name: str = ""
    machinetypes: tuple[str, ...] = ()
    priority: int = field(default=0, metadata={"min": 0})
    target_share: float = field(default=1.0, metadata={"min": 0})
    backfill: bool = False
    make_room: Literal["drain", "delete"] = "drain"

    def problems(self) -> list[tuple[str, str]]:
        if not self.machinetypes:
            return [("machinetypes", "a community needs at least one machinetype")]
        return []

    def covers(self, space: str, machinetype: str) -> bool:
        return machinetype in self.machinetypes or f"{space}/{machinetype}" in self.machinetypes


@dataclass(frozen=True)
class Budget:
    """Money for a space or a group of spaces between two dates (docs/policy.md).

    Each space gets its own slice of `amount` (by `space_shares`, else by processors_limit),
    so hosts reconciling different spaces never race over the same money. A machine is paid
    from the budget whose window holds its creation, for its whole life; `reserve_margin_seconds`
    is added to `max_wallclock_seconds` when reserving, to cover the pass that deletes it.
    """

    amount: float = field(metadata={"min": 0})
    start: str = field(metadata={"pattern": WHEN_PATTERN, "pattern_doc": _WHEN_DOC})
    end: str = field(metadata={"pattern": WHEN_PATTERN, "pattern_doc": _WHEN_DOC})
    spaces: tuple[str, ...] = field(default=())
    name: str = ""
    currency: str = "GBP"
    space_shares: dict[str, float] = field(default_factory=dict, metadata={"min": 0})
    reserve_margin_seconds: float = field(default=900.0, metadata={"min": 0})

    @cached_property
    def start_at(self) -> float:
        return parse_when(self.start)

    @cached_property
    def end_at(self) -> float:
        return parse_when(self.end, end=True)

    def problems(self) -> list[tuple[str, str]]:
        if not self.spaces:
            return [("spaces", "a budget needs at least one space")]
        if self.end_at <= self.start_at:
            return [("end", f"end ({self.end}) must be after start ({self.start})")]
        unknown = [s for s in self.space_shares if s not in self.spaces]
        if unknown:
            return [("space_shares", f"not among this budget's spaces: {', '.join(unknown)}")]
        return []


@dataclass(frozen=True)
class Campaign:
    """A dated entry that raises a community's priority inside its window.

    `processors` (summed over the community's spaces) or `share` (of each space's
    processors_limit) bounds how much capacity the raised priority covers; beyond it the
    community competes at its own priority. `priority` defaults to above every community.
    """

    community: str = field(metadata={"pattern": MACHINETYPE_NAME,
                                     "pattern_doc": "a community name"})
    start: str = field(metadata={"pattern": WHEN_PATTERN, "pattern_doc": _WHEN_DOC})
    end: str = field(metadata={"pattern": WHEN_PATTERN, "pattern_doc": _WHEN_DOC})
    processors: int | None = field(default=None, metadata={"min": 0})
    share: float | None = field(default=None, metadata={"min": 0, "max": 1})
    priority: int | None = field(default=None, metadata={"min": 0})
    name: str = ""

    @cached_property
    def start_at(self) -> float:
        return parse_when(self.start)

    @cached_property
    def end_at(self) -> float:
        return parse_when(self.end, end=True)

    def active(self, now: float) -> bool:
        return self.start_at <= now < self.end_at

    def problems(self) -> list[tuple[str, str]]:
        if self.end_at <= self.start_at:
            return [("end", f"end ({self.end}) must be after start ({self.start})")]
        if self.processors is not None and self.share is not None:
            return [("share", "give processors or share, not both")]
        return []


@dataclass(frozen=True)
class Config:
    """The whole, merged configuration, and the files it came from."""

    state_dir: Path
    spaces: dict[str, Space]
    feedback_url: str | None = None
    joboutputs_keep_seconds: float = 86400.0
    files: tuple[str, ...] = ()
    communities: dict[str, Community] = field(default_factory=dict)
    budgets: dict[str, Budget] = field(default_factory=dict)
    campaigns: tuple[Campaign, ...] = ()

    @property
    def has_policy(self) -> bool:
        """Communities, budgets or campaigns configured: without them nothing changes."""
        return bool(self.communities or self.budgets or self.campaigns)

    def select(self, names: list[str] | None) -> list[Space]:
        """The spaces named (all when none), or a usage error naming the unknown ones."""
        if not names:
            return list(self.spaces.values())
        unknown = [n for n in names if n not in self.spaces]
        if unknown:
            from vcyclectl.errors import UsageError

            raise UsageError(f"no such space: {', '.join(unknown)} "
                             f"(configured: {', '.join(self.spaces) or 'none'})")
        return [self.spaces[n] for n in names]


@dataclass(frozen=True)
class _TopLevel:
    state_dir: str = field(default="/var/lib/vcyclectl", metadata={"path": True})
    feedback_url: str | None = field(default=None, metadata={
        "pattern": r"https?://[^\s]+", "pattern_doc": "an http:// or https:// URL"})
    joboutputs_keep_seconds: float = field(default=86400.0, metadata={"min": 0})


_MT_SPECIAL = frozenset(CLOUDS) | {"name", "cloud_options"}
_SPACE_SPECIAL = frozenset(CLOUDS) | {"defaults", "machinetypes"}


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
    top = schema.from_mapping(_TopLevel, data, ignore=frozenset({"defaults", "spaces"}) |
                              _POLICY_KEYS)
    defaults = _mapping(data, "defaults", "defaults")
    _check_machinetype_keys(defaults, "defaults.")
    spaces_node = _mapping(data, "spaces", "spaces")
    spaces: dict[str, Space] = {}
    for name, node in spaces_node.items():
        _check_name(name, SPACE_NAME, spaces_node.where(name), "spaces." + name,
                    "space names are lowercase letters, digits, '.' and '-'")
        if not isinstance(node, Located):
            raise ConfigError("a space must be a mapping of settings",
                              file=spaces_node.where(name).file, line=spaces_node.where(name).line,
                              key=f"spaces.{name}")
        spaces[name] = _space(name, node, defaults,
                              state_dir=state_dir if state_dir is not None else Path(top.state_dir))
    if top.feedback_url is None:
        _require_feedback_url(spaces, spaces_node)
    return Config(
        state_dir=state_dir if state_dir is not None else Path(top.state_dir),
        spaces=spaces,
        feedback_url=top.feedback_url,
        joboutputs_keep_seconds=top.joboutputs_keep_seconds,
        files=files,
        **_policy(data, spaces),
    )


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


def _mapping(parent: Located, key: str, dotted: str) -> Located:
    value = parent.get(key)
    if value is None:
        return Located(parent.where(key))
    if not isinstance(value, Located):
        where = parent.where(key)
        raise ConfigError("must be a mapping", file=where.file, line=where.line, key=dotted)
    return value


def _check_name(name: str, pattern: str, where: Origin, key: str, doc: str) -> None:
    import re

    if not re.fullmatch(pattern, name):
        raise ConfigError(f"bad name {name!r}: {doc}", file=where.file, line=where.line, key=key)


def _check_machinetype_keys(node: Located, prefix: str) -> None:
    """Validate a `defaults:` block on its own, so a typo there is caught where it was made."""
    schema.from_mapping(Machinetype, node, prefix=prefix, ignore=_MT_SPECIAL - {"name"})


def _space(name: str, node: Located, top_defaults: Located,
           state_dir: Path | None = None) -> Space:
    prefix = f"spaces.{name}."
    settings = schema.from_mapping(SpaceSettings, node, prefix=prefix, ignore=_SPACE_SPECIAL)
    for other in CLOUDS:
        if other != settings.cloud and other in node:
            where = node.where(other)
            raise ConfigError(f"this space's cloud is {settings.cloud!r}, so a {other!r} block "
                              "does not apply", file=where.file, line=where.line, key=prefix + other)
    space_defaults = _mapping(node, "defaults", prefix + "defaults")
    _check_machinetype_keys(space_defaults, prefix + "defaults.")
    defaults = deep_merge(top_defaults, space_defaults)
    cloud_block = _mapping(node, settings.cloud, prefix + settings.cloud)
    options_cls = _options_class(settings.cloud, node, prefix)
    cloud_options = schema.from_mapping(options_cls, cloud_block, prefix=prefix + settings.cloud + ".")
    mts_node = _mapping(node, "machinetypes", prefix + "machinetypes")
    mts_node, pipes = _expand_vacuum_pipes(mts_node, defaults, prefix, state_dir)
    machinetypes: dict[str, Machinetype] = {}
    for mt_name, mt_node in mts_node.items():
        mt_key = f"{prefix}machinetypes.{mt_name}"
        where = mts_node.where(mt_name)
        _check_name(mt_name, MACHINETYPE_NAME, where, mt_key,
                    "machinetype names are lowercase letters, digits and '-', at most 40")
        if mt_node is None:
            mt_node = Located(where)
        if not isinstance(mt_node, Located):
            raise ConfigError("a machinetype must be a mapping of settings", file=where.file,
                              line=where.line, key=mt_key)
        machinetypes[mt_name] = _machinetype(mt_name, mt_node, defaults, settings.cloud,
                                             cloud_block, options_cls, mt_key)
    return Space(
        **{f.name: getattr(settings, f.name) for f in fields(SpaceSettings)},
        name=name,
        machinetypes=machinetypes,
        cloud_options=cloud_options,
        origin=node.origin,
        pipes=pipes,
    )


def _expand_vacuum_pipes(mts_node: Located, defaults: Located, prefix: str,
                         state_dir: Path | None) -> tuple[Located, tuple[Any, ...]]:
    """Vacuum Pipes hook: `vacuum_pipe:` entries become the pipe's machinetypes.

    Each entry is first checked as a machinetype (plus `vacuum_pipe`), so a typo in it is
    reported at its own line even while the pipe has not been fetched yet.
    """
    if not any(isinstance(n, Located) and "vacuum_pipe" in n for n in mts_node.values()):
        return mts_node, ()
    from vcyclectl import pipes as pipes_module

    for mt_name, mt_node in mts_node.items():
        if isinstance(mt_node, Located) and "vacuum_pipe" in mt_node:
            schema.from_mapping(Machinetype, deep_merge(defaults, mt_node),
                                prefix=f"{prefix}machinetypes.{mt_name}.",
                                ignore=(_MT_SPECIAL - {"name"}) | {"vacuum_pipe"})
    return pipes_module.expand_entries(mts_node, state_dir=state_dir,
                                       key_prefix=f"{prefix}machinetypes.")


def _options_class(cloud: str, node: Located, prefix: str) -> type:
    from vcyclectl.cloudoptions import options_class

    try:
        return options_class(cloud)
    except ConfigError as exc:
        where = node.where("cloud")
        raise ConfigError(exc.message, file=where.file, line=where.line, key=prefix + "cloud")


def _machinetype(name: str, node: Located, defaults: Located, cloud: str, cloud_block: Located,
                 options_cls: type, key: str) -> Machinetype:
    for other in CLOUDS:
        if other != cloud and other in node:
            where = node.where(other)
            raise ConfigError(f"the space's cloud is {cloud!r}, so a {other!r} block does not "
                              "apply", file=where.file, line=where.line, key=f"{key}.{other}")
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

    return replace(mt, name=name, cloud_options=options)


def display(config: Config) -> dict[str, Any]:
    """The effective configuration as plain data, secrets redacted (`config show`)."""
    spaces: dict[str, Any] = {}
    for name, space in config.spaces.items():
        out = schema.to_display(space)
        out.pop("name", None)
        out.pop("origin", None)
        out[space.cloud] = out.pop("cloud_options")
        for mt_name, mt in space.machinetypes.items():
            shown = out["machinetypes"][mt_name]
            shown.pop("name", None)
            options = shown.pop("cloud_options")
            if options is not None:
                shown[space.cloud] = options
        spaces[name] = out
    result: dict[str, Any] = {"state_dir": str(config.state_dir)}
    if config.feedback_url:
        result["feedback_url"] = config.feedback_url
    result["joboutputs_keep_seconds"] = config.joboutputs_keep_seconds
    result["spaces"] = spaces
    if config.communities:
        result["communities"] = {n: _shown(c) for n, c in config.communities.items()}
    if config.budgets:
        result["budgets"] = {n: _shown(b) for n, b in config.budgets.items()}
    if config.campaigns:
        result["campaigns"] = [schema.to_display(c) for c in config.campaigns]
    return result


def _shown(obj: Any) -> Any:
    out = schema.to_display(obj)
    out.pop("name", None)
    return out


def machinetype_options(space: Space) -> Mapping[str, Any]:
    """Per machinetype, its merged cloud block where it overrides the space's."""
    return {n: mt.cloud_options for n, mt in space.machinetypes.items() if mt.cloud_options}


# -- provisioning policy: communities, budgets, campaigns (docs/policy.md) -------------------
_POLICY_KEYS = frozenset({"communities", "budgets", "campaigns"})


@dataclass(frozen=True)
class _PolicySettings:
    communities: dict[str, Community] = field(default_factory=dict)
    budgets: dict[str, Budget] = field(default_factory=dict)
    campaigns: tuple[Campaign, ...] = ()


def _policy(data: Located, spaces: dict[str, Space]) -> dict[str, Any]:
    """Parse the top-level policy keys and check what they name against the spaces."""
    if not any(k in data for k in _POLICY_KEYS):
        return {}
    from dataclasses import replace

    settings: _PolicySettings = schema.from_mapping(
        _PolicySettings, data, ignore=frozenset(k for k in data if k not in _POLICY_KEYS))
    communities: dict[str, Community] = {}
    node = _mapping(data, "communities", "communities")
    owner: dict[tuple[str, str], str] = {}
    for name, community in settings.communities.items():
        where = node.where(name)
        key = f"communities.{name}"
        _check_name(name, MACHINETYPE_NAME, where, key,
                    "community names are lowercase letters, digits and '-', at most 40")
        community = replace(community, name=name)
        for ref in community.machinetypes:
            matched = [(s.name, mt) for s in spaces.values() for mt in s.machinetypes
                       if community.covers(s.name, mt)]
            if not matched:
                raise ConfigError(f"{ref!r} names no configured machinetype (write "
                                  "SPACE/MACHINETYPE or MACHINETYPE)", file=where.file,
                                  line=where.line, key=key + ".machinetypes")
            for pair in matched:
                if owner.get(pair, name) != name:
                    raise ConfigError(f"{pair[0]}/{pair[1]} is already in community "
                                      f"{owner[pair]}; a machinetype belongs to one community",
                                      file=where.file, line=where.line,
                                      key=key + ".machinetypes")
                owner[pair] = name
        communities[name] = community
    budgets: dict[str, Budget] = {}
    node = _mapping(data, "budgets", "budgets")
    budget_of: dict[str, str] = {}
    for name, budget in settings.budgets.items():
        where = node.where(name)
        key = f"budgets.{name}"
        _check_name(name, MACHINETYPE_NAME, where, key,
                    "budget names are lowercase letters, digits and '-', at most 40")
        for space in budget.spaces:
            if space not in spaces:
                raise ConfigError(f"no such space: {space}", file=where.file, line=where.line,
                                  key=key + ".spaces")
            if space in budget_of:
                raise ConfigError(f"space {space} is already paid by budget {budget_of[space]}",
                                  file=where.file, line=where.line, key=key + ".spaces")
            budget_of[space] = name
        budgets[name] = replace(budget, name=name)
    campaigns: list[Campaign] = []
    for i, campaign in enumerate(settings.campaigns):
        if campaign.community not in communities:
            where = data.where("campaigns")
            raise ConfigError(f"no such community: {campaign.community}", file=where.file,
                              line=where.line, key=f"campaigns[{i}].community")
        campaigns.append(replace(campaign, name=campaign.name or
                                 f"{campaign.community}-{campaign.start[:10]}"))
    return {"communities": communities, "budgets": budgets, "campaigns": tuple(campaigns)}
