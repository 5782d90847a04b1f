"""Demand signals in `simulate` (docs/demand.md): readings from the demand profile's
queue-length model, how long priority work waited for its machines, and the comparison of
one case run with probing and with signals (`simulate --signals`, benchmarks/bench_demand.py).

The model's reading is exact and fresh each pass (what is waiting = what the community
offers inside its window, `levels`, minus what it runs); a real source lags by up to its
`max_age_seconds`, so the signals run is the best case, and the probing run is today's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

from vcyclectl.config import Config, Space
from vcyclectl.core.provisioning import DemandReading
from vcyclectl.policy.demand import Demand


class _Simulated(Protocol):
    """What `model_readings` needs of a `simulate.Simulation` (no import cycle)."""

    config: Config
    demand: Demand

    @property
    def spaces(self) -> Sequence[Any]: ...

    def group(self, space: str, machinetype: str) -> str: ...


def model_readings(simulation: _Simulated, space: Space, now: float) -> dict[str, DemandReading]:
    """Per machinetype of `space`, its community's reading now: waiting processors from the
    queue model, given the processors the community's started machines run (all spaces).
    Machines join at boot in the model (`join_seconds: 0`); starting ones are on their way."""
    return readings_from(simulation, space, now, running_by_community(simulation, now))


def running_by_community(simulation: _Simulated, now: float) -> dict[str, int]:
    """Processors each community's started, not yet ended machines run now (all spaces);
    a simulated machine knows its community (`group`)."""
    running: dict[str, int] = {}
    for sim in simulation.spaces:
        for m in sim.machines.values():
            life = m.life
            if life.started_at <= now < life.stopped_at and not life.failed:
                running[m.group] = running.get(m.group, 0) + m.processors
    return running


def readings_from(simulation: _Simulated, space: Space, now: float,
                  running: Mapping[str, int]) -> dict[str, DemandReading]:
    """`model_readings` given what each community runs."""
    out: dict[str, DemandReading] = {}
    for name in space.machinetypes:
        community = simulation.group(space.name, name)
        if community not in simulation.config.communities:
            continue
        out[name] = DemandReading(
            community=community, source="model", where="(simulated queue)", taken_at=now,
            max_age_seconds=600.0, join_seconds=0.0, running=running.get(community, 0),
            waiting=simulation.demand.waiting(community, now, running.get(community, 0)))
    return out


class CachedReadings:
    """`model_readings`, made again only when what they are made from moves: the instant,
    and what each community runs. A pass asks up to four times (plan, re-plan, what-ifs),
    mostly at one instant with the same machines running; the planner only reads them."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, dict[str, int], dict[str, DemandReading]]] = {}

    def __call__(self, simulation: _Simulated, space: Space,
                 now: float) -> dict[str, DemandReading]:
        running = running_by_community(simulation, now)
        last = self._last.get(space.name)
        if last is not None and last[0] == now and last[1] == running:
            return last[2]
        readings = readings_from(simulation, space, now, running)
        self._last[space.name] = (now, running, readings)
        return readings


def ramp_up_waits(rows: Sequence[Mapping[str, Any]], demand: Demand,
                  communities: Sequence[str], start: float, end: float,
                  reach: float = 0.9) -> dict[str, list[float]]:
    """Per community with demand windows: for each window starting in [start, end), the
    seconds from its start until the community first ran `reach` of the most it ran in that
    window (the whole window when it ran nothing): how long its work waited to be served."""
    out: dict[str, list[float]] = {}
    for community in communities:
        if community in demand.always:
            continue
        for a, b in demand.windows.get(community, ()):
            if not start <= a < end:
                continue
            inside = [r for r in rows if a <= r["time"] < b]
            peak = max((r[f"processors:{community}"] for r in inside), default=0)
            reached = next((r["time"] for r in inside
                            if peak and r[f"processors:{community}"] >= reach * peak), b)
            out.setdefault(community, []).append(max(0.0, reached - a))
    return out


@dataclass
class Outcome:
    """One run's figures: spend on machines that found no work, waits, and the budget."""

    no_work_spend: dict[str, float] = field(default_factory=dict)
    no_work_machines: dict[str, int] = field(default_factory=dict)
    ramp_up_seconds: dict[str, list[float]] = field(default_factory=dict)
    max_wait_seconds: dict[str, float] = field(default_factory=dict)
    spent: float = 0.0
    cpu_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        waits = {c: {"windows": len(v), "mean": round(sum(v) / len(v), 1) if v else 0.0,
                     "max": round(max(v, default=0.0), 1)}
                 for c, v in sorted(self.ramp_up_seconds.items())}
        return {"no_work_spend": round(sum(self.no_work_spend.values()), 2),
                "no_work_spend_by_community": {k: round(v, 2) for k, v in
                                               sorted(self.no_work_spend.items())},
                "no_work_machines": sum(self.no_work_machines.values()),
                "ramp_up_seconds": waits,
                "max_wait_on_backfill_seconds": {k: round(v, 1) for k, v in
                                                 sorted(self.max_wait_seconds.items())},
                "spent": round(self.spent, 2), "cpu_seconds": round(self.cpu_seconds, 2)}


def run_case(config: Config, demand: Demand, start: float, end: float, *, signals: bool,
             step_seconds: float = 600.0, seed: int = 0) -> Outcome:
    """One simulation of the case, probing (`signals=False`) or with model readings."""
    from vcyclectl.policy.simulate import Simulation

    simulation = Simulation(config, demand, start, end, step_seconds=step_seconds, seed=seed,
                            check_latency=True, signals=signals)
    report = simulation.run()
    return Outcome(no_work_spend=dict(simulation.no_work_spend),
                   no_work_machines=dict(simulation.no_work_machines),
                   ramp_up_seconds=ramp_up_waits(report.rows, demand, report.communities,
                                                 start, end),
                   max_wait_seconds=dict(report.max_wait_seconds),
                   spent=sum(b["final_spent"] for b in report.budgets.values()),
                   cpu_seconds=report.cpu_seconds)


def compare(config: Config, demand: Demand, start: float, end: float, *,
            step_seconds: float = 600.0, seed: int = 0) -> dict[str, Any]:
    """The same case, same seed, run with probing and with signals."""
    probing = run_case(config, demand, start, end, signals=False, step_seconds=step_seconds,
                       seed=seed)
    signals = run_case(config, demand, start, end, signals=True, step_seconds=step_seconds,
                       seed=seed)
    return {"probing": probing.to_json(), "signals": signals.to_json()}
