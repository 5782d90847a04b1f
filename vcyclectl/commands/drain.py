"""`drain TARGET` / `undrain TARGET`: TARGET is SPACE, SPACE/MACHINETYPE or a machine name."""

from __future__ import annotations

import time
from typing import Optional

import typer

from vcyclectl.commands.completion import complete_target
from vcyclectl.commands.context import AppContext, app_context, info
from vcyclectl.errors import NotFound


def _resolve(app: AppContext, target: str) -> tuple[str, Optional[str], Optional[str]]:
    """(space, machinetype, machine) for a target, or NotFound naming what is missing."""
    from vcyclectl.commands.views import find_machine

    config = app.config()
    if "/" in target:
        space, _, mt = target.partition("/")
        if space not in config.spaces:
            raise NotFound(f"drain target {target!r}: no space {space!r}")
        if mt not in config.spaces[space].machinetypes:
            raise NotFound(f"drain target {target!r}: space {space} has no machinetype {mt!r}")
        return space, mt, None
    if target in config.spaces:
        return target, None, None
    found_space, _, rec, _ = find_machine(config, target)
    if rec is None:
        raise NotFound(f"drain target {target!r}: that machine has already ended")
    return found_space.name, None, target


def drain(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="TARGET",
                                 help="SPACE, SPACE/MACHINETYPE or a machine name.",
                                 autocompletion=complete_target),
    reason: str = typer.Option("", "--reason", "-r", metavar="REASON",
                               help="Why; shown by status and inspect."),
    at: Optional[str] = typer.Option(
        None, "--at", metavar="TIME",
        help="Schedule the drain: ISO 8601 (UTC unless an offset is given), "
                           "+2h / +1h30m / +90s, or a Unix time. Until then machines are "
                           "still made and all are told it as their MJF shutdowntime."),
) -> None:
    """No new machines for TARGET; its machines get a shutdown time and end after the grace.

    \b
    Examples:
      vcyclectl drain cumulus.example.org --reason "hypervisor upgrade"
      vcyclectl drain cumulus.example.org/lhcb
      vcyclectl drain vcyclectl-cumulus-example-org-lhcb-0a1b2c3d4e
    """
    from vcyclectl.core.records import DrainMark

    app = app_context(ctx)
    space, mt, machine = _resolve(app, target)
    when = _scheduled_time(at)
    store = app.state(create=True).space(space)  # a space may be drained before its first pass
    existing = store.drains()
    current = (existing.machines.get(machine) if machine else
               existing.machinetypes.get(mt) if mt else existing.space)
    if current is not None and current.at is None:  # an immediate drain already holds
        info(app, f"{target}: already drained since {time.ctime(current.since)}"
                  + (" (undrain first to schedule it instead)" if when is not None else ""))
        return
    import getpass
    import socket

    mark = DrainMark(target=target, since=time.time(), reason=reason,
                     by=f"{getpass.getuser()}@{socket.gethostname()}", at=when)
    store.set_drain(mark, machinetype=mt, machine=machine)
    if when is None:
        info(app, f"{target}: drained" + (" (the scheduled drain now holds at once)"
                                          if current is not None else ""))
    else:
        from vcyclectl.core.times import iso

        info(app, f"{target}: drain {'re' if current is not None else ''}scheduled for "
                  f"{iso(when)}: machines are told it as their MJF shutdowntime now, and none "
                  "are made or kept from then on (undrain cancels)")


def _scheduled_time(at: Optional[str]) -> Optional[float]:
    """`--at` as a Unix time in the future, or a usage error (exit 2) naming the option."""
    if at is None:
        return None
    from vcyclectl.core.times import parse_when
    from vcyclectl.errors import UsageError

    now = time.time()
    try:
        when = parse_when(at, now)
    except ValueError as exc:
        raise UsageError(f"--at: {exc}") from None
    if when <= now:
        raise UsageError(f"--at {at!r} is in the past; drain without --at to drain now")
    return when


def undrain(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="TARGET",
                                 help="SPACE, SPACE/MACHINETYPE or a machine name.",
                                 autocompletion=complete_target),
) -> None:
    """Lift a drain: TARGET gets new machines again.

    \b
    Examples:
      vcyclectl undrain cumulus.example.org
      vcyclectl undrain cumulus.example.org/lhcb
    """
    app = app_context(ctx)
    try:
        space, mt, machine = _resolve(app, target)
    except NotFound:
        if _clear_leftover(app, target):
            return
        raise
    cleared = app.state().space(space).clear_drain(machinetype=mt, machine=machine)
    info(app, f"{target}: {'undrained' if cleared else 'was not drained'}")


def _clear_leftover(app: AppContext, target: str) -> bool:
    """Remove the drain mark an ended machine left behind, and say so.

    Marks of forgotten machines are removed with them now, but one left by an older
    vcyclectl (or by a pass killed between forgetting and removing) stays in `drains/`
    for ever: `undrain` used to answer "already ended" and leave it there."""
    from vcyclectl.state.store import valid_machine_name

    config = app.config()
    if "/" in target or target in config.spaces or not valid_machine_name(target):
        return False
    root = app.state()
    cleared = [name for name in config.spaces
               if root.space(name).clear_drain(machine=target)]
    for name in cleared:
        info(app, f"{target}: that machine has already ended; its leftover drain mark in "
                  f"{name} removed")
    return bool(cleared)
