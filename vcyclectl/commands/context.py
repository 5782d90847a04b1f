"""What every command shares: global options, the loaded config, the state directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from vcyclectl.config import Config
    from vcyclectl.state.store import StateDir


@dataclass
class AppContext:
    config_path: Path | None = None
    state_dir: Path | None = None
    verbose: bool = False
    quiet: bool = False
    #: The global `-o` (None: not given); whether it came from VCYCLECTL_OUTPUT, a standing
    #: preference that a command which cannot give it passes over (`commands.formats`).
    output: str | None = None
    output_from_env: bool = False
    _config: "Config | None" = field(default=None, repr=False)

    def config(self) -> "Config":
        if self._config is None:
            from vcyclectl import config

            self._config = config.load(self.config_path, state_dir=self.state_dir)
        return self._config

    def state(self, *, create: bool = False) -> "StateDir":
        """The configured state directory, checked to be one (else a one-line error, exit 2).

        Read-only commands refuse a missing or uninitialised one, so an unmounted share is
        reported as such rather than shown as an empty fleet; commands that write (`drain`,
        like `reconcile`) create it on first use.
        """
        from vcyclectl.state.store import StateDir

        root = StateDir(self.config().state_dir)
        root.open(create=create)
        return root

    def fmt(self, explicit: str | None) -> str:
        return explicit or self.output or "table"


def app_context(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):
        obj = AppContext()
        ctx.find_root().obj = obj
    return obj


OUTPUT_HELP = "table | wide | json | yaml | tsv | names"


def check_output(value: str | None) -> str | None:
    from vcyclectl.commands.output import FORMATS

    if value is not None and value not in FORMATS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(FORMATS)}")
    return value


def info(ctx: AppContext, message: str) -> None:
    """A line for people on stderr (suppressed by -q)."""
    if not ctx.quiet:
        from vcyclectl.redact import redact_text

        typer.echo(redact_text(message), err=True)


def failure(message: str, **fields: str) -> None:
    """A failure: its line on stderr and an error-level log record, `-q` or not.

    `-q` hides chatter, never a failure: cron mails what a quiet pass printed, and under
    systemd the log record carries journald's error priority (see `vcyclectl.log`).
    """
    from vcyclectl import log

    from vcyclectl.redact import redact_text

    typer.echo(("<3>" if log.stderr_is_journal() else "") + redact_text(message), err=True)
    log.error("space failed", **fields)
