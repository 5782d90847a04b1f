"""`vcyclectl schedule`: the published provisioning plan, week by week.

The plan is the real planner run forward over simulated time (`simulate.Simulation`) from
now to the end of the last budget: the campaigns communities have announced are when they
are assumed to have work (or a demand profile, when given), backfill always has work, and
each budget starts from what it has spent so far according to the state directory. Each
week then says how many processors each community is expected to get, and what it costs.

Rendered as JSON (for scripts), Markdown (for a wiki) and one self-contained HTML page
with an inline SVG chart and no external URL, so it can be put on any web server as is.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

from vcyclectl.config import Config
from vcyclectl.policy.simulate import Demand, Simulation, demand_from_campaigns

@dataclass(frozen=True)
class Schedule:
    """Weeks of planned capacity and spend, plus what each announced campaign gets."""

    generated_at: float
    start: float
    end: float
    communities: tuple[str, ...]
    weeks: tuple[dict[str, Any], ...]
    campaigns: tuple[dict[str, Any], ...]
    budgets: tuple[dict[str, Any], ...]
    #: Communities bottom to top in the chart (priority first, backfill last).
    stack: tuple[str, ...] = ()
    backfill: tuple[str, ...] = ()

    @property
    def currency(self) -> str:
        """The currency spend is in (the budgets'), or "" without budgets."""
        codes = sorted({str(b["currency"]) for b in self.budgets})
        return "/".join(codes)

    def to_json(self) -> dict[str, Any]:
        return {"generated_at": _iso(self.generated_at), "from": _iso(self.start),
                "to": _iso(self.end), "last_day": _last_day(self.end),
                "communities": list(self.communities),
                "budgets": list(self.budgets), "campaigns": list(self.campaigns),
                "weeks": list(self.weeks)}


def initial_spend(config: Config, now: float) -> dict[str, float]:
    """What each budgeted space has spent in its window so far (ledger + running)."""
    from vcyclectl.policy.budget import fold, live, machine_cost
    from vcyclectl.core.provisioning import budget_of
    from vcyclectl.state.store import StateDir

    root = StateDir(config.state_dir)
    out: dict[str, float] = {}
    for name in config.spaces:
        budget = budget_of(config, name)
        if budget is None:
            continue
        store = root.space(name)
        ledger, _ = fold(store)
        spent = ledger.spent(budget.start_at, budget.end_at)
        for rec in live(store.records().values()):
            if budget.start_at <= rec.created_at < budget.end_at:
                spent += machine_cost(rec.price_per_hour, rec.created_at, now)
        out[name] = spent
    return out


def build(config: Config, now: float, *, weeks: int | None = None, demand: Demand | None = None,
          step_seconds: float = 1800.0, spent: Mapping[str, float] | None = None,
          seed: int = 0) -> Schedule:
    """Plan from `now` (or the first budget's start, if later) to the last budget's end,
    or `weeks` weeks when given or when no budget is configured."""
    budget_starts = [b.start_at for b in config.budgets.values()]
    start = max(now, min(budget_starts)) if budget_starts and weeks is None else now
    if weeks is not None or not config.budgets:
        end = start + 7 * 86400.0 * (weeks or 12)
    else:
        end = max(b.end_at for b in config.budgets.values())
    sim = Simulation(config, demand or demand_from_campaigns(config), start, end,
                     step_seconds=step_seconds, seed=seed, initial_spend=spent, tail=False)
    report = sim.run()
    communities = tuple(report.communities)
    from vcyclectl.policy.plotstyle import stack_order

    return Schedule(generated_at=now, start=start, end=end, communities=communities,
                    weeks=tuple(_weeks(report.rows, communities, step_seconds, config)),
                    campaigns=tuple(_campaigns(config, report.rows)),
                    budgets=tuple(_budgets(config, report.rows)),
                    stack=tuple(stack_order(config, communities)),
                    backfill=tuple(c for c in communities if c in config.communities
                                   and config.communities[c].backfill))


def _week_start(t: float) -> datetime:
    day = datetime.fromtimestamp(t, tz=timezone.utc).replace(hour=0, minute=0, second=0,
                                                              microsecond=0)
    return day - timedelta(days=day.weekday())


def _weeks(rows: Sequence[Mapping[str, Any]], communities: Sequence[str], step: float,
           config: Config) -> list[dict[str, Any]]:
    by_week: dict[datetime, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_week.setdefault(_week_start(row["time"]), []).append(row)
    out: list[dict[str, Any]] = []
    previous: Mapping[str, Any] | None = None
    for week, items in sorted(by_week.items()):
        last = items[-1]
        days = round(len(items) * step / 86400.0, 2)
        entry: dict[str, Any] = {"week": f"{week.isocalendar()[0]}-W{week.isocalendar()[1]:02d}",
                                 "from": week.strftime("%Y-%m-%d"), "communities": {},
                                 "days": days, "partial": days < 7.0 - 1e-6}
        total = 0.0
        for c in communities:
            processors = [r[f"processors:{c}"] for r in items]
            spend = last[f"spend:{c}"] - (previous[f"spend:{c}"] if previous else 0.0)
            total += spend
            entry["communities"][c] = {
                "processors": round(sum(processors) / len(processors), 1),
                "processor_hours": round(sum(processors) * step / 3600.0, 1),
                "spend": round(spend, 2)}
        entry["spend"] = round(total, 2)
        for budget in config.budgets.values():
            entry.setdefault("budgets", {})[budget.name] = {
                "spent": round(last[f"budget:{budget.name}:spent"], 2),
                "line": round(last[f"budget:{budget.name}:line"], 2)}
        out.append(entry)
        previous = last
    return out


def _campaigns(config: Config, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for campaign in config.campaigns:
        inside = [r[f"processors:{campaign.community}"] for r in rows
                  if campaign.start_at <= r["time"] < campaign.end_at
                  and f"processors:{campaign.community}" in r]
        out.append({"name": campaign.name, "community": campaign.community,
                    "from": _iso(campaign.start_at), "to": _iso(campaign.end_at),
                    "last_day": _last_day(campaign.end_at),
                    "asked_processors": campaign.processors, "asked_share": campaign.share,
                    "planned_processors": round(sum(inside) / len(inside), 1) if inside else None})
    return out


def _budgets(config: Config, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for budget in config.budgets.values():
        key = f"budget:{budget.name}:spent"
        out.append({"name": budget.name, "amount": budget.amount, "currency": budget.currency,
                    "from": budget.start, "to": budget.end,
                    "planned_spend": round(rows[-1][key], 2) if rows else 0.0})
    return out


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _last_day(end: float) -> str:
    """The last day a window includes (ends are exclusive instants; people read days)."""
    return _iso(end - 1)[:10]


# -- rendering ------------------------------------------------------------------------------
def markdown(schedule: Schedule) -> str:
    """A Markdown page: campaigns, budgets, and one row per week (average processors)."""
    doc = schedule.to_json()
    lines = [f"# Provisioning plan, {doc['from'][:10]} to {doc['last_day']}", "",
             f"Generated {_iso(schedule.generated_at)} by `vcyclectl schedule`: the planner run "
             "forward with the announced campaigns; average processors per week.", ""]
    if schedule.campaigns:
        lines += ["| campaign | community | from | to | asked | planned processors |",
                  "|---|---|---|---|---|---|"]
        for c in schedule.campaigns:
            asked = c["asked_processors"] if c["asked_processors"] is not None else (
                f"{c['asked_share']:.0%}" if c["asked_share"] is not None else "all it can use")
            lines.append(f"| {c['name']} | {c['community']} | {c['from'][:10]} | {c['last_day']} "
                         f"| {asked} | {c['planned_processors']} |")
        lines.append("")
    for b in schedule.budgets:
        lines.append(f"Budget **{b['name']}**: {b['amount']:,.2f} {b['currency']} from "
                     f"{b['from']} to {b['to']}; planned spend {b['planned_spend']:,.2f}.")
    if schedule.budgets:
        lines.append("")
    spend = f"spend ({schedule.currency})" if schedule.currency else "spend"
    columns = ["week", "from", *schedule.communities, spend]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for w in schedule.weeks:
        cells = " | ".join(f"{w['communities'][c]['processors']:g}" for c in schedule.communities)
        week = f"{w['week']} (partial: {w['days']:g} days)" if w.get("partial") else w["week"]
        lines.append(f"| {week} | {w['from']} | {cells} | {w['spend']:,.2f} |")
    return "\n".join(lines) + "\n"


def html_page(schedule: Schedule) -> str:
    """One self-contained page: inline CSS and SVG, no script, no external URL."""
    from vcyclectl.policy.schedulechart import campaign_chart, weekly_chart

    currency = html.escape(schedule.currency)
    md_rows = []
    for w in schedule.weeks:
        cells = "".join(f"<td>{w['communities'][c]['processors']:g}</td>"
                        for c in schedule.communities)
        partial = (f' <span class="partial">partial: {w["days"]:g} days</span>'
                   if w.get("partial") else "")
        md_rows.append(f"<tr><td>{html.escape(w['week'])}{partial}</td><td>"
                       f"{html.escape(w['from'])}</td>{cells}<td>{w['spend']:,.2f}</td></tr>")
    campaigns = "".join(
        f"<tr><td>{html.escape(c['name'])}</td><td>{html.escape(c['community'])}</td>"
        f"<td>{c['from'][:10]}</td><td>{c['last_day']}</td><td>{_asked(c)}</td>"
        f"<td>{c['planned_processors'] if c['planned_processors'] is not None else '-'}</td></tr>"
        for c in schedule.campaigns)
    budgets = "".join(
        f"<li>{html.escape(b['name'])}: {b['amount']:,.2f} {html.escape(b['currency'])} from "
        f"{html.escape(b['from'])} to {html.escape(b['to'])}, planned spend "
        f"{b['planned_spend']:,.2f} {html.escape(b['currency'])}</li>" for b in schedule.budgets)
    heads = "".join(f"<th>{html.escape(c)}{' (backfill)' if c in schedule.backfill else ''}</th>"
                    for c in schedule.communities)
    doc = schedule.to_json()
    spend_head = f"spend ({currency})" if currency else "spend"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Provisioning plan {doc['from'][:10]} to {doc['last_day']}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 2px 8px; text-align: right; }}
th {{ background: #f4f4f4; }}
.tick {{ fill: #333; font-size: 11px; }}
.axis-label {{ fill: #222; font-size: 12px; }}
.partial, .partial-label {{ color: #555; fill: #555; font-size: 11px; font-style: italic; }}
</style></head><body>
<h1>Provisioning plan, {doc['from'][:10]} to {doc['last_day']}</h1>
<p>Generated {doc['generated_at']} by <code>vcyclectl schedule</code>: the planner run forward
with the campaigns communities announced. Average processors per week; priority communities
at the bottom, backfill on top.</p>
{weekly_chart(schedule)}
<h2>Budgets</h2><ul>{budgets or '<li>none</li>'}</ul>
<h2>Campaigns</h2>
{campaign_chart(schedule)}
<table><tr><th>campaign</th><th>community</th><th>from</th><th>to</th>
<th>asked processors</th><th>planned processors</th></tr>{campaigns}</table>
<h2>Weeks</h2>
<table><tr><th>week</th><th>from</th>{heads}<th>{spend_head}</th></tr>{''.join(md_rows)}</table>
</body></html>
"""


def _asked(campaign: Mapping[str, Any]) -> str:
    if campaign["asked_processors"] is not None:
        return f"{campaign['asked_processors']:,}"
    if campaign["asked_share"] is not None:
        return f"{campaign['asked_share']:.0%} of each space"
    return "all it can use"
