"""The one `-o/--output` contract: which formats each command gives, and how a choice is made.

Every command that prints data takes `-o FORMAT` from the same list (`output.FORMATS`);
each declares the ones it can give. A format it cannot give is a usage error (exit 2)
naming the command and what it does give, never silently replaced by another. The choice
is, in order: the command's own `-o`; the global `vcyclectl -o` (a usage error too when the
command cannot give it); `VCYCLECTL_OUTPUT`, a standing preference applied where the command
can give it (so `VCYCLECTL_OUTPUT=names` in a profile does not break `config show`); the
command's default.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import typer

#: What most data commands give.
ROWS = ("table", "json", "yaml", "tsv", "names")
#: `list`: the rows plus `-o wide`.
WIDE = ("table", "wide", "json", "yaml", "tsv", "names")
#: One document, no rows (`reconcile`): a table for people, or the document.
DOCUMENT = ("table", "json", "yaml")


def output_option(formats: Sequence[str], default: str = "table", *,
                  extra_help: str = "", aliases: Sequence[str] = ()) -> Any:
    """The `-o/--output` option of a command that gives `formats` (default first)."""
    return typer.Option(
        None, "--output", "-o", *aliases, metavar="[" + "|".join(formats) + "]",
        show_default=False,
        help=f"Output format  [default: {default}]" + (f". {extra_help}" if extra_help else ""),
        callback=chooser(formats, default), autocompletion=completer(formats))


def completer(formats: Sequence[str]) -> Callable[[str], list[str]]:
    """Shell completion of `-o`: the formats this command gives."""

    def complete(incomplete: str) -> list[str]:
        return [f for f in formats if f.startswith(incomplete)]

    return complete


def no_headers_option() -> Any:
    return typer.Option(False, "--no-headers",
                        help="Leave out the header line (table, wide and tsv).")


def chooser(formats: Sequence[str], default: str) -> Callable[[typer.Context, str | None], str]:
    """The option's callback: the format this run uses, or a usage error (exit 2)."""

    def choose(ctx: typer.Context, value: str | None) -> str:
        if ctx.resilient_parsing:  # shell completion: nothing is run
            return value or default
        command = ctx.command_path.removeprefix(ctx.find_root().info_name or "").strip()
        given = ", ".join(formats)
        if value is not None:
            if value not in formats:
                raise typer.BadParameter(f"{command} cannot give {value!r}; it gives {given}")
            return value
        from vcyclectl.commands.context import app_context

        app = app_context(ctx)
        if app.output is not None:
            if app.output in formats:
                return app.output
            if not app.output_from_env:
                raise typer.BadParameter(f"{command} cannot give {app.output!r} (from the "
                                         f"global -o); it gives {given}",
                                         param_hint="'--output' / '-o'")
        return default

    return choose
