"""`status`: per space and machinetype, what runs, shares, backoff, lock and last pass."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Optional

import typer

from vcyclectl.commands.completion import complete_space
from vcyclectl.commands.context import app_context
from vcyclectl.commands.formats import ROWS, no_headers_option, output_option

if TYPE_CHECKING:
    from vcyclectl.config import Config, Space

COLUMNS = ["space", "machinetype", "machines", "processors", "processors_limit",
           "target_share", "actual_share", "backoff_until", "drained", "lock", "last_pass"]


def status(
    ctx: typer.Context,
    space: Optional[list[str]] = typer.Argument(None, metavar="[SPACE]...",
                                                help="Spaces (default: all).",
                                                autocompletion=complete_space),
    output: str = output_option((*ROWS, "html"), extra_help="html is the status page, "
                                                            "written to --out FILE"),
    out: Optional[Path] = typer.Option(None, "--out", metavar="FILE",
                                       help="With --output html: the file."),
    watch: Optional[float] = typer.Option(None, "--watch", "-w", metavar="[SECONDS]", min=0.1,
                                          help="Redraw every SECONDS (2 when not given) until "
                                               "Ctrl-C; with -o json one document per line."),
    no_headers: bool = no_headers_option(),
) -> None:
    """Machines by state, processors in use against limits, shares, backoff, lock holder
    (flagged OVERDUE, with what to do, when held longer than max_pass_seconds).

    \b
    Examples:
      vcyclectl status
      vcyclectl status cumulus.example.org -o json
      vcyclectl status --watch
      vcyclectl status -o html --out /var/www/html/vcyclectl.html
    """
    from vcyclectl.commands.output import write_rows
    from vcyclectl.commands.views import status_rows
    from vcyclectl.commands.watch import repeat

    app = app_context(ctx)
    config = app.config()
    selected = config.select(space)
    if output == "html":
        from vcyclectl.commands.statuspage import write_status_page
        from vcyclectl.errors import UsageError

        if watch is not None:
            raise UsageError("--watch does not go with -o html: write the page from cron, "
                             "or let `serve` show it at /")
        return write_status_page(config, selected, out)

    def show(stream: Any) -> None:
        rows = status_rows(config, selected)
        columns = with_demand(config, selected, rows)
        if output == "table":
            for row in rows:
                row["machines"] = " ".join(f"{k}:{v}" for k, v in
                                           sorted(row["states"].items())) or "0"
        write_rows(rows, columns, output, name_key="machinetype", headers=not no_headers,
                   stream=stream)
        warned = set()
        for row in rows:  # a lock held past max_pass_seconds: said on stderr, whatever -o
            if row.get("lock_warning") and row["space"] not in warned:
                warned.add(row["space"])
                typer.echo(f"{row['space']}: {row['lock_warning']}", err=True)

    repeat(show, watch, output)


def with_demand(config: "Config", spaces: "Iterable[Space]",
                rows: list[dict[str, Any]]) -> list[str]:
    """Each machinetype's community's last demand reading and its age (docs/demand.md): the
    `demand` field, and a `demand` column only when some community has a source."""
    import time

    from vcyclectl.demand import has_sources, last_readings

    spaces = list(spaces)
    if not any(has_sources(config, space) for space in spaces):
        return COLUMNS
    now = time.time()
    for space in spaces:
        readings = last_readings(config, space, now)
        for row in rows:
            reading = readings.get(row["machinetype"]) if row["space"] == space.name else None
            if reading is not None:
                shown = reading.to_json(now)
                row["demand"] = shown
                row["demand_text"] = (f"unavailable: {shown['unavailable']}"
                                      if "unavailable" in shown else
                                      f"{reading.signal} ({shown['age_seconds']:.0f}s ago)")
    return [*COLUMNS, "demand_text"]
