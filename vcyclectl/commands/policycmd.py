"""`budget`, `schedule` and `simulate`: the provisioning policy's commands (docs/policy.md).

Thin: parse, call `vcyclectl.policy.budget` / `schedule` / `simulate`, render. Everything heavy
(the simulator, matplotlib) is imported inside the command that needs it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import typer

from vcyclectl import log
from vcyclectl.commands.context import app_context, info
from vcyclectl.commands.formats import ROWS, no_headers_option, output_option

#: `schedule` gives a document: Markdown (its table for people), JSON, YAML or an HTML page.
SCHEDULE_FORMATS = ("markdown", "table", "json", "yaml", "html")

BUDGET_COLUMNS = ["budget", "space", "community", "currency", "amount", "spent",
                  "burn_rate_per_hour", "paced_rate_per_hour", "forecast_at_end", "remaining",
                  "running_processors", "other_currency"]


def _when(value: str | None, *, end: bool = False) -> float | None:
    """A `--from`/`--to`/`--at` flag: an ISO date or date and time (UTC unless it says)."""
    if value is None:
        return None
    import re

    from vcyclectl.config import WHEN_PATTERN, parse_when
    from vcyclectl.errors import UsageError

    if not re.fullmatch(WHEN_PATTERN, value):
        raise UsageError(f"not a date: {value!r} (write 2026-12-01 or 2026-12-01T08:00:00Z)")
    return parse_when(value, end=end)


def budget(
    ctx: typer.Context,
    at: Optional[str] = typer.Option(None, "--at", metavar="WHEN",
                                     help="As of this date/time (default now)."),
    output: str = output_option(ROWS),
    no_headers: bool = no_headers_option(),
) -> None:
    """Spend so far, burn rate, pacing and forecast at the end date, per budget, space and
    community.

    \b
    Examples:
      vcyclectl budget
      vcyclectl budget --at 2026-12-31 -o json
    """
    from vcyclectl.policy.budget import budget_rows
    from vcyclectl.commands.output import write_rows

    app = app_context(ctx)
    config = app.config()
    if not config.budgets:
        info(app, "no budgets configured")
    now = _when(at) or time.time()
    rows = budget_rows(config, now)
    write_rows(rows, BUDGET_COLUMNS, output, name_key="budget", headers=not no_headers)


def schedule(
    ctx: typer.Context,
    fmt: str = output_option(SCHEDULE_FORMATS, "markdown", aliases=("--format", "-f"),
                             extra_help="table is the Markdown; --format is another name"),
    out: Optional[Path] = typer.Option(None, "--out", metavar="FILE",
                                       help="Write here (default stdout)."),
    weeks: Optional[int] = typer.Option(None, "--weeks", min=1,
                                        help="Plan this many weeks (default: to the last "
                                             "budget's end)."),
    start: Optional[str] = typer.Option(None, "--from", metavar="WHEN",
                                        help="Plan from this date (default now)."),
    demand: Optional[Path] = typer.Option(None, "--demand", metavar="FILE",
                                          help="Demand profile (YAML); default: the announced "
                                               "campaigns."),
    step: float = typer.Option(1800.0, "--step", min=60, help="Simulated seconds per pass."),
) -> None:
    """The published provisioning plan: per week, which community gets what capacity and
    spend (Markdown, JSON, YAML, or a self-contained HTML page with a chart).

    \b
    Examples:
      vcyclectl schedule
      vcyclectl schedule --weeks 8 -o json
      vcyclectl schedule -o html --out /var/www/html/schedule.html
      vcyclectl schedule --from 2026-12-01 --demand demand.yaml
    """
    from vcyclectl.policy import schedule as plan_module
    from vcyclectl.commands.output import working, write_data

    app = app_context(ctx)
    config = app.config()
    from vcyclectl.policy.simulate import check_modelled

    for left_out in check_modelled(config, "schedule"):
        log.warning("space not modelled, left out of the plan", space=left_out)
    now = _when(start) or time.time()
    profile = None
    if demand is not None:
        from vcyclectl.policy.simulate import load_demand

        horizon = max([b.end_at for b in config.budgets.values()] or [now]) + 7 * 86400.0 * (
            weeks or 12)
        profile = load_demand(demand, now, horizon)
    spent = plan_module.initial_spend(config, now) if config.state_dir.exists() else {}
    with working("planning the schedule"):
        result = plan_module.build(config, now, weeks=weeks, demand=profile,
                                   step_seconds=step, spent=spent)
    if fmt in ("json", "yaml"):
        import io

        buffer = io.StringIO()
        write_data(result.to_json(), fmt, buffer)
        text = buffer.getvalue()
    elif fmt == "html":
        text = plan_module.html_page(result)
    else:
        text = plan_module.markdown(result)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        info(app, f"schedule written to {out}")


def simulate(
    ctx: typer.Context,
    start: Optional[str] = typer.Option(None, "--from", metavar="WHEN",
                                        help="Start (default: the first budget's start, else "
                                             "now)."),
    end: Optional[str] = typer.Option(None, "--to", metavar="WHEN",
                                      help="End (default: the last budget's end, else 28 "
                                           "days)."),
    demand: Optional[Path] = typer.Option(None, "--demand", metavar="FILE",
                                          help="Demand profile (YAML); default: the announced "
                                               "campaigns."),
    out: Path = typer.Option(Path("simulation"), "--out", metavar="DIR",
                             help="Report directory."),
    step: float = typer.Option(600.0, "--step", min=1, help="Simulated seconds per pass."),
    seed: int = typer.Option(0, "--seed", help="Seed for machine names and lives."),
    plot: bool = typer.Option(True, "--plot/--no-plot", help="Write simulation.png "
                              "(needs matplotlib: pip install 'vcyclectl[policy]')."),
    output: str = output_option(ROWS, extra_help="json and yaml are the whole summary; the "
                                                 "rows are its budgets"),
    no_headers: bool = no_headers_option(),
    signals: bool = typer.Option(False, "--signals/--probing", help="Give the planner demand "
                                 "readings from the profile's queue model (docs/demand.md) "
                                 "instead of probing for work."),
    compare_signals: bool = typer.Option(False, "--compare-signals", help="Run the case "
                                         "twice, probing and with signals, and print spend on "
                                         "machines that found no work and wait times."),
) -> None:
    """Run the real planner over simulated time on each space's model (local, EC2 and GCE
    spaces, from their configuration); write a CSV of every step, a PNG plot, and a
    summary.

    \b
    Examples:
      vcyclectl simulate
      vcyclectl simulate --from 2026-10-01 --to 2027-03-31 --out sim --no-plot
      vcyclectl simulate --demand demand.yaml --seed 7 -o json
    """
    from vcyclectl.commands.output import working, write_data, write_rows
    from vcyclectl.policy.simulate import demand_from_campaigns, load_demand, simulate_to

    app = app_context(ctx)
    config = app.config()
    from vcyclectl.policy.simulate import check_modelled

    for left_out in check_modelled(config, "simulate"):
        log.warning("space not modelled, left out of the plan", space=left_out)
    starts = [b.start_at for b in config.budgets.values()]
    ends = [b.end_at for b in config.budgets.values()]
    t0 = _when(start) or (min(starts) if starts else time.time())
    t1 = _when(end, end=True) or (max(ends) if ends else t0 + 28 * 86400.0)
    if t1 <= t0:
        from vcyclectl.errors import UsageError

        raise UsageError("--to must be after --from")
    profile = load_demand(demand, t0, t1) if demand else demand_from_campaigns(config)
    if plot and not _can_plot():
        log.warning("matplotlib is not installed (pip install 'vcyclectl[policy]'): the CSV "
                    "and the summary are written, the plot is skipped")
        plot = False
    if compare_signals:
        return _compare_signals(config, profile, t0, t1, out, step, seed, output, no_headers)
    with working(f"simulating {(t1 - t0) / 86400:.0f} days"):
        simulate_to(config, profile, t0, t1, out, step_seconds=step, seed=seed,
                    plot_png=plot, signals=signals)
    import json

    # What was written (the report's summary with the no-work spend), printed the same.
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    info(app, f"simulated {summary['simulated_days']} days in {summary['cpu_seconds']} CPU "
              f"seconds ({summary['months_per_cpu_second']} months per CPU second); "
              f"report in {out}")
    if not write_data(summary, output):
        rows = [{"budget": name, **values} for name, values in summary["budgets"].items()]
        write_rows(rows, ["budget", "amount", "spent_at_end_date", "final_spent", "max_spent",
                          "max_committed"], output, name_key="budget",
                   headers=not no_headers)


def _compare_signals(config: Any, profile: Any, t0: float, t1: float, out: Path,
                     step: float, seed: int, output: str, no_headers: bool) -> None:
    """`simulate --compare-signals`: the same case, probing and with demand signals."""
    import json

    from vcyclectl.commands.output import write_data, write_rows
    from vcyclectl.policy.demandsim import compare

    figures = compare(config, profile, t0, t1, step_seconds=step, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "demand-comparison.json").write_text(json.dumps(figures, indent=2) + "\n")
    if write_data(figures, output):
        return
    rows = [{"run": mode, "no_work_spend": f["no_work_spend"],
             "no_work_machines": f["no_work_machines"], "spent": f["spent"],
             **{f"ramp_up_mean_s:{c}": w["mean"] for c, w in f["ramp_up_seconds"].items()}}
            for mode, f in figures.items()]
    write_rows(rows, list(rows[0]), output, name_key="run", headers=not no_headers)


def _can_plot() -> bool:
    """Whether the plotting extra is there, asked before minutes of simulation, not after."""
    import importlib.util

    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        return False
