"""Step 2d, with a provisioning policy and backfill running: which priority communities
have shown work (`proven`) and which only probe for it, one machine at a time (`probes`).
The fill gives a probe at most one machine, and `making_room` makes no room for one."""

from __future__ import annotations

from vcyclectl.core.model import MachineState
from vcyclectl.core.planner.signals import _Signalled
from vcyclectl.core.provisioning import SpacePolicy


class _Probing(_Signalled):
    #: (`leaving_changes`, policy, probes) of the last `probes`: `make_room` and the fill
    #: both ask, and the answer moves only with the machines that count.
    _probes_memo: tuple[int, SpacePolicy, set[str]] | None = None

    def proven(self, machinetype: str) -> bool:
        """Has shown it has work: a machine running past `fizzle_seconds`. A priority
        community that has not only probes (one machine) before backfill makes room for it,
        so a community coming out of backoff without work costs backfill one machine."""
        if self._proven is None:
            self._proven = set()
            for s in self.seen:
                if s.machinetype in self._proven or not s.counts or \
                        s.state is not MachineState.RUNNING or s.started_at is None:
                    continue
                mt = self.space.machinetypes.get(s.machinetype)
                if self.now - s.started_at >= (mt.fizzle_seconds if mt is not None else 0.0):
                    self._proven.add(s.machinetype)
        return machinetype in self._proven

    def probes(self, policy: SpacePolicy) -> set[str]:
        """Priority machinetypes that only probe for work (one machine at a time) because
        none of their machines has shown work yet; only while backfill machines run, which
        are what a probe would cost. The same rule sizes what backfill makes room for, so
        the room made is not taken by a community that has not shown work."""
        memo = self._probes_memo
        if memo is not None and memo[0] == self.leaving_changes and memo[1] is policy:
            return memo[2]
        backfill = policy.backfill_machinetypes
        probes: set[str] = set()
        if backfill and any(s.counts and s.machinetype in backfill for s in self.seen):
            probes = {mt for t in policy.tiers if not t.backfill for mt in t.shares
                      if mt not in backfill and not self.proven(mt)
                      and self.signal_for(mt) is None}
        self._probes_memo = (self.leaving_changes, policy, probes)
        return probes
