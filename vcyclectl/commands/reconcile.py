"""`vcyclectl reconcile [SPACE…]`: one pass over each space; and `plan`, its dry run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer

from vcyclectl.commands.context import app_context, failure, info
from vcyclectl.commands.formats import DOCUMENT, output_option
from vcyclectl.errors import ExitStatus

if TYPE_CHECKING:
    from vcyclectl.core.model import Plan
    from vcyclectl.reconcile import SpaceResult


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
    force: bool = typer.Option(False, "--force",
                               help="Pass over each space even if its last pass finished "
                                    "under min_pass_interval_seconds ago."),
) -> None:
    """One pass: create and delete the difference between desired and actual machines.

    Spaces are visited in an order of this host's own (so hosts on the same cron tick
    spread out), and reported in config order; a space passed by any host under
    `min_pass_interval_seconds` ago is skipped (exit 0) unless `--force`. Each pass has
    `max_pass_seconds`; a watchdog ends this process if a pass is stuck past it.

    \b
    Examples:
      vcyclectl reconcile                       # every space, as cron runs it
      vcyclectl reconcile cumulus.example.org --wait 60
      vcyclectl reconcile --force               # now, even if another host just passed
      vcyclectl reconcile --dry-run
      vcyclectl -q reconcile -o json
    """
    from vcyclectl.commands.output import progress_for_terminal, write_data
    from vcyclectl.monitoring.passes import PassRecorder
    from vcyclectl.reconcile import Deadline, Watchdog, reconcile_space, visiting_order
    from vcyclectl.state.store import StateDir

    app = app_context(ctx)
    config = app.config()
    selected = config.select(spaces)
    state_id = StateDir(config.state_dir).open(create=not dry_run)
    progress = progress_for_terminal()
    done: dict[str, SpaceResult] = {}
    recorder = PassRecorder(config)
    watchdog = Watchdog()
    for space in visiting_order(selected):
        deadline = Deadline(space.max_pass_seconds)
        with recorder.space() as recorded, watchdog.watching(space.name, deadline):
            result = reconcile_space(config, space, state_id, wait=wait, dry_run=dry_run,
                                     progress=progress, accept_empty=accept_empty,
                                     force=force, deadline=deadline)
            recorded.append(result)
        done[space.name] = result
        if dry_run and result.plan is not None and output == "table":
            _print_plan(result.plan)
        if result.outcome == "failed":
            failure(result.summary(), space=result.space, reason=result.reason)
        else:
            info(app, result.summary() if not dry_run else f"{space.name}: dry run, "
                 f"{len(result.plan.creates) if result.plan else 0} to create, "
                 f"{len(result.plan.deletes) if result.plan else 0} to delete")
    results = [done[space.name] for space in selected]
    if not dry_run:
        recorder.finish()
    write_data([r.to_json() for r in results], output)
    raise typer.Exit(int(exit_status([r.outcome for r in results])))


def _print_plan(plan: "Plan") -> None:
    from vcyclectl.commands.output import write_rows

    write_rows([dict(a.to_json(), space=plan.space) for a in plan.actions],
               ["space", "action", "name", "machinetype", "processors", "reason"], "table")
