"""Shell completion of the things an operator types: spaces, machinetypes, machine names.

Called by typer while the shell asks (`_VCYCLECTL_COMPLETE=complete_bash` and friends):
the config named on the command line being completed (`--config`, `VCYCLECTL_CONFIG` or
the default) and its state directory are read, and nothing else: no cloud driver, so no
cloud SDK, is imported, and no error ever reaches the shell (a broken config completes
nothing).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import typer

if TYPE_CHECKING:
    from vcyclectl.config import Config


def _config(ctx: typer.Context) -> "Config | None":
    from vcyclectl import config

    params = ctx.find_root().params  # as typed: typer converts to Path only when it runs
    given, state_dir = params.get("config"), params.get("state_dir")
    try:
        return config.load(Path(given) if given else None,
                           state_dir=Path(state_dir) if state_dir else None)
    except Exception:  # completion must never break the shell
        return None


def _machine_names(config: "Config") -> Iterator[str]:
    from vcyclectl.state.store import StateDir

    root = StateDir(config.state_dir)
    for space in config.spaces:
        try:
            yield from root.space(space).records()
        except Exception:  # an unreadable space completes nothing
            continue


def complete_space(ctx: typer.Context, incomplete: str) -> list[str]:
    config = _config(ctx)
    return [s for s in (config.spaces if config else ()) if s.startswith(incomplete)]


def complete_machinetype(ctx: typer.Context, incomplete: str) -> list[str]:
    """Machinetypes of the spaces already given with `--space`, else of all spaces."""
    config = _config(ctx)
    if config is None:
        return []
    chosen = ctx.params.get("space") or list(config.spaces)
    found = {mt for name in chosen if name in config.spaces
             for mt in config.spaces[name].machinetypes}
    return sorted(mt for mt in found if mt.startswith(incomplete))


def complete_machine(ctx: typer.Context, incomplete: str) -> list[str]:
    config = _config(ctx)
    return sorted(n for n in (_machine_names(config) if config else ()) if
                  n.startswith(incomplete))


def complete_target(ctx: typer.Context, incomplete: str) -> list[str]:
    """`drain`'s TARGET: SPACE, SPACE/MACHINETYPE or a machine name."""
    config = _config(ctx)
    if config is None:
        return []
    targets = [*config.spaces,
               *(f"{s.name}/{mt}" for s in config.spaces.values() for mt in s.machinetypes),
               *_machine_names(config)]
    return sorted(t for t in targets if t.startswith(incomplete))


def complete_space_machinetype(ctx: typer.Context, incomplete: str) -> list[str]:
    """`render`'s SPACE/MACHINETYPE."""
    config = _config(ctx)
    if config is None:
        return []
    targets = [f"{s.name}/{mt}" for s in config.spaces.values() for mt in s.machinetypes]
    return sorted(t for t in targets if t.startswith(incomplete))


def complete_state(incomplete: str) -> list[str]:
    from vcyclectl.commands.views import LIST_STATES

    return [s for s in LIST_STATES if s.startswith(incomplete)]
