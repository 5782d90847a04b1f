"""Prices in the budget's currency: what a pass plans with, records and pays.

A cloud quotes prices in its own currency (AWS its spot price history in USD; a config
block's `price_per_hour` in its `currency:`, else the budget's), while the budget's ceiling
and pacing are in the budget's currency. Each flavor's price is converted once, when a pass
observes it, at the budget's `exchange_rates`, so machine records, the ledger and `budget`
are all in one currency and the ceiling compares like with like. `config check` already
refuses a budget over prices in a currency it has no rate for; a price that still turns up
in such a currency is made unknown (the planner does not use an unpriced flavor on a
budgeted space), never guessed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable

from vcyclectl import log
from vcyclectl.config import Budget, Config
from vcyclectl.config.policyload import price_currencies
from vcyclectl.core.model import Flavor
from vcyclectl.core.provisioning import budget_of


def in_budget_currency(config: Config, space: str, flavors: Iterable[Flavor]) -> list[Flavor]:
    """`flavors` priced in the currency of the budget that pays for `space` (unchanged when
    no budget does)."""
    budget = budget_of(config, space)
    if budget is None:
        return list(flavors)
    return [convert(f, budget, space) for f in flavors]


def convert(flavor: Flavor, budget: Budget, space: str = "") -> Flavor:
    """One flavor's price in the budget's currency."""
    if flavor.price_per_hour is None:
        return flavor
    rate = budget.rate(flavor.currency)
    if rate is None:
        log.warning("price in a currency the budget has no rate for: flavor not priced",
                    space=space, flavor=flavor.name, currency=flavor.currency,
                    budget=budget.name)
        return replace(flavor, price_per_hour=None, currency=None)
    return replace(flavor, price_per_hour=flavor.price_per_hour * rate,
                   currency=budget.currency)


def other_currencies(config: Config, budget: Budget) -> dict[str, float]:
    """The other currencies the budget's spaces have prices in, with the rate of each (units
    of the budget's currency per unit), for `budget` to show spend in both."""
    found: dict[str, float] = {}
    for name in budget.spaces:
        space = config.spaces.get(name)
        if space is None:
            continue
        for code in price_currencies(space, budget.currency):
            rate = budget.rate(code)
            if rate:
                found[code] = rate
    return found
