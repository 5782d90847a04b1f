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
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping

from vcyclectl.config import schema
from vcyclectl.errors import ConfigError
from vcyclectl.config.yamlsource import Located, Origin, deep_merge, load_file

if TYPE_CHECKING:
    from vcyclectl.config.policy import WHEN_PATTERN, Budget, Campaign, Community, parse_when

__all__ = ["WHEN_PATTERN", "Budget", "Campaign", "Community", "parse_when"]

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
    #: (`vcyclectl.config.pipes.PipeSource`); the reconciler refreshes them under the lock.
    pipes: tuple[Any, ...] = field(default=(), compare=False)

    @property
    def slug(self) -> str:
        """The space's name as it appears inside machine names."""
        return self.name.replace(".", "-")


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
    metrics_textfile: str | None = None  # docs/metrics.md; `{host}` is this host's name
    vacmon_hostport: tuple[str, ...] = ()

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
    metrics_textfile: str | None = field(default=None, metadata={"path": True})
    vacmon_hostport: tuple[str, ...] = field(default=(), metadata={
        "pattern": r"[A-Za-z0-9.-]+:[0-9]{1,5}", "pattern_doc": "host.domain:port"})


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
        metrics_textfile=top.metrics_textfile, vacmon_hostport=top.vacmon_hostport,
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
    from vcyclectl.config import pipes as pipes_module

    for mt_name, mt_node in mts_node.items():
        if isinstance(mt_node, Located) and "vacuum_pipe" in mt_node:
            schema.from_mapping(Machinetype, deep_merge(defaults, mt_node),
                                prefix=f"{prefix}machinetypes.{mt_name}.",
                                ignore=(_MT_SPECIAL - {"name"}) | {"vacuum_pipe"})
    return pipes_module.expand_entries(mts_node, state_dir=state_dir,
                                       key_prefix=f"{prefix}machinetypes.")


def _options_class(cloud: str, node: Located, prefix: str) -> type:
    from vcyclectl.clouds.options import options_class

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
    if config.metrics_textfile or config.vacmon_hostport:
        result.update(metrics_textfile=config.metrics_textfile,
                      vacmon_hostport=list(config.vacmon_hostport))
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
#: Defined in `vcyclectl.config.policy`, imported only by configs that use them (start-up).
_POLICY_NAMES = frozenset({"Community", "Budget", "Campaign", "WHEN_PATTERN", "parse_when"})


def _policy(data: Located, spaces: dict[str, Space]) -> dict[str, Any]:
    """Parse the top-level policy keys, when there are any."""
    if not any(k in data for k in _POLICY_KEYS):
        return {}
    from vcyclectl.config.policy import parse_policy

    return parse_policy(data, spaces)


def __getattr__(name: str) -> Any:
    if name in _POLICY_NAMES:
        from vcyclectl.config import policy as policyconfig

        return getattr(policyconfig, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
