"""`vcyclectl reconcile [SPACE…]`: one pass over each space; and `plan`, its dry run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer

from vcyclectl.commands.context import (OUTPUT_HELP, app_context, check_output, failure,
                                        info)
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
    output: Optional[str] = typer.Option(None, "--output", "-o", help="table | json",
                                         callback=check_output),
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
    `max_pass_seconds`; a watchdog ends this process if a pass is stuck past it."""
    from vcyclectl.commands.output import progress_for_terminal, write_json
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
        if dry_run and result.plan is not None and app.fmt(output) != "json":
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
    if app.fmt(output) == "json":
        write_json([r.to_json() for r in results])
    raise typer.Exit(int(exit_status([r.outcome for r in results])))


def plan(
    ctx: typer.Context,
    spaces: Optional[list[str]] = typer.Argument(None, help="Spaces to plan (default: all)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help=OUTPUT_HELP,
                                         callback=check_output),
) -> None:
    """What `reconcile` would do now, and why. Takes no lock, changes nothing."""
    from vcyclectl.commands.output import write_json, write_rows
    from vcyclectl.reconcile import reconcile_space

    app = app_context(ctx)
    config = app.config()
    selected = config.select(spaces)
    state_id = app.state().open(create=False)
    results = [reconcile_space(config, s, state_id, dry_run=True) for s in selected]
    fmt = app.fmt(output)
    if fmt == "json":
        write_json([{"space": r.space, "outcome": r.outcome, "reason": r.reason,
                     **(r.plan.to_json() if r.plan else {"actions": [], "notes": []})}
                    for r in results])
    else:
        rows = [dict(a.to_json(), space=r.space) for r in results if r.plan
                for a in r.plan.actions]
        write_rows(rows, ["space", "action", "name", "machinetype", "processors", "reason"],
                   fmt, title="plan")
        for r in results:
            if r.outcome not in ("done", "failed"):
                info(app, f"{r.space}: {r.outcome}, {r.reason}")
            for note in (r.plan.notes if r.plan else ()):
                info(app, f"{r.space}: {note}")
    for r in results:  # whatever the format: on stderr, and -q never hides it
        if r.outcome == "failed":
            failure(f"{r.space}: FAILED, {r.reason}", space=r.space, reason=r.reason)
    raise typer.Exit(int(exit_status([r.outcome for r in results])))


def _print_plan(plan: "Plan") -> None:
    from vcyclectl.commands.output import write_rows

    write_rows([a.to_json() for a in plan.actions],
               ["action", "name", "machinetype", "processors", "reason"], "table",
               title=f"plan for {plan.space}")
