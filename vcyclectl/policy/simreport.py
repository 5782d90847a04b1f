"""What a simulation did: one row per step, the figures tests and people check, the CSV,
and the plot (matplotlib, imported only when plotting)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vcyclectl.config import Config

DAY = 86400.0


@dataclass
class SimReport:
    """What a simulation did: one row per step, and the figures tests and people check."""

    columns: list[str]
    rows: list[dict[str, Any]]
    communities: list[str]
    budgets: dict[str, dict[str, float]]
    max_wait_seconds: dict[str, float]
    max_drain_seconds: float
    simulated_seconds: float
    cpu_seconds: float
    passes: int
    #: Of `passes`, those the planner was run for; the others were known to do nothing and
    #: skipped (`simquiet`). Not in the summary: it says how, not what, was simulated.
    planned: int = 0

    @property
    def months_per_cpu_second(self) -> float:
        return (self.simulated_seconds / (30.44 * DAY)) / max(self.cpu_seconds, 1e-9)

    def write_csv(self, path: Path) -> None:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore")
            writer.writeheader()
            for row in self.rows:
                writer.writerow({k: (round(v, 4) if isinstance(v, float) else v)
                                 for k, v in row.items()})

    def summary(self) -> dict[str, Any]:
        return {"passes": self.passes, "simulated_days": round(self.simulated_seconds / DAY, 2),
                "cpu_seconds": round(self.cpu_seconds, 3),
                "months_per_cpu_second": round(self.months_per_cpu_second, 3),
                "budgets": {k: {kk: round(vv, 2) for kk, vv in v.items()}
                            for k, v in self.budgets.items()},
                "max_wait_seconds": {k: round(v, 1) for k, v in self.max_wait_seconds.items()},
                "max_drain_seconds": round(self.max_drain_seconds, 1)}


def plot(report: SimReport, path: Path, title: str = "", *,
         config: "Config | None" = None) -> None:
    """Processors per community over time (priority at the bottom, backfill on top, the
    page's palette, campaign windows shaded), and cumulative spend on a currency axis
    against each budget line, with the final spend marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vcyclectl.policy.plotstyle import colours, label, stack_order

    rows = _hourly(report.rows)
    times = [_utc(r["time"]) for r in rows]
    budgets = sorted({k.split(":")[1] for k in report.columns if k.startswith("budget:")})
    panels = 2 if budgets else 1
    fig, axes = plt.subplots(panels, 1, figsize=(11, 3.6 + 3.4 * (panels - 1)), sharex=True,
                             squeeze=False, gridspec_kw={"height_ratios": [3, 2][:panels]})
    stack = stack_order(config, report.communities) if config else list(report.communities)
    colour = colours(report.communities)
    ax = axes[0][0]
    polys = ax.stackplot(times, *[[r[f"processors:{c}"] for r in rows] for c in stack],
                         labels=[label(config, c) if config else c for c in stack],
                         colors=[colour[c] for c in stack], linewidth=0)
    for poly, c in zip(polys, stack, strict=True):
        if config and c in config.communities and config.communities[c].backfill:
            poly.set_hatch("//")
            poly.set_edgecolor("white")
    ax.set_ylabel("processors (hourly average)")
    ax.set_ylim(bottom=0)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], loc="upper left", bbox_to_anchor=(1.01, 1.0),
              fontsize="small", title="community", title_fontsize="small", frameon=False)
    for i, panel in enumerate(axes[:, 0]):
        _shade_campaigns(panel, config, report, colour, labelled=i == 0)
    if budgets:
        _spend_panel(axes[1][0], report, rows, times, budgets, config)
    ax.set_title(title or _plain_title(report, config), loc="left", fontsize="medium",
                 pad=16)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _utc(t: float) -> Any:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(t, tz=timezone.utc)


def _hourly(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows averaged per hour of simulated time (processors) or taken at its end (money):
    ten-minute passes draw as noise at the scale of months."""
    if len(rows) < 2 or rows[1]["time"] - rows[0]["time"] >= 3600:
        return rows
    out: list[dict[str, Any]] = []
    bucket: list[dict[str, Any]] = []
    for row in rows:
        if bucket and int(row["time"] // 3600) != int(bucket[0]["time"] // 3600):
            out.append(_mean(bucket))
            bucket = []
        bucket.append(row)
    if bucket:
        out.append(_mean(bucket))
    return out


def _mean(bucket: list[dict[str, Any]]) -> dict[str, Any]:
    merged = dict(bucket[-1])
    merged["time"] = bucket[0]["time"]
    for key in merged:
        if key.startswith("processors"):
            merged[key] = sum(r[key] for r in bucket) / len(bucket)
    return merged


def _plain_title(report: SimReport, config: "Config | None") -> str:
    if not report.rows:
        return "Simulated provisioning"
    first, last = _utc(report.rows[0]["time"]), _utc(report.rows[-1]["time"])
    title = (f"Simulated provisioning, {first:%-d %b %Y} to {last:%-d %b %Y}: processors per "
             "community (top)")
    if report.budgets:
        title += " and spend against the budget (bottom)"
    return title


def _shade_campaigns(ax: Any, config: "Config | None", report: SimReport,
                     colour: dict[str, str], *, labelled: bool) -> None:
    """Each campaign's window: a tint over the whole panel, edged in its community's
    colour, so it shows through the stack too; named once, in the top panel."""
    if config is None or not report.rows:
        return
    start, end = report.rows[0]["time"], report.rows[-1]["time"]
    for campaign in config.campaigns:
        if campaign.end_at <= start or campaign.start_at >= end:
            continue
        tone = colour.get(campaign.community, "#999999")
        since, until = _utc(max(campaign.start_at, start)), _utc(min(campaign.end_at, end))
        ax.axvspan(since, until, color=tone, alpha=0.15, linewidth=0, zorder=3)
        for edge in (since, until):
            ax.axvline(edge, color=tone, linestyle="--", linewidth=1.2, zorder=3)
        if labelled:
            ax.text(since, 1.01, f"{campaign.community} campaign", color="#222222",
                    transform=ax.get_xaxis_transform(), va="bottom", ha="left",
                    fontsize="small")


def _spend_panel(ax: Any, report: SimReport, rows: list[dict[str, Any]], times: list[Any],
                 budgets: list[str], config: "Config | None") -> None:
    from matplotlib.ticker import FuncFormatter

    currency = ""
    for i, name in enumerate(budgets):
        budget = config.budgets.get(name) if config else None
        currency = budget.currency if budget else currency
        tone = "#000000" if i == 0 else "#56B4E9"
        ax.plot(times, [r[f"budget:{name}:spent"] for r in rows], color=tone, linewidth=2,
                label=f"{name}: spent")
        ax.plot(times, [r[f"budget:{name}:line"] for r in rows], color="#D55E00",
                linestyle="--", linewidth=1.2, label=f"{name}: budget line (even pace)")
        amount = report.budgets[name]["amount"]
        ax.axhline(amount, color="#D55E00", linewidth=0.8, linestyle=":",
                   label=f"{name}: amount {amount:,.0f} {currency}".rstrip())
        final = report.budgets[name]["final_spent"]
        ax.plot([times[-1]], [final], marker="o", color=tone, markersize=6)
        ax.annotate(f"final {final:,.0f} {currency} ({final / amount:.1%} of {amount:,.0f})"
                    if amount else f"final {final:,.0f} {currency}",
                    (times[-1], final), xytext=(-8, -18), textcoords="offset points",
                    ha="right", fontsize="small")
    ax.set_ylabel(f"cumulative spend ({currency})" if currency else "cumulative spend")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
