"""Parse the top-level `communities:`, `budgets:` and `campaigns:` and check what they name
against the spaces (docs/policy.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vcyclectl.config import schema
from vcyclectl.config.checks import MACHINETYPE_NAME, check_name, mapping
from vcyclectl.config.policy import POLICY_KEYS, Budget, Campaign, Community
from vcyclectl.config.types import Space
from vcyclectl.config.yamlsource import Located, Origin
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
        budget = _with_rates_file(replace(budget, name=name), where, key)
        for space in budget.spaces:
            _check_currencies(budget, spaces[space], where, key)
        budgets[name] = budget
    campaigns: list[Campaign] = []
    for i, campaign in enumerate(settings.campaigns):
        if campaign.community not in communities:
            where = data.where("campaigns")
            raise ConfigError(f"no such community: {campaign.community}", file=where.file,
                              line=where.line, key=f"campaigns[{i}].community")
        campaigns.append(replace(campaign, name=campaign.name or
                                 f"{campaign.community}-{campaign.start[:10]}"))
    return {"communities": communities, "budgets": budgets, "campaigns": tuple(campaigns)}


def price_currencies(space: Space, default: str) -> dict[str, str]:
    """The currencies a space's prices are in, each with where it comes from: a cloud
    block's `currency:` (its `price_per_hour`; `default`, the budget's, when it declares
    none), and USD for EC2 spot prices, which AWS quotes in dollars."""
    found: dict[str, str] = {}
    blocks = [(f"{space.cloud}", space.cloud_options)] + [
        (f"machinetypes.{name}.{space.cloud}", mt.cloud_options)
        for name, mt in space.machinetypes.items()]
    for where, options in blocks:
        if options is None:
            continue
        declared = getattr(options, "currency", None)
        if declared and declared != default:
            found.setdefault(declared, f"{where}.currency")
        if space.cloud == "ec2" and getattr(options, "spot", False):
            found.setdefault("USD", f"{where}.spot (AWS quotes spot prices in USD)")
    found.pop(default, None)
    return found


def _check_currencies(budget: Budget, space: Space, where: Origin, key: str) -> None:
    """A budget over prices in another currency needs a rate, or its ceiling is nonsense."""
    for code, source in sorted(price_currencies(space, budget.currency).items()):
        if budget.rate(code) is None:
            raise ConfigError(
                f"space {space.name} has prices in {code} (spaces.{space.name}.{source}) but "
                f"this budget is in {budget.currency}: give exchange_rates: {{{code}: RATE}} "
                f"({budget.currency} per {code}) or an exchange_rates_file",
                file=where.file, line=where.line, key=key + ".exchange_rates")


def _with_rates_file(budget: Budget, where: Origin, key: str) -> Budget:
    """The budget with its `exchange_rates_file` read in (inline rates win)."""
    if budget.exchange_rates_file is None:
        return budget
    import re
    from dataclasses import replace

    import yaml

    from vcyclectl.config.policy import CURRENCY_PATTERN

    path = budget.exchange_rates_file
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read exchange_rates_file {path}: {exc.strerror}",
                          file=where.file, line=where.line,
                          key=key + ".exchange_rates_file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not YAML: {exc}", file=path, key="exchange rates") from None
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping of currency codes to rates ({USD: 0.79})",
                          file=path, key="exchange rates")
    rates: dict[str, float] = {}
    for code, rate in data.items():
        if not (isinstance(code, str) and re.fullmatch(CURRENCY_PATTERN, code)):
            raise ConfigError(f"{code!r} is not a currency code like USD", file=path,
                              key=str(code))
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
            raise ConfigError(f"the rate must be a number above 0, got {rate!r}", file=path,
                              key=code)
        rates[code] = float(rate)
    rates.update(budget.exchange_rates)
    return replace(budget, exchange_rates=rates)
