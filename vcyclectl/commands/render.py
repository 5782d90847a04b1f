"""`vcyclectl render SPACE/MACHINETYPE`: the user_data a new machine would get, on stdout
(secrets hidden unless `--show-secrets`), so a template is checked without starting a VM."""

from __future__ import annotations

from typing import Optional

import typer

from vcyclectl.commands.completion import complete_space_machinetype
from vcyclectl.commands.context import app_context, info


def render(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="SPACE/MACHINETYPE", help="SPACE/MACHINETYPE",
                                 autocompletion=complete_space_machinetype),
    show_secrets: bool = typer.Option(
        False, "--show-secrets", help="Print secrets (files, secret-named options, the X.509 "
                                      "proxy, the machine token) instead of ***."),
    name: Optional[str] = typer.Option(None, "--name", metavar="NAME",
                                       help="Machine name to render for (default: a new one)."),
) -> None:
    """Print the user_data a new machine of SPACE/MACHINETYPE would boot with (the template
    itself, not data: it takes no -o).

    \b
    Examples:
      vcyclectl render cumulus.example.org/lhcb
      vcyclectl render cumulus.example.org/lhcb --show-secrets | less
    """
    from vcyclectl.core.names import random_names
    from vcyclectl.errors import UsageError
    from vcyclectl.vm.preview import preview

    app = app_context(ctx)
    config = app.config()
    space_name, sep, mt_name = target.partition("/")
    if not sep or space_name not in config.spaces:
        raise UsageError(f"render target {target!r}: give SPACE/MACHINETYPE (spaces: "
                         f"{', '.join(config.spaces) or 'none'})")
    space = config.spaces[space_name]
    if mt_name not in space.machinetypes:
        raise UsageError(f"render target {target!r}: space {space_name} has no machinetype "
                         f"{mt_name!r} (it has: {', '.join(space.machinetypes) or 'none'})")
    mt = space.machinetypes[mt_name]
    if mt.user_data is None:
        info(app, f"{target}: no user_data template: machines boot without user_data")
        return
    machine = name or random_names(space.slug)(mt_name)
    shown = preview(config, space, mt, machine, show_secrets=show_secrets)
    typer.echo(shown.text, nl=False)
    if shown.hidden:
        info(app, f"{target}: hidden as ***: {', '.join(shown.hidden)} (--show-secrets shows "
                  "them)")
