"""The provisioning-policy part of the configuration: communities, budgets, campaigns
(docs/policy.md), as frozen dataclasses. `policyload` parses them and checks what they name
against the spaces."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from vcyclectl.config.checks import MACHINETYPE_NAME
from vcyclectl.config.demand import DemandSource

POLICY_KEYS = frozenset({"communities", "budgets", "campaigns"})


#: An ISO 8601 date or date and time (UTC unless it says otherwise), as YAML gives it back.
WHEN_PATTERN = (r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
                r"(Z|[+-]\d{2}:?\d{2})?)?")
_WHEN_DOC = "an ISO date like 2026-12-01 or date and time like 2026-12-01T08:00:00Z"
#: An ISO 4217 currency code.
CURRENCY_PATTERN = r"[A-Z]{3}"
_CURRENCY_DOC = "an ISO 4217 code like GBP, EUR or USD"


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
    `demand` says where its waiting work can be read (docs/demand.md); without it the
    community probes for work as before.
    """

    name: str = ""
    machinetypes: tuple[str, ...] = ()
    priority: int = field(default=0, metadata={"min": 0})
    target_share: float = field(default=1.0, metadata={"min": 0})
    backfill: bool = False
    make_room: Literal["drain", "delete"] = "drain"
    demand: DemandSource | None = None

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
    currency: str = field(default="GBP", metadata={"pattern": CURRENCY_PATTERN,
                                                   "pattern_doc": _CURRENCY_DOC})
    #: Units of `currency` one unit of another currency is worth (`{USD: 0.79}`: a dollar
    #: is 0.79 pounds), for spaces whose prices are in that currency (EC2 spot prices are
    #: USD from AWS). Inline rates win over `exchange_rates_file` (a YAML mapping, the same).
    exchange_rates: dict[str, float] = field(default_factory=dict, metadata={"min": 0})
    exchange_rates_file: str | None = field(default=None, metadata={"path": True})
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
        return self._rate_problems()

    def _rate_problems(self) -> list[tuple[str, str]]:
        for code, rate in self.exchange_rates.items():
            if not re.fullmatch(CURRENCY_PATTERN, code):
                return [("exchange_rates", f"{code!r} is not {_CURRENCY_DOC}")]
            if rate <= 0:
                return [("exchange_rates", f"the rate of {code} must be above 0")]
        return []

    def rate(self, currency: str | None) -> float | None:
        """Units of this budget's currency per unit of `currency` (None: the budget's own);
        None when no rate is given."""
        if currency is None or currency == self.currency:
            return 1.0
        return self.exchange_rates.get(currency)


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
