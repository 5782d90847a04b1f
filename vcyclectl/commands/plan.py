"""`vcyclectl plan [SPACE…]`: what `reconcile` would do now, and why; takes no lock.

People see the decisions (create, delete, adopt, forget) and a closing summary line;
bookkeeping (`update`: the cloud reported a new state, id or zone for a machine, which a
pass only writes down) shows with `-v`. `-o json`/`yaml` are the whole plan, unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer

from vcyclectl.commands.completion import complete_space
from vcyclectl.commands.context import app_context, failure, info
from vcyclectl.commands.formats import ROWS, no_headers_option, output_option

if TYPE_CHECKING:
    from vcyclectl.config import Config
    from vcyclectl.reconcile.result import SpaceResult

COLUMNS = ["space", "action", "name", "machinetype", "processors", "reason"]


def plan(
    ctx: typer.Context,
    spaces: Optional[list[str]] = typer.Argument(None, metavar="[SPACE]...",
                                                 help="Spaces to plan (default: all).",
                                                 autocompletion=complete_space),
    output: str = output_option(ROWS, extra_help="json and yaml hold every action, "
                                                 "bookkeeping too"),
    no_headers: bool = no_headers_option(),
) -> None:
    """What `reconcile` would do now, and why. Takes no lock, changes nothing.

    \b
    Examples:
      vcyclectl plan
      vcyclectl -v plan cumulus.example.org     # with bookkeeping (update) rows
      vcyclectl plan -o json | jq '.[].actions[] | select(.action == "create")'
    """
    from vcyclectl.commands.output import write_data, write_rows
    from vcyclectl.commands.reconcile import exit_status
    from vcyclectl.core.model import ActionKind
    from vcyclectl.reconcile import reconcile_space

    app = app_context(ctx)
    config = app.config()
    selected = config.select(spaces)
    state_id = app.state().open(create=False)
    results = [reconcile_space(config, s, state_id, dry_run=True) for s in selected]
    documents = [{"space": r.space, "outcome": r.outcome, "reason": r.reason,
                  **(r.plan.to_json() if r.plan else {"actions": [], "notes": []})}
                 for r in results]
    if not write_data(documents, output):
        rows = [dict(a.to_json(), space=r.space) for r in results if r.plan
                for a in r.plan.actions if app.verbose or a.kind is not ActionKind.UPDATE]
        write_rows(rows, COLUMNS, output, headers=not no_headers)
    for r in results:
        if r.outcome not in ("done", "failed"):
            info(app, f"{r.space}: {r.outcome}, {r.reason}")
        for note in (r.plan.notes if r.plan else ()):
            info(app, f"{r.space}: {note}")
    line = summary(config, results)
    if output in ("table", "wide") and not no_headers:
        typer.echo(line)
    else:
        info(app, line)
    for r in results:  # whatever the format: on stderr, and -q never hides it
        if r.outcome == "failed":
            failure(f"{r.space}: FAILED, {r.reason}", space=r.space, reason=r.reason)
    raise typer.Exit(int(exit_status([r.outcome for r in results])))


def summary(config: "Config", results: list["SpaceResult"]) -> str:
    """"N to create, M to delete, K unchanged", and adoptions and forgettings when any.

    Unchanged: the machines known (recorded, or about to be adopted) that stay as they
    are, bookkeeping updates included."""
    from vcyclectl.core.model import ActionKind
    from vcyclectl.state.store import StateDir

    root = StateDir(config.state_dir)
    counts = {kind: 0 for kind in ActionKind}
    unchanged = 0
    for r in results:
        if r.plan is None:
            continue
        for action in r.plan.actions:
            counts[action.kind] += 1
        known = set(root.space(r.space).records()) | {a.name for a in
                                                      r.plan.of(ActionKind.ADOPT)}
        ending = {a.name for a in r.plan.actions
                  if a.kind in (ActionKind.DELETE, ActionKind.FORGET)}
        unchanged += len(known - ending)
    line = (f"{counts[ActionKind.CREATE]} to create, {counts[ActionKind.DELETE]} to delete, "
            f"{unchanged} unchanged")
    extra = [f"{counts[kind]} to {kind.value}" for kind in (ActionKind.ADOPT, ActionKind.FORGET)
             if counts[kind]]
    return line + (f" ({', '.join(extra)})" if extra else "")
