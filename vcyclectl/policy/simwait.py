"""The backfill-wait what-ifs of `simulate` (`check_latency`): after a pass, is the need of
priority communities that have shown work covered by backfill already on its way out?

Two what-ifs of the planner: the machines it would create if every backfill machine were
gone ("ideal"), and if only the draining ones were ("covered"). A proven community (one
with a machine running past its `fizzle_seconds`) that gets more processors in the first
is waiting on backfill nobody asked to make room; the longest such wait is reported.

The ideal what-if is asked first: when it gives proven communities nothing, the covered one
cannot give them less (processors are never negative), so nobody waits and it is not
asked; most passes end there (83% on the IRIS case). What-if plans create nothing and take
their names from `Simulation.hypo_names`, which nothing else reads, so asking fewer of them
changes no row and no summary (tests/simulation/test_sim_equivalence.py).
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

from vcyclectl.config import Space
from vcyclectl.core.model import Plan

__all__ = ["created", "measure_wait", "proven_machinetypes", "record_waits"]


class _Simulated(Protocol):
    """What `measure_wait` needs of a `simulate.Simulation` (no import cycle)."""

    step: float
    waiting_since: dict[tuple[str, str], float]
    max_wait: dict[str, float]

    def group(self, space: str, machinetype: str) -> str: ...

    def what_if(self, sim: Any, now: float, stopped: set[str],
                idle: Sequence[str]) -> Plan: ...


def measure_wait(simulation: _Simulated, sim: Any, now: float) -> None:
    """Run the what-ifs for one simulated space `sim` (`simulate._SpaceSim`) after its pass
    at `now`, and keep each community's wait: since when it has waited, and the longest."""
    assert sim.policy is not None
    backfill: frozenset[str] = sim.policy.backfill_machinetypes
    sim.wait_planned = False
    if not backfill:
        return
    space = sim.space
    waiting: set[str] = set()
    proven = proven_machinetypes(sim, backfill, now)
    if proven:
        marks = sim.marks
        everything = {n for n, m in sim.machines.items() if m.machinetype in backfill}
        leaving = {n for n in everything if n in marks}
        # All backfill already leaving: the two what-ifs see the same, so nobody waits.
        if everything and everything != leaving:
            sim.wait_planned = True
            unproven = [mt for mt in space.machinetypes
                        if mt not in backfill and mt not in proven]
            ideal = created(simulation.what_if(sim, now, everything, unproven), proven)
            if ideal:
                covered = created(simulation.what_if(sim, now, leaving, unproven), proven)
                waiting = {simulation.group(space.name, mt) for mt, n in ideal.items()
                           if n > covered.get(mt, 0)}
    record_waits(simulation, space, waiting, now)


def record_waits(simulation: _Simulated, space: Space, waiting: set[str], now: float) -> None:
    """Each community of `space`: waiting since when (kept while it waits), and the longest
    wait so far (0 for one that never waited, so every community is in the report)."""
    for community in {simulation.group(space.name, mt) for mt in space.machinetypes}:
        key = (space.name, community)
        if community in waiting:
            since = simulation.waiting_since.setdefault(key, now)
            simulation.max_wait[community] = max(simulation.max_wait.get(community, 0.0),
                                                 now - since + simulation.step)
        else:
            simulation.waiting_since.pop(key, None)
            simulation.max_wait.setdefault(community, 0.0)


def created(p: Plan, machinetypes: set[str]) -> dict[str, int]:
    """Processors `p` creates per machinetype of `machinetypes` (only those it creates)."""
    out: dict[str, int] = {}
    for a in p.creates:
        if a.machinetype in machinetypes:
            out[a.machinetype] = out.get(a.machinetype, 0) + a.processors
    return out


def proven_machinetypes(sim: Any, backfill: frozenset[str], now: float) -> set[str]:
    """The space's machinetypes other than `backfill` with a machine running past its
    `fizzle_seconds` at `now`: their community has shown it has work. One walk over the
    space's machines."""
    machinetypes = sim.space.machinetypes
    proven: set[str] = set()
    for m in sim.machines.values():
        mt = m.machinetype
        if mt in proven or mt in backfill or mt not in machinetypes:
            continue
        life = m.life
        if life.started_at <= now < life.stopped_at and not life.failed and \
                now - life.started_at >= machinetypes[mt].fizzle_seconds:
            proven.add(mt)
    return proven
