"""Parse the top-level `communities:`, `budgets:` and `campaigns:` and check what they name
against the spaces (docs/policy.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vcyclectl.config import schema
from vcyclectl.config.checks import MACHINETYPE_NAME, check_name, mapping
from vcyclectl.config.policy import POLICY_KEYS, Budget, Campaign, Community
from vcyclectl.config.types import Space
from vcyclectl.config.yamlsource import Located
from vcyclectl.errors import ConfigError


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
    node = mapping(data, "communities", "communities")
    owner: dict[tuple[str, str], str] = {}
    for name, community in settings.communities.items():
        where = node.where(name)
        key = f"communities.{name}"
        check_name(name, MACHINETYPE_NAME, where, key,
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
    node = mapping(data, "budgets", "budgets")
    budget_of: dict[str, str] = {}
    for name, budget in settings.budgets.items():
        where = node.where(name)
        key = f"budgets.{name}"
        check_name(name, MACHINETYPE_NAME, where, key,
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
