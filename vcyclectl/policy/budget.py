"""Spend accounting from machine records, the budget ledger, and what `vcyclectl budget` says.

Money is counted from what vcyclectl already records: every machine's record carries the
flavor's `price_per_hour` (and `spot`) from its creation, and `finished.jsonl` gets one line
per machine that ended with its creation and end times. A machine costs
`price_per_hour * seconds / 3600` from creation until it was deleted, by the second, and is
paid by the budget whose window holds its creation.

The ledger (`STATE_DIR/spaces/SPACE/spend.json`) folds `finished.jsonl` into totals per hour
of creation and machinetype, with a cursor (which journal file, how far) so a pass reads
only the lines appended since the last one, however long the budget runs. It is durable on
its own: a rotated, truncated or lost journal never lowers it (`vcyclectl.state.cursor`),
since the budget's hard ceiling rests on it. It is written only by a pass holding the
space's lock (the same lock that appends `finished.jsonl`); readers (`budget`, `schedule`,
other spaces) fold the rest in memory and never write it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Container, Iterable, Mapping

from vcyclectl.config import Config, Space
from vcyclectl.core.provisioning import (SpacePolicy, allotment, budget_of, community_of,
                                         paced_rate,
                              space_policy)
from vcyclectl import log
from vcyclectl.core.records import MachineRecord
from vcyclectl.errors import StateError
from vcyclectl.state.cursor import Cursor, generations, read_since
from vcyclectl.state.files import iter_lines
from vcyclectl.state.store import SpaceState, StateDir

LEDGER_FILE = "spend.json"
#: 1: a byte offset into finished.jsonl; 2: a cursor (file fingerprint and offset).
LEDGER_FORMAT = 2
#: How many recently folded machine names the ledger keeps to drop a repeated line.
RECENT_NAMES = 10_000


def machine_cost(price_per_hour: float | None, start: float, end: float) -> float:
    """Cost of one machine between two instants, by the second."""
    if not price_per_hour:
        return 0.0
    return price_per_hour * max(0.0, end - start) / 3600.0


@dataclass
class Spend:
    """Totals of a group of machines: money, processor-seconds, machines, the spot part."""

    cost: float = 0.0
    processor_seconds: float = 0.0
    machines: int = 0
    spot_cost: float = 0.0

    def add(self, other: "Spend") -> None:
        self.cost += other.cost
        self.processor_seconds += other.processor_seconds
        self.machines += other.machines
        self.spot_cost += other.spot_cost

    def to_list(self) -> list[float]:
        return [round(self.cost, 6), round(self.processor_seconds, 3), self.machines,
                round(self.spot_cost, 6)]

    @classmethod
    def from_list(cls, data: Any) -> "Spend":
        if not isinstance(data, list) or len(data) < 4:
            return cls()
        return cls(float(data[0]), float(data[1]), int(data[2]), float(data[3]))


@dataclass
class Ledger:
    """One space's ended machines: cost by hour of creation (epoch // 3600) and machinetype."""

    hours: dict[int, dict[str, Spend]] = field(default_factory=dict)
    cursor: Cursor = field(default_factory=Cursor)
    #: Names of the machines folded in last (at most `RECENT_NAMES`): a pass killed between
    #: appending a machine's finished line and recording it repeats the line, which must
    #: not be paid twice.
    recent: list[str] = field(default_factory=list)
    #: What the last fold found wrong with the journal (said, never acted on by lowering).
    problems: list[str] = field(default_factory=list, repr=False, compare=False)
    #: Totals per budget window asked before, kept current by `add` (a pass asks each pass).
    _windows: dict[tuple[float, float], float] = field(default_factory=dict, repr=False,
                                                       compare=False)

    def add(self, entry: Mapping[str, Any]) -> None:
        """Fold one `finished.jsonl` line in (one machine that ended)."""
        created = entry.get("created_at")
        if not isinstance(created, (int, float)):
            return
        end = entry.get("finished_at") or entry.get("stopped_at") or created
        price = entry.get("price_per_hour")
        cost = machine_cost(price if isinstance(price, (int, float)) else None, created,
                            float(end))
        seconds = max(0.0, float(end) - created)
        spend = Spend(cost, seconds * int(entry.get("processors") or 0), 1,
                      cost if entry.get("spot") else 0.0)
        mt = str(entry.get("machinetype", ""))
        hour = int(created // 3600)
        self.hours.setdefault(hour, {}).setdefault(mt, Spend()).add(spend)
        middle = hour * 3600 + 1800
        for (since, until) in self._windows:
            if since <= middle < until:
                self._windows[(since, until)] += cost

    def spent(self, since: float = -math.inf, until: float = math.inf,
              machinetypes: Container[str] | None = None) -> float:
        """Cost of machines created in [since, until), to the hour of their creation."""
        if machinetypes is None:
            if (since, until) not in self._windows:
                self._windows[(since, until)] = sum(s.cost for _, s in self.items(since, until))
            return self._windows[(since, until)]
        return sum(s.cost for mt, s in self.items(since, until) if mt in machinetypes)

    def items(self, since: float = -math.inf,
              until: float = math.inf) -> Iterable[tuple[str, Spend]]:
        for hour, by_mt in self.hours.items():
            if since <= hour * 3600 + 1800 < until:  # an hour belongs where its middle is
                yield from by_mt.items()

    @property
    def total(self) -> float:
        return sum(s.cost for by in self.hours.values() for s in by.values())

    def to_record(self) -> dict[str, Any]:
        return {"format": LEDGER_FORMAT, "cursor": self.cursor.to_record(),
                "recent": self.recent[-RECENT_NAMES:],
                "hours": {str(h): {mt: s.to_list() for mt, s in by.items()}
                          for h, by in sorted(self.hours.items())}}

    @classmethod
    def from_record(cls, data: Any, journal: Path | None = None) -> "Ledger":
        """The ledger as saved; format 1 (an offset only) is read as a cursor on the journal
        as it is now. A ledger from a newer vcyclectl is refused, never started afresh:
        starting afresh would lower recorded spend."""
        if data is None:
            return cls()
        version = data.get("format") if isinstance(data, dict) else None
        if version not in (1, LEDGER_FORMAT):
            raise StateError(f"{LEDGER_FILE} has format {version!r}, which this vcyclectl "
                             f"does not know (it knows 1 and {LEDGER_FORMAT}): upgrade "
                             "vcyclectl on this host; the ledger was left as it is")
        assert isinstance(data, dict)
        hours: dict[int, dict[str, Spend]] = {}
        for hour, by in (data.get("hours") or {}).items():
            if isinstance(by, dict):
                hours[int(hour)] = {str(mt): Spend.from_list(v) for mt, v in by.items()}
        if version == LEDGER_FORMAT:
            recent = [str(n) for n in data.get("recent") or []]
            return cls(hours=hours, cursor=Cursor.from_record(data.get("cursor")), recent=recent)
        return cls(hours=hours, cursor=_cursor_from_offset(journal, int(data.get("offset") or 0)))


def _cursor_from_offset(journal: Path | None, offset: int) -> Cursor:
    """Format 1 kept only an offset: take it to be on the journal as it is now, if that is
    long enough; else the journal was replaced, and the new one is read from its start."""
    from vcyclectl.state.cursor import fingerprint

    if journal is None or offset == 0:
        return Cursor(None, 0)
    try:
        size = journal.stat().st_size
    except FileNotFoundError:
        return Cursor(None, 0)
    return Cursor(fingerprint(journal), offset) if size >= offset else Cursor(None, 0)


def fold(store: SpaceState) -> tuple[Ledger, bool]:
    """The ledger brought up to date with `finished.jsonl`, and whether it changed. Totals
    only grow: a rotated journal is followed into its copy, a cut or lost one is reported
    (`Ledger.problems`) and never recounted from scratch."""
    from vcyclectl.state.files import read_json

    saved = read_json(store.path / LEDGER_FILE)
    ledger = Ledger.from_record(saved, store.finished_file)
    if saved is None:  # a new (or lost) ledger: first what vcyclectl's rotation kept
        for copy in generations(store.finished_file)[:-1] if store.finished_file.exists() \
                else generations(store.finished_file):
            for line in iter_lines(copy):
                if isinstance(line, dict):
                    ledger.add(line)
    caught = read_since(store.finished_file, ledger.cursor)
    seen = set(ledger.recent)
    for line in caught.entries:
        if not isinstance(line, dict):
            continue
        name = str(line.get("name", ""))
        if name and name in seen:
            continue  # the same machine's line again (a pass killed mid-way repeated it)
        ledger.add(line)
        if name:
            seen.add(name)
            ledger.recent.append(name)
    del ledger.recent[:-RECENT_NAMES]
    changed = caught.cursor != ledger.cursor or bool(caught.entries)
    ledger.cursor = caught.cursor
    ledger.problems = caught.problems
    return ledger, changed


def save(store: SpaceState, ledger: Ledger) -> None:
    """Write the ledger; only under the space's lock (one writer per space)."""
    from vcyclectl.state.files import write_json

    write_json(store.path / LEDGER_FILE, ledger.to_record())


def update_ledger(store: SpaceState) -> Ledger:
    """Fold and, when something new ended, save: the pass's bookkeeping, lock held."""
    ledger, changed = fold(store)
    for problem in ledger.problems:
        log.warning("spend ledger: journal problem", space=store.name, problem=problem)
    if changed:
        save(store, ledger)
    return ledger


def live(records: Iterable[MachineRecord]) -> list[MachineRecord]:
    """Records of machines still costing money: not yet accounted as finished."""
    return [r for r in records if not r.finished and r.deleting_at is None]


def community_usage(config: Config, *, exclude: str | None = None) -> dict[str, int]:
    """Processors of each community's live machines over every space but `exclude`, from
    the shared state directory (for campaigns given in processors, which span spaces)."""
    root = StateDir(config.state_dir)
    usage: dict[str, int] = {}
    for name in config.spaces:
        if name == exclude:
            continue
        for rec in live(root.space(name).records().values()):
            community = community_of(config, name, rec.machinetype)
            if community is not None:
                usage[community.name] = usage.get(community.name, 0) + rec.processors
    return usage


def gather_policy(config: Config, space: Space, store: SpaceState, now: float) -> \
        SpacePolicy | None:
    """Everything the pure `space_policy` needs, read from the shared state directory.

    Reads only: `plan` and `--dry-run` call it without the lock; the reconciler saves the
    ledger after applying, lock held (`update_ledger`). Each pass computes the whole policy
    afresh from disk: no host keeps decisions between passes.
    """
    if not config.has_policy:
        return None
    budget = budget_of(config, space.name)
    finished = 0.0
    if budget is not None:
        ledger, _ = fold(store)
        finished = ledger.spent(budget.start_at, budget.end_at)
    campaigns_span = any(c.active(now) and c.processors is not None for c in config.campaigns)
    other = community_usage(config, exclude=space.name) if campaigns_span else {}
    return space_policy(config, space, now, other_usage=other, finished_spend=finished)


def budget_rows(config: Config, now: float) -> list[dict[str, Any]]:
    """`vcyclectl budget`: per budget, per space and per community in it: spent so far,
    burn rate now, the rate pacing allows, and the forecast at the end date."""
    root = StateDir(config.state_dir)
    rows: list[dict[str, Any]] = []
    for budget in config.budgets.values():
        hours_left = max(0.0, (budget.end_at - now) / 3600.0)
        total = _Row()
        space_rows: list[dict[str, Any]] = []
        for space_name in budget.spaces:
            store = root.space(space_name)
            ledger, _ = fold(store)
            by_group: dict[str, _Row] = {}
            for mt, spend in ledger.items(budget.start_at, budget.end_at):
                by_group.setdefault(_group(config, space_name, mt), _Row()).finished += \
                    spend.cost
            for rec in live(store.records().values()):
                if not budget.start_at <= rec.created_at < budget.end_at:
                    continue
                row = by_group.setdefault(_group(config, space_name, rec.machinetype), _Row())
                row.running += machine_cost(rec.price_per_hour, rec.created_at, now)
                row.rate += rec.price_per_hour or 0.0
                row.processors += rec.processors
            space_total = _Row()
            for row in by_group.values():
                space_total.add(row)
            allot = allotment(config, budget, space_name)
            space_rows.append(space_total.to_json(
                budget.name, space_name, "*", budget.currency, allot, hours_left,
                paced_rate(allot, space_total.spent, now, budget.end_at)
                if budget.start_at <= now < budget.end_at else 0.0))
            for group, row in sorted(by_group.items()):
                space_rows.append(row.to_json(budget.name, space_name, group, budget.currency,
                                              None, hours_left, None))
            total.add(space_total)
        rows.append(total.to_json(budget.name, "*", "*", budget.currency, budget.amount,
                                  hours_left,
                                  paced_rate(budget.amount, total.spent, now, budget.end_at)
                                  if budget.start_at <= now < budget.end_at else 0.0,
                                  start=budget.start, end=budget.end))
        rows.extend(space_rows)
        _in_other_currencies(config, budget, rows[-1 - len(space_rows):])
    return rows


def _in_other_currencies(config: Config, budget: Any, rows: list[dict[str, Any]]) -> None:
    """Each row's money also in the currencies its prices came in (EC2 spot: USD), at the
    budget's rates: `budget` shows both, so an admin can check it against the cloud's bill."""
    from vcyclectl.policy.currency import other_currencies

    rates = other_currencies(config, budget)
    for row in rows:
        row["in_other_currencies"] = {
            code: {"rate": rate, "spent": round(row["spent"] / rate, 2),
                   "amount": None if row["amount"] is None else round(row["amount"] / rate, 2),
                   "forecast_at_end": round(row["forecast_at_end"] / rate, 2)}
            for code, rate in sorted(rates.items())}
        row["other_currency"] = "; ".join(
            f"{v['spent']:,.2f} {code} spent (at {rate:g} {budget.currency}/{code})"
            for (code, rate), v in zip(sorted(rates.items()),
                                       row["in_other_currencies"].values(), strict=True))


def _group(config: Config, space: str, machinetype: str) -> str:
    community = community_of(config, space, machinetype)
    return community.name if community is not None else machinetype


@dataclass
class _Row:
    finished: float = 0.0
    running: float = 0.0
    rate: float = 0.0
    processors: int = 0

    @property
    def spent(self) -> float:
        return self.finished + self.running

    def add(self, other: "_Row") -> None:
        self.finished += other.finished
        self.running += other.running
        self.rate += other.rate
        self.processors += other.processors

    def to_json(self, budget: str, space: str, community: str, currency: str,
                amount: float | None, hours_left: float, paced: float | None,
                **extra: Any) -> dict[str, Any]:
        forecast = self.spent + self.rate * hours_left
        out: dict[str, Any] = {
            "budget": budget, "space": space, "community": community, "currency": currency,
            "amount": None if amount is None else round(amount, 2),
            "spent": round(self.spent, 2), "running_processors": self.processors,
            "burn_rate_per_hour": round(self.rate, 4),
            "paced_rate_per_hour": None if paced is None else round(paced, 4),
            "forecast_at_end": round(forecast, 2),
            "remaining": None if amount is None else round(amount - self.spent, 2)}
        out.update(extra)
        return out
