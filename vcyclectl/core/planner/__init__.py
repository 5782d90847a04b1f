"""The pure planner: what one pass over one space should do, and why.

`plan(space, observation, now, names)` looks only at what is (cloud listing, records,
reports, drains, backoff) and returns actions with human reasons; it does no I/O, reads no
clock and draws no randomness except through the `names` source it is given. That is what
makes it testable with hypothesis and fast enough for 100,000 machines.

Rules (SPEC "The reconcile pass"):
- per machine: end it when stopped/failed, past `max_wallclock_seconds`, without a fresh
  heartbeat after `fizzle_seconds`, stuck starting past `create_timeout_seconds`, drained
  and past its shutdown time, or over a lowered limit (newest first); adopt a tagged machine
  with no record; forget a record whose machine is gone (after `create_timeout_seconds` for
  an intent the cloud has not shown yet);
- creation: none for machinetypes in backoff, drained, or with `target_share: 0`; the rest
  fill the free capacity under every limit, one machine at a time to whichever machinetype
  is furthest below its hs06-weighted share;
- per pass at most `max_deletes_per_pass` deletions and `max_creates_per_pass` creations;
- demand signals (`Observation.demand`, docs/demand.md): no more than the waiting work
  beyond what is on its way, no probing or backoff while work waits, nothing when none
  does; a failed or stale reading plans as without one.

The steps live one per module, each a subclass of the one before, in the order a pass
runs them: `base` (input and shared state) → `observe` → `machines` → `signals` (demand
readings) → `probing` (who has shown work) → `fill` (the one fill loop) → `making_room`;
`plan()` here runs them. What two steps both count from the machines (`usage`, `probes`) is
counted once and again only after a machine's `leaving` changed (`leaving_changes`).
"""

from __future__ import annotations

from vcyclectl.config import Space
from vcyclectl.core import collector, rules
from vcyclectl.core.model import Plan
from vcyclectl.core.planner.base import (MSG_FAILED, MSG_HEARTBEAT, MSG_OVER_LIMIT, MSG_REQUESTED,
                                         MSG_WALLCLOCK, POLICY_DRAIN, NameSource, Observation,
                                         fitting_flavors, is_abort, message_code)
from vcyclectl.core.planner.making_room import _MakingRoom

__all__ = ["MSG_FAILED", "MSG_HEARTBEAT", "MSG_OVER_LIMIT", "MSG_REQUESTED", "MSG_WALLCLOCK",
           "POLICY_DRAIN", "NameSource", "Observation", "fitting_flavors", "is_abort",
           "message_code", "plan"]


class _Planner(_MakingRoom):
    def run(self) -> Plan:
        self.merge()
        counted: dict[str, int] = {}
        for s in self.seen:
            mt = s.machinetype
            counted[mt] = counted.get(mt, 0) + s.processors
        self.decide_machines()
        self.enforce_limits()
        if self.obs.policy is None:
            self.bound_deletes()
            self.create()
        else:
            self.make_room(self.obs.policy)
            self.bound_deletes()
            self.create_by_policy(self.obs.policy)
        return Plan(space=self.space.name, actions=tuple(self.actions),
                    notes=tuple(dict.fromkeys(self.notes)), aborts=dict(self.aborts),
                    counted=counted, backoff_until={
                        name: rules.backoff_until(mt, self.obs.backoff, self.aborts)
                        for name, mt in self.space.machinetypes.items()},
                    demand={r.community: r.to_json(self.now) for r in self.obs.demand.values()})



def plan(space: Space, observation: Observation, now: float, names: NameSource, *,
         max_deletes: int | None = None) -> Plan:
    """Decide one pass over one space. Pure: same inputs (and names), same plan.

    `max_deletes` lowers the per-pass bound; `max_deletes=0` plans creations for a pass whose
    deletions are already done: every machine, however ended, then counts against the limits,
    since no deletion in this plan will be carried out.
    """
    with collector.paused():  # one small object per machine, none freed until it returns
        return _Planner(space, observation, now, names, max_deletes).run()
