"""`list` and `inspect`: the fleet, from the state directory or (`--live`) the cloud."""

from __future__ import annotations

from typing import Any, Optional

import typer

from vcyclectl.commands.formats import ROWS, WIDE, no_headers_option, output_option
from vcyclectl.commands.context import app_context
from vcyclectl.commands.completion import (complete_machine, complete_machinetype,
                                            complete_space, complete_state)
from vcyclectl.core.machinestate import MachineState

#: What `--state` accepts (views.LIST_STATES; spelled here so `list` starts without views).
STATES = "|".join(s.value for s in MachineState if s is not MachineState.GONE)

#: `list`'s table; `-o wide` adds where and why (`heartbeat_age`, `end_reason` are computed
#: only then: they cost a look into every machine's joboutputs).
TABLE = ("name", "space", "machinetype", "state", "processors", "created_at", "draining")
WIDE_TABLE = TABLE + ("flavor", "zone", "cloud_id", "heartbeat_age", "end_reason")


def list_machines(
    ctx: typer.Context,
    space: Optional[list[str]] = typer.Option(None, "--space", "-s", metavar="SPACE",
                                              help="Only these spaces (repeatable).",
                                              autocompletion=complete_space),
    machinetype: Optional[str] = typer.Option(None, "--machinetype", "-m", metavar="MACHINETYPE",
                                              help="Only this machinetype.",
                                              autocompletion=complete_machinetype),
    state: Optional[str] = typer.Option(None, "--state", metavar=f"[{STATES}]",
                                        help="Only machines in this state.",
                                        autocompletion=complete_state),
    live: bool = typer.Option(False, "--live", help="Ask the cloud instead of the state dir."),
    watch: Optional[float] = typer.Option(None, "--watch", "-w", metavar="[SECONDS]", min=0.1,
                                          help="Redraw every SECONDS (2 when not given) until "
                                               "Ctrl-C; with -o json one document per line."),
    output: str = output_option(WIDE),
    no_headers: bool = no_headers_option(),
) -> None:
    """Machines, one per line, with stable fields for scripts.

    \b
    Examples:
      vcyclectl list
      vcyclectl list -s cumulus.example.org -m lhcb --state running
      vcyclectl list -o wide
      vcyclectl list -o names | xargs -n1 vcyclectl drain
      vcyclectl list --live -o json
      vcyclectl list --watch 5
    """
    from vcyclectl.commands.output import write_rows
    from vcyclectl.commands.views import LIST_FIELDS, machine_rows
    from vcyclectl.commands.watch import repeat

    app = app_context(ctx)
    config = app.config()
    selected = config.select(space)

    def show(stream: Any) -> list[dict[str, Any]]:
        rows = machine_rows(config, selected, live=live, machinetype=machinetype, state=state,
                            detail=output == "wide")
        write_rows(rows, TABLE if output == "table" else LIST_FIELDS, output,
                   headers=not no_headers, wide=WIDE_TABLE, stream=stream)
        return rows

    repeat(show, watch, output)


def inspect(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="A machine name.",
                               autocompletion=complete_machine),
    live: bool = typer.Option(False, "--live", help="Also ask the cloud for its details."),
    output: str = output_option(ROWS, extra_help="tsv is KEY<TAB>VALUE lines; names is the "
                                                 "machine's name"),
    no_headers: bool = no_headers_option(),
) -> None:
    """One machine: state, times (ISO 8601, UTC), heartbeat, shutdown message, drain, events.

    The table and tsv show every time in ISO 8601 UTC; json and yaml keep the stored
    record, finished entry and events as they are (epoch seconds), for scripts.

    \b
    Examples:
      vcyclectl inspect vcyclectl-cumulus-example-org-lhcb-0a1b2c3d4e
      vcyclectl inspect NAME --live -o json
    """
    from vcyclectl.commands.output import key_values, write_data, write_rows
    from vcyclectl.commands.views import inspect_machine, iso_times

    app = app_context(ctx)
    data = inspect_machine(app.config(), name, live=live)
    if write_data(data, output):  # for scripts: the record's times as stored (epoch seconds)
        return
    data = iso_times(data)
    if output in ("tsv", "names"):
        import json

        pairs = [{"key": k, "value": json.dumps(v, default=str)
                  if isinstance(v, (dict, list)) else v} for k, v in data.items()]
        write_rows(pairs if output == "tsv" else [data], ["key", "value"], output,
                   headers=not no_headers)
    else:
        key_values(data)
