"""The configuration as typed, frozen values: what everything after loading works with.

`schema` fills these from YAML by their field types and `metadata` bounds, so a field's
type, default and bounds here are the one definition of a config key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Mapping, Union

from vcyclectl.config.checks import PLAIN_FILE_NAME
from vcyclectl.config.demand import DemandSource
from vcyclectl.config.policy import Budget, Campaign, Community
from vcyclectl.config.yamlsource import Origin

if TYPE_CHECKING:  # each cloud's options dataclass; imported only when a space uses it
    from vcyclectl.clouds.ec2.options import Ec2Options
    from vcyclectl.clouds.gce.options import GceOptions
    from vcyclectl.clouds.local.options import LocalOptions
    from vcyclectl.clouds.openstack.options import OpenStackOptions
    from vcyclectl.config.accounting import Accounting
    from vcyclectl.config.pipes import PipeSource

    CloudOptions = Union[LocalOptions, OpenStackOptions, Ec2Options, GceOptions]

DEFAULT_CONFIG = Path("/etc/vcyclectl/vcyclectl.yaml")
CONFIG_ENV = "VCYCLECTL_CONFIG"
CLOUDS = ("local", "openstack", "ec2", "gce")
CloudName = Literal["local", "openstack", "ec2", "gce"]



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
    accounting_fqan: str | None = None  # APEL FQAN and VO of this machinetype's jobs
    accounting_vo: str | None = None
    #: Where this machinetype's own waiting work is read (docs/demand.md); overrides its
    #: community's `demand:`.
    demand: DemandSource | None = None
    #: This machinetype's merged cloud block, where it overrides the space's.
    cloud_options: CloudOptions | None = field(default=None, compare=False)
    #: Where its file-naming keys were written, so a missing file is reported at its line.
    origins: Mapping[str, Origin] = field(default_factory=dict, compare=False,
                                          metadata={"internal": True})

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
    #: A space whose last pass (by any host) finished less than this ago is skipped: with
    #: every host on cron's one-minute tick, 45 s lets one host pass it each minute
    #: whatever the start jitter, and the others skip it (docs/operations.md).
    min_pass_interval_seconds: float = field(default=45.0, metadata={"min": 0})
    #: Past this, a pass starts no new cloud calls; a process stuck inside one is ended by
    #: its watchdog soon after, so the lock never outlives it (docs/operations.md).
    max_pass_seconds: float = field(default=300.0, metadata={"min": 1})


#: The space settings that may also be written in a `defaults:` block (top level or the
#: space's), for every space at once; a machinetype may not set them.
SPACE_DEFAULT_KEYS = frozenset({"min_pass_interval_seconds", "max_pass_seconds"})


@dataclass(frozen=True)
class Space(SpaceSettings):
    """One tenancy on one cloud endpoint and region: its settings, machinetypes and block."""

    name: str = ""
    machinetypes: dict[str, Machinetype] = field(default_factory=dict)
    cloud_options: CloudOptions | None = field(default=None, compare=False)
    origin: Origin | None = field(default=None, compare=False)
    #: The `vacuum_pipe:` entries this space's machinetypes were expanded from
    #: (`vcyclectl.config.pipes.PipeSource`); the reconciler refreshes them under the lock.
    pipes: tuple[PipeSource, ...] = field(default=(), compare=False)

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
    #: How far this host's clock may disagree with the state directory's filesystem (the
    #: mtime it stamps) before time-based deletions are withheld (docs/state.md).
    max_clock_skew_seconds: float = 60.0
    #: `finished.jsonl` and `events.jsonl` are rotated past this size, keeping this many
    #: plain copies (docs/state.md); the spend ledger and accounting never lose a line to it.
    journal_max_bytes: int = 64 * 1024 * 1024
    journal_keep: int = 4
    files: tuple[str, ...] = ()
    communities: dict[str, Community] = field(default_factory=dict)
    budgets: dict[str, Budget] = field(default_factory=dict)
    campaigns: tuple[Campaign, ...] = ()
    metrics_textfile: str | None = None  # docs/metrics.md; `{host}` is this host's name
    vacmon_hostport: tuple[str, ...] = ()
    #: APEL publishing (docs/accounting.md); None when no block names a gocdb_sitename.
    accounting: Accounting | None = None

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


def machinetype_options(space: Space) -> Mapping[str, CloudOptions]:
    """Per machinetype, its merged cloud block where it overrides the space's."""
    return {n: mt.cloud_options for n, mt in space.machinetypes.items() if mt.cloud_options}
