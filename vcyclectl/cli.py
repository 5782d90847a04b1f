"""The typer app that mounts the commands, and the program's single exception boundary.

Errors we expect (`VcyclectlError`) print one line each on stderr and exit with their
documented code; click's usage errors exit 2; an `OSError` that got this far is the
environment's (a path, a permission): one line with the path, exit 1; anything else is a
bug: one line, plus the traceback with `-v`, exit 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from vcyclectl import __version__
from vcyclectl.commands import accounting
from vcyclectl.commands import (configcmd, doctor, drain, machines, plan, reconcile, serve,
                                status)
from vcyclectl.commands.importcmd import import_app
from vcyclectl.commands import render
from vcyclectl.commands.context import AppContext, check_output
from vcyclectl.commands.formats import completer
from vcyclectl.commands.output import FORMATS
from vcyclectl.commands import policycmd as policy_commands

app = typer.Typer(
    name="vcyclectl",
    help="Keep fleets of worker VMs alive on OpenStack, EC2, GCE and the local simulated cloud.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vcyclectl {__version__}")
        raise typer.Exit(0)


def _check_log_format(value: str) -> str:
    if value not in ("auto", "text", "json", "journal"):
        raise typer.BadParameter(f"{value!r} is not one of auto, text, json, journal")
    return value


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(None, "--config", "-c", envvar="VCYCLECTL_CONFIG",
                                          help="Config file (default /etc/vcyclectl/"
                                               "vcyclectl.yaml, plus its conf.d/*.yaml)."),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", envvar="VCYCLECTL_STATE_DIR",
                                             help="Override the config's state_dir."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="More detail on stderr."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors on stderr."),
    output: Optional[str] = typer.Option(None, "--output", "-o", envvar="VCYCLECTL_OUTPUT",
                                         metavar="[table|wide|json|yaml|tsv|names]",
                                         help="Output format for every command that can "
                                              "give it (a command's own -o wins).",
                                         callback=check_output,
                                         autocompletion=completer(FORMATS)),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    log_format: str = typer.Option("auto", "--log-format", envvar="VCYCLECTL_LOG_FORMAT",
                                   metavar="[auto|text|json|journal]",
                                   callback=_check_log_format,
                                   help="Log records on stderr: text, json (one object per "
                                        "line, for collectors) or journal (native journald "
                                        "fields); auto: journal under systemd, else text."),
) -> None:
    """Global options, shared by every command."""
    from vcyclectl import log

    log.setup(verbose, quiet, log_format)
    source = ctx.get_parameter_source("output")
    ctx.obj = AppContext(config_path=config, state_dir=state_dir, verbose=verbose, quiet=quiet,
                         output=output,
                         output_from_env=source is not None and source.name == "ENVIRONMENT")


app.command("reconcile")(reconcile.reconcile)
app.command("plan")(plan.plan)
app.command("list")(machines.list_machines)
app.command("inspect")(machines.inspect)
app.command("drain")(drain.drain)
app.command("undrain")(drain.undrain)
app.command("status")(status.status)
app.command("doctor")(doctor.doctor)
app.command("serve")(serve.serve)
app.add_typer(configcmd.config_app, name="config")
app.command("budget")(policy_commands.budget)
app.command("schedule")(policy_commands.schedule)
app.command("simulate")(policy_commands.simulate)
app.command("accounting")(accounting.accounting)
app.add_typer(import_app, name="import")
app.command("render")(render.render)


def _click_module() -> Any:
    """The click that typer runs on: recent typer vendors its own copy as `typer._click`."""
    try:
        from typer import _click

        return _click
    except ImportError:
        import click

        return click


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and turn every outcome into an exit code (SPEC's table)."""
    click = _click_module()

    from vcyclectl.errors import ExitStatus, VcyclectlError

    from vcyclectl.commands.watch import optional_value

    args = optional_value(list(sys.argv[1:] if argv is None else argv))
    verbose = any(a in ("-v", "--verbose") for a in args)
    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="vcyclectl", standalone_mode=False)
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        typer.echo("vcyclectl: interrupted", err=True)
        code = 130
    except click.ClickException as exc:
        exc.show()
        code = ExitStatus.USAGE
    except VcyclectlError as exc:
        from vcyclectl.redact import redact_text

        for line in redact_text(str(exc)).splitlines() or [type(exc).__name__]:
            typer.echo(f"vcyclectl: {line}", err=True)
        code = exc.exit_status
    except BrokenPipeError:
        code = 0
    except OSError as exc:  # the environment (a path, a permission), not a bug: no report
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"vcyclectl: {where}{exc.strerror or exc}", err=True)
        code = ExitStatus.SPACE_FAILED
    except KeyboardInterrupt:
        typer.echo("vcyclectl: interrupted", err=True)
        code = 130
    except Exception as exc:  # a bug: say so plainly; the traceback only with -v
        if verbose:
            import traceback

            traceback.print_exc()
        from vcyclectl.redact import redact_text

        typer.echo(f"vcyclectl: internal error: {type(exc).__name__}: {redact_text(str(exc))} "
                   "(run with -v for the traceback; please report it)", err=True)
        code = ExitStatus.SPACE_FAILED
    sys.exit(int(code or 0))
