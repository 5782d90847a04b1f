"""`status`: per space and machinetype, what runs, shares, backoff, lock and last pass."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vcyclectl.commands.context import app_context
from vcyclectl.commands.statuspage import OUTPUT_HELP, check_status_output

COLUMNS = ["space", "machinetype", "machines", "processors", "processors_limit",
           "target_share", "actual_share", "backoff_until", "drained", "lock", "last_pass"]


def status(
    ctx: typer.Context,
    space: Optional[list[str]] = typer.Argument(None, help="Spaces (default: all)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help=OUTPUT_HELP,
                                         callback=check_status_output),
    out: Optional[Path] = typer.Option(None, "--out", help="With --output html: the file."),
) -> None:
    """Machines by state, processors in use against limits, shares, backoff, lock holder
    (flagged OVERDUE, with what to do, when held longer than max_pass_seconds)."""
    from vcyclectl.commands.output import write_rows
    from vcyclectl.commands.views import status_rows

    app = app_context(ctx)
    config = app.config()
    if output == "html":
        from vcyclectl.commands.statuspage import write_status_page

        return write_status_page(config, config.select(space), out)
    rows = status_rows(config, config.select(space))
    fmt = app.fmt(output)
    if fmt == "table":
        for row in rows:
            row["machines"] = " ".join(f"{k}:{v}" for k, v in sorted(row["states"].items())) or "0"
    write_rows(rows, COLUMNS, fmt, title="status", name_key="machinetype")
    warned = set()
    for row in rows:  # a lock held past max_pass_seconds: said on stderr, whatever the format
        if row.get("lock_warning") and row["space"] not in warned:
            warned.add(row["space"])
            typer.echo(f"{row['space']}: {row['lock_warning']}", err=True)
