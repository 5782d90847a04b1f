"""The provisioning-policy part of the configuration: communities, budgets, campaigns.

Kept out of `config.py` so that a configuration without them (and every read-only command)
does not pay for these classes at start-up; `config.build` imports this module only when a
policy key is present. See docs/policy.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from vcyclectl.config import schema
from vcyclectl.config import MACHINETYPE_NAME, Space, _check_name, _mapping
from vcyclectl.errors import ConfigError
from vcyclectl.config.yamlsource import Located

POLICY_KEYS = frozenset({"communities", "budgets", "campaigns"})


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
class _PolicySettings:
    communities: dict[str, Community] = field(default_factory=dict)
    budgets: dict[str, Budget] = field(default_factory=dict)
    campaigns: tuple[Campaign, ...] = ()


def parse_policy(data: Located, spaces: dict[str, Space]) -> dict[str, Any]:
    """Parse the top-level policy keys and check what they name against the spaces."""
    if not any(k in data for k in POLICY_KEYS):
        return {}
    from dataclasses import replace

    settings: _PolicySettings = schema.from_mapping(
        _PolicySettings, data, ignore=frozenset(k for k in data if k not in POLICY_KEYS))
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
