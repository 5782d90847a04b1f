"""Step 2c: demand signals (docs/demand.md). A community whose source reports its waiting
work is given no more than that work would fill (plus headroom), beyond the machines it
already has on their way; with work waiting it skips probing and backoff, with none it
gets nothing; a source that failed or is stale changes nothing (probing, as without one),
and the plan says which of these happened and why."""

from __future__ import annotations

from vcyclectl.core.model import MachineState
from vcyclectl.core.planner.machines import _Deciding
from vcyclectl.core.provisioning import DemandReading


class _Signalled(_Deciding):
    """Helpers the fill loop and probing call; all of them are no-ops without readings."""

    _on_the_way: dict[str, int] | None = None
    _said: set[str] | None = None

    def signal_for(self, machinetype: str) -> DemandReading | None:
        """The community's reading if it may steer this plan; a note says when it may not."""
        reading = self.obs.demand.get(machinetype)
        if reading is None:
            return None
        problem = reading.problem(self.now)
        if problem:
            self.say(reading.community, f"{reading.community}: no demand signal ({reading.source}"
                     f"{' ' + reading.where if reading.where else ''}: {problem}); probing "
                     "for work as without one")
            return None
        return reading

    def say(self, community: str, note: str) -> None:
        """One note per community and kind of note, however many machinetypes ask."""
        if self._said is None:
            self._said = set()
        key = f"{community}\0{note}"
        if key not in self._said:
            self._said.add(key)
            self.notes.append(note)

    def on_the_way(self, community: str) -> int:
        """Processors of the community's machines (in this space) that cannot yet be
        serving the waiting work the reading counted: starting, or running for less than
        the source's `join_seconds` when it was read. Counting them keeps the next pass from
        asking again for work they are about to take; a machine that has joined is not
        counted, since the work it took is no longer waiting."""
        if self._on_the_way is None:
            self._on_the_way = {}
            for s in self.seen:
                reading = self.obs.demand.get(s.machinetype)
                if reading is None or not s.counts:
                    continue
                young = s.state in (MachineState.CREATING, MachineState.STARTING) or (
                    s.state is MachineState.RUNNING and
                    (s.started_at is None or
                     reading.taken_at - s.started_at < reading.join_seconds))
                if young:
                    self._on_the_way[reading.community] = \
                        self._on_the_way.get(reading.community, 0) + s.processors
        return self._on_the_way.get(community, 0)

    def demand_left(self, demand_left: dict[str, float], machinetype: str) -> float | None:
        """Processors the community may still be given in this fill (None: no ceiling)."""
        reading = self.signal_for(machinetype)
        if reading is None:
            return None
        if reading.community not in demand_left:
            demand_left[reading.community] = float(reading.ceiling -
                                                   self.on_the_way(reading.community))
        return demand_left[reading.community]

    def demand_note(self, machinetype: str) -> str:
        """Why a community with a signal gets no (more) machines this pass."""
        reading = self.obs.demand[machinetype]
        if reading.waiting <= 0:
            return f"{reading.community}: {reading.signal}: no new machines"
        return (f"{reading.community}: {reading.signal}; {self.on_the_way(reading.community)} "
                "processors on their way: no more machines")

    def work_waiting(self, machinetype: str) -> DemandReading | None:
        """The reading when the community's source says work is waiting (skip probing and
        backoff: the source knows what a probe would only guess)."""
        reading = self.signal_for(machinetype)
        return reading if reading is not None and reading.waiting > 0 else None
