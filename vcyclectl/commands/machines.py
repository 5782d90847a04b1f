"""`list` and `inspect`: the fleet, from the state directory or (`--live`) the cloud."""

from __future__ import annotations

from typing import Optional

import typer

from vcyclectl.commands.context import OUTPUT_HELP, app_context, check_output


def list_machines(
    ctx: typer.Context,
    space: Optional[list[str]] = typer.Option(None, "--space", "-s", help="Only these spaces."),
    machinetype: Optional[str] = typer.Option(None, "--machinetype", "-m"),
    state: Optional[str] = typer.Option(None, "--state",
                                        help="creating|starting|running|stopped|failed|"
                                             "deleting|unknown"),
    live: bool = typer.Option(False, "--live", help="Ask the cloud instead of the state dir."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help=OUTPUT_HELP,
                                         callback=check_output),
) -> None:
    """Machines, one per line, with stable fields for scripts."""
    from vcyclectl.commands.output import write_rows
    from vcyclectl.commands.views import LIST_FIELDS, machine_rows

    app = app_context(ctx)
    config = app.config()
    rows = machine_rows(config, config.select(space), live=live, machinetype=machinetype,
                        state=state)
    write_rows(rows, LIST_FIELDS[:7] if app.fmt(output) == "table" else LIST_FIELDS,
               app.fmt(output), title=None)


def inspect(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A machine name."),
    live: bool = typer.Option(False, "--live", help="Also ask the cloud for its details."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="table | json",
                                         callback=check_output),
) -> None:
    """One machine: state, times, heartbeat, shutdown message, drain, events."""
    from vcyclectl.commands.output import key_values, write_json
    from vcyclectl.commands.views import inspect_machine

    app = app_context(ctx)
    data = inspect_machine(app.config(), name, live=live)
    if app.fmt(output) == "json":
        write_json(data)
    else:
        key_values(data)
