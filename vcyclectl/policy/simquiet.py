"""Which of `simulate`'s passes can be skipped because they are known to do nothing.

A pass whose plan has no actions leaves the simulated space as it was. The planner says
how long that stays so for an unchanged observation (`core.planner.quiet.quiet_until`);
this module adds when the simulator's own inputs to the planner change (`sim_deadlines`):

- a machine's next change of state on the simulated cloud (boot done, job over), which the
  listing shows from that instant;
- a running machine passing `fizzle_seconds`, from when it proves its community has work
  to the backfill-wait what-ifs (`Simulation.measure_wait`);
- a campaign starting or ending (the policy's tiers, and the other spaces' usage it reads).

What the simulator hands the planner and does not count as a change: the heartbeat a
checked machine shows, which the simulator refreshes every pass, so it is never stale (the
planner's bound is asked with `heartbeats_fresh`), and each pass's `now`.
Other spaces' machines change a space's policy only through a campaign given in
processors; when a config has one, any pass that acts ends every other space's quiet spell
(`Simulation.run`).

Until the earliest of these, a skipped pass is exactly a planned one: nothing is created,
deleted, drained or recorded, and the rows and spend accrue per step as before. The
test that says so runs each case both ways and compares the CSV and the summary byte for
byte (tests/simulation/test_skip_quiet.py).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from vcyclectl.config import Config
from vcyclectl.core.planner.quiet import before

__all__ = ["sim_deadlines", "spans_spaces"]


def sim_deadlines(config: Config, machines: Iterable[Any], fizzle: dict[str, float],
                  now: float) -> float:
    """The first instant after `now` at which the simulator's inputs to a space's pass
    change (+inf: none), less a margin for float rounding. `machines` are the space's
    simulated machines (`life`, `machinetype`); `fizzle` is each machinetype's
    `fizzle_seconds`."""
    until = math.inf
    for m in machines:
        life = m.life
        if now < life.started_at:
            until = min(until, life.started_at)
        elif not life.failed and now < life.stopped_at:
            until = min(until, life.stopped_at)
            proven_at = life.started_at + fizzle.get(m.machinetype, 0.0)
            if proven_at > now:
                until = min(until, proven_at)
    for campaign in config.campaigns:
        for edge in (campaign.start_at, campaign.end_at):
            if edge > now:
                until = min(until, edge)
    return before(until) if until < math.inf else until


def spans_spaces(config: Config) -> bool:
    """Whether one space's machines can change another's plan (a campaign in processors)."""
    return any(c.processors is not None for c in config.campaigns)
