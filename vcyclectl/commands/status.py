"""`status`: per space and machinetype, what runs, shares, backoff, lock and last pass."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Optional

import typer

from vcyclectl.commands.context import app_context
from vcyclectl.commands.statuspage import OUTPUT_HELP, check_status_output

if TYPE_CHECKING:
    from vcyclectl.config import Config, Space

COLUMNS = ["space", "machinetype", "machines", "processors", "processors_limit",
           "target_share", "actual_share", "backoff_until", "drained", "lock", "last_pass"]


def status(
    ctx: typer.Context,
    space: Optional[list[str]] = typer.Argument(None, help="Spaces (default: all)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help=OUTPUT_HELP,
                                         callback=check_status_output),
    out: Optional[Path] = typer.Option(None, "--out", help="With --output html: the file."),
) -> None:
    """Machines by state, processors in use against limits, shares, backoff, lock holder."""
    from vcyclectl.commands.output import write_rows
    from vcyclectl.commands.views import status_rows

    app = app_context(ctx)
    config = app.config()
    if output == "html":
        from vcyclectl.commands.statuspage import write_status_page

        return write_status_page(config, config.select(space), out)
    rows = status_rows(config, config.select(space))
    columns = with_demand(config, config.select(space), rows)
    fmt = app.fmt(output)
    if fmt == "table":
        for row in rows:
            row["machines"] = " ".join(f"{k}:{v}" for k, v in sorted(row["states"].items())) or "0"
    write_rows(rows, columns, fmt, title="status", name_key="machinetype")


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
