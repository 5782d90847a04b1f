"""`vcyclectl doctor [SPACE…]`: ask each space's cloud whether all is well.

`status` reads only the state directory (fast, no credentials needed); `doctor` talks to
the clouds: it lists (so credentials and endpoints are checked), reads the flavors every
machinetype needs, and shows whatever warnings the driver offers (OpenStack: application
credentials expiring within 14 days, the project's quota headroom).
"""

from __future__ import annotations

from typing import Optional

import typer

from vcyclectl.commands.context import app_context
from vcyclectl.commands.formats import ROWS, output_option


def doctor(
    ctx: typer.Context,
    spaces: Optional[list[str]] = typer.Argument(None, help="Spaces (default: all)."),
    output: str = output_option(ROWS),
) -> None:
    """Check each space against its cloud: credentials, flavors, quota, expiring secrets.

    \b
    Examples:
      vcyclectl doctor
      vcyclectl doctor cumulus.example.org -o json
    """
    from vcyclectl.commands.output import write_rows
    from vcyclectl.commands.views import doctor_rows

    app = app_context(ctx)
    config = app.config()
    rows = doctor_rows(config, config.select(spaces))
    write_rows(rows, ["space", "cloud", "ok", "machines", "flavors", "warnings"],
               output, name_key="space")
    if not all(row["ok"] for row in rows):
        raise typer.Exit(1)
