"""`vcyclectl doctor [SPACE…]`: ask each space's cloud whether all is well.

`status` reads only the state directory (fast, no credentials needed); `doctor` talks to
the clouds: it lists (so credentials and endpoints are checked), reads the flavors every
machinetype needs, and shows whatever warnings the driver offers (OpenStack: application
credentials expiring within 14 days, the project's quota headroom).
"""

from __future__ import annotations

from typing import Optional

import typer

from vcyclectl.commands.context import OUTPUT_HELP, app_context, check_output


def doctor(
    ctx: typer.Context,
    spaces: Optional[list[str]] = typer.Argument(None, help="Spaces (default: all)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help=OUTPUT_HELP,
                                         callback=check_output),
) -> None:
    """Check each space against its cloud: credentials, flavors, quota, expiring secrets."""
    from vcyclectl.commands.output import write_rows
    from vcyclectl.commands.views import doctor_rows

    app = app_context(ctx)
    config = app.config()
    rows = doctor_rows(config, config.select(spaces))
    write_rows(rows, ["space", "cloud", "ok", "machines", "flavors", "warnings"],
               app.fmt(output), title="doctor", name_key="space")
    if not all(row["ok"] for row in rows):
        raise typer.Exit(1)
