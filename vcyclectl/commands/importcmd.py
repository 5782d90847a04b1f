"""`vcyclectl import vcycle FILE…`: convert a Vcycle configuration (see
vcyclectl.migrate.vcycle)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vcyclectl.commands.context import app_context, info

import_app = typer.Typer(help="Convert another tool's configuration into vcyclectl YAML.",
                         no_args_is_help=True)


@import_app.command("vcycle")
def vcycle(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="Vcycle files in reading order, e.g. "
                                                 "/etc/vcycle.conf /etc/vcycle.d/*.conf"),
    output_dir: Optional[Path] = typer.Option(
        None, "--output-dir", "-d", metavar="DIR",
        help="Write DIR/vcyclectl.yaml and DIR/secrets/* (0600). Without it the YAML goes to "
             "stdout, which is refused when the configuration holds secrets."),
    vcycle_dir: Path = typer.Option(Path("/var/lib/vcycle"), "--vcycle-dir", metavar="DIR",
                                    help="Vcycle's state folder, where machinetype files live."),
    feedback_url: Optional[str] = typer.Option(
        None, "--feedback-url", metavar="URL", help="Public URL of `vcyclectl serve` (default https://FQDN)."),
    state_dir: Optional[str] = typer.Option(
        None, "--state-dir-path", metavar="PATH",
        help="state_dir to write into the new configuration (default /var/lib/vcyclectl, "
             "marked CHANGE)."),
) -> None:
    """Convert Vcycle INI files into vcyclectl YAML, with a comment for what cannot carry over.

    \b
    Examples:
      vcyclectl import vcycle /etc/vcycle.conf /etc/vcycle.d/*.conf --output-dir new/
      vcyclectl import vcycle vcycle.conf > vcyclectl.yaml   # only without secrets
    """
    from vcyclectl.errors import UsageError
    from vcyclectl.migrate.output import write_result
    from vcyclectl.migrate.vcycle import import_vcycle

    app = app_context(ctx)
    secrets_dir = "secrets"
    result = import_vcycle(files, vcycle_dir=vcycle_dir, secrets_dir=secrets_dir,
                           feedback_url=feedback_url, state_dir=state_dir)
    if output_dir is None:
        if result.secrets:
            raise UsageError(f"this configuration holds {len(result.secrets)} secret(s) "
                             f"({', '.join(sorted(result.secrets))}); give --output-dir DIR "
                             "so they are written to DIR/secrets/ (mode 0600), never to stdout")
        typer.echo(result.yaml, nl=False)
    else:
        target = write_result(result, output_dir, secrets_dir)
        info(app, f"wrote {target}" + (f" and {len(result.secrets)} secret file(s) in "
                                        f"{output_dir / secrets_dir}" if result.secrets else ""))
    info(app, f"{len(result.not_carried)} Vcycle setting(s) not carried over: see the "
              "'# vcycle:' comments")
