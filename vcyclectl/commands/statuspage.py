"""`vcyclectl status --output html --out FILE`: the status page (vcyclectl.monitoring.page),
the same one `serve` shows at `/`, written atomically to a file."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import typer

from vcyclectl.config import Config, Space

HISTORY_SECONDS = 7 * 86400.0


def write_status_page(config: Config, spaces: Iterable[Space], out: Path | None) -> None:
    """Render the page for these spaces and write it to `out` (a usage error without)."""
    from vcyclectl.errors import UsageError
    from vcyclectl.monitoring.fleet import hostname, snapshot
    from vcyclectl.monitoring.page import render
    from vcyclectl.state.files import write_atomic

    if out is None:
        raise UsageError("--output html needs --out FILE")
    fleet = snapshot(config, list(spaces), history_seconds=HISTORY_SECONDS)
    write_atomic(out, render(fleet, host=hostname()).encode(), durable=False)
    typer.echo(f"status page written to {out}", err=True)
