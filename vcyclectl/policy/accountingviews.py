"""What `vcyclectl accounting` shows: per site, VO and machinetype, what was or will be
published for a month; re-queueing a month's summary; agreement with the budget ledger."""

from __future__ import annotations

from typing import Any

from vcyclectl.config import Config
from vcyclectl.policy import apel
from vcyclectl.policy.apel import month_bounds
from vcyclectl.state.store import StateDir

from vcyclectl.policy.accountbook import Book
from vcyclectl.policy.accounting import publish_month


def republish(config: Config, month: str) -> int:
    """Queue a month's summaries again for every space (`accounting --republish`). Writes
    only to the queues (safe beside a running pass: dirq takes concurrent writers)."""
    total = 0
    root = StateDir(config.state_dir)
    for space in config.spaces.values():
        if config.accounting is None or not config.accounting.enabled_in(space.name):
            continue
        jobs = Book(root.space(space.name)).month(month).jobs()
        if jobs:
            total += publish_month(config, space, jobs, month)
    return total


def accounting_rows(config: Config, month: str | None) -> list[dict[str, Any]]:
    """Per site, VO, space and machinetype: jobs, wall hours and HS06 hours published (or
    to be published) for a month, or for every month kept."""
    root = StateDir(config.state_dir)
    rows: dict[tuple[str, ...], dict[str, Any]] = {}
    for space in config.spaces.values():
        book = Book(root.space(space.name))
        for m in [month] if month else book.months():
            data = book.month(m)
            for entry in data.entries.values():
                job = entry.job
                key = (m, job.site, apel.vo_of(job.vo, job.fqan) or "-", space.name,
                       job.machinetype)
                row = rows.setdefault(key, {
                    "month": m, "site": job.site, "vo": key[2], "space": space.name,
                    "machinetype": job.machinetype, "jobs": 0, "fizzles": 0,
                    "wall_hours": 0.0, "processor_hours": 0.0, "hs06_hours": 0.0,
                    "queued_jobs": 0})
                if not entry.ran:
                    row["fizzles"] += 1
                    continue
                row["jobs"] += 1
                row["wall_hours"] += job.wall / 3600.0
                row["processor_hours"] += job.wall * job.processors / 3600.0
                row["hs06_hours"] += job.hs06_seconds / 3600.0
                if entry.batch is None or entry.batch in data.queued:
                    row["queued_jobs"] += 1
    out = []
    for row_key in sorted(rows):
        row = rows[row_key]
        for k in ("wall_hours", "processor_hours", "hs06_hours"):
            row[k] = round(row[k], 4)
        out.append(row)
    return out


def billed_processor_hours(config: Config, space: str, month: str) -> float:
    """Processor-hours of machines created in `month`, creation to deletion, from the
    accounting store: what `budget` bills (its ledger folds the same finished lines)."""
    start, end = month_bounds(month)
    book = Book(StateDir(config.state_dir).space(space))
    total = 0.0
    for m in book.months():
        if m < month:
            continue
        for entry in book.month(m).entries.values():
            hour_middle = (entry.created_at // 3600) * 3600 + 1800
            if start <= hour_middle < end:
                total += max(0.0, entry.finished_at - entry.created_at) * entry.job.processors
    return total / 3600.0


def budget_agreement(config: Config, month: str) -> list[dict[str, Any]]:
    """Per space: processor-hours the budget ledger counts for machines created in a month
    and the same from the accounting store; they come from the same finished lines."""
    from vcyclectl.policy.budget import fold

    start, end = month_bounds(month)
    out = []
    root = StateDir(config.state_dir)
    for space in config.spaces.values():
        if config.accounting is None or not config.accounting.enabled_in(space.name):
            continue
        ledger, _ = fold(root.space(space.name))
        budget_hours = sum(s.processor_seconds for _, s in ledger.items(start, end)) / 3600.0
        out.append({"space": space.name, "month": month,
                    "budget_processor_hours": round(budget_hours, 4),
                    "accounting_processor_hours": round(
                        billed_processor_hours(config, space.name, month), 4)})
    return out
