"""`status`: per space and machinetype, what runs, shares, backoff, lock and last pass."""

from __future__ import annotations

from typing import Optional

import typer

from vcyclectl.commands.context import OUTPUT_HELP, app_context, check_output

COLUMNS = ["space", "machinetype", "machines", "processors", "processors_limit",
           "target_share", "actual_share", "backoff_until", "drained", "lock", "last_pass"]


def status(
    ctx: typer.Context,
    space: Optional[list[str]] = typer.Argument(None, help="Spaces (default: all)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help=OUTPUT_HELP,
                                         callback=check_output),
) -> None:
    """Machines by state, processors in use against limits, shares, backoff, lock holder."""
    from vcyclectl.commands.output import write_rows
    from vcyclectl.commands.views import status_rows

    app = app_context(ctx)
    config = app.config()
    rows = status_rows(config, config.select(space))
    fmt = app.fmt(output)
    if fmt == "table":
        for row in rows:
            row["machines"] = " ".join(f"{k}:{v}" for k, v in sorted(row["states"].items())) or "0"
    write_rows(rows, COLUMNS, fmt, title="status", name_key="machinetype")
