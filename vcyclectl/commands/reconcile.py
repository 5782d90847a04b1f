"""`vcyclectl reconcile [SPACE…]`: one pass over each space; and `plan`, its dry run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer

from vcyclectl.commands.context import app_context, failure, info
from vcyclectl.commands.formats import DOCUMENT, output_option
from vcyclectl.errors import ExitStatus

if TYPE_CHECKING:
    from vcyclectl.core.model import Plan


def exit_status(outcomes: list[str]) -> ExitStatus:
    """The single place where space results become the exit code (SPEC)."""
    if "failed" in outcomes:
        return ExitStatus.SPACE_FAILED
    if "timeout" in outcomes:
        return ExitStatus.LOCK_TIMEOUT
    return ExitStatus.OK


def reconcile(
    ctx: typer.Context,
    spaces: Optional[list[str]] = typer.Argument(None, help="Spaces to reconcile (default: all)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Plan and print; change nothing."),
    wait: Optional[float] = typer.Option(None, "--wait", min=0,
                                         help="Wait up to S seconds for a space's lock."),
    output: str = output_option(DOCUMENT),
    accept_empty: bool = typer.Option(False, "--accept-empty-listing",
                                      help="Act even if the cloud lists none of the machines "
                                           "recorded (they really are gone)."),
) -> None:
    """One pass: create and delete the difference between desired and actual machines.

    \b
    Examples:
      vcyclectl reconcile                       # every space, as cron runs it
      vcyclectl reconcile cumulus.example.org --wait 60
      vcyclectl reconcile --dry-run
      vcyclectl -q reconcile -o json
    """
    from vcyclectl.commands.output import progress_for_terminal, write_data
    from vcyclectl.monitoring.passes import PassRecorder
    from vcyclectl.reconcile import reconcile_space
    from vcyclectl.state.store import StateDir

    app = app_context(ctx)
    config = app.config()
    selected = config.select(spaces)
    state_id = StateDir(config.state_dir).open(create=not dry_run)
    progress = progress_for_terminal()
    results = []
    recorder = PassRecorder(config)
    for space in selected:
        with recorder.space() as recorded:
            result = reconcile_space(config, space, state_id, wait=wait, dry_run=dry_run,
                                     progress=progress, accept_empty=accept_empty)
            recorded.append(result)
        results.append(result)
        if dry_run and result.plan is not None and output == "table":
            _print_plan(result.plan)
        if result.outcome == "failed":
            failure(result.summary(), space=result.space, reason=result.reason)
        else:
            info(app, result.summary() if not dry_run else f"{space.name}: dry run, "
                 f"{len(result.plan.creates) if result.plan else 0} to create, "
                 f"{len(result.plan.deletes) if result.plan else 0} to delete")
    if not dry_run:
        recorder.finish()
    write_data([r.to_json() for r in results], output)
    raise typer.Exit(int(exit_status([r.outcome for r in results])))


def _print_plan(plan: "Plan") -> None:
    from vcyclectl.commands.output import write_rows

    write_rows([dict(a.to_json(), space=plan.space) for a in plan.actions],
               ["space", "action", "name", "machinetype", "processors", "reason"], "table")
