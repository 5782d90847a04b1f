"""How long a plan that does nothing stays that way: `quiet_until(space, obs, now, plan)`.

`simulate` plans each space once per simulated step; most of a pass's cost is the planner.
When a plan has no actions and nothing the planner looks at changes, every later pass plans
the same nothing until some rule that reads the clock can decide differently. This module
names those instants, so the simulator can skip the passes in between (it knows when its own
inputs change: a machine's next state change, a campaign window).

Pure and conservative, like the planner: it reads only its arguments, and every bound errs
early (each deadline less a margin for float rounding; `now` itself, meaning "plan the next
pass", whenever a rule's time dependence is not bounded here: demand readings, which age,
and budget pacing while the money left could still pace a machine in). It changes no
decision: the planner is untouched, and tests/unit/test_quiet_planner.py checks, for random
settled fleets, that planning at any time in [now, quiet_until) gives no actions.

The rules and the instants they can change at:
- per machine (`machines`): a drain's shutdown time, `max_wallclock_seconds`,
  `create_timeout_seconds` while starting, a heartbeat's limit after `fizzle_seconds`;
- an intent the cloud has not listed yet (`observe`): its timeout;
- creation (`fill`, `making_room`): a machinetype's backoff end, a scheduled drain taking
  hold, a running machine proving its community has work (`fizzle_seconds`), and a budget's
  window and pace (below).

Pacing: the spend rate allowed is `(allotment - spent) / hours_left`; spent never falls, so
until `end - (allotment - spent_now) / cheapest_price` it stays under the cheapest priced
flavor and no fill (real, or the dry one that sizes making room) can create anything.
"""

from __future__ import annotations

import math

from vcyclectl.config import Space
from vcyclectl.core.model import MachineState, Plan
from vcyclectl.core.planner.base import Observation
from vcyclectl.core.rules import intent_in_flight

#: Added (relative) to the fill loop's own tolerance on prices, and taken off each deadline:
#: comparisons in the planner are of float sums, so a bound is never trusted to the ulp.
_EPSILON = 1e-9


def before(t: float) -> float:
    """A deadline less a margin far above float rounding at epoch magnitudes (~1e-7 s)."""
    return t - 1e-3 - abs(t) * _EPSILON


def quiet_until(space: Space, obs: Observation, now: float, plan: Plan, *,
                heartbeats_fresh: bool = False) -> float:
    """For `plan` (made at `now` from `obs`) with no actions: a time before which planning
    again with the same observation would also decide nothing. `now` when it cannot say
    (the plan acts, a demand reading steers it, pacing may let a machine in).

    `heartbeats_fresh`: the caller will show every running machine with a heartbeat taken
    at the time it plans (the simulator does), so no heartbeat can go stale; the bound
    then holds for that observation, which differs from `obs` only in heartbeats."""
    if plan.actions or obs.demand:
        return now
    deadlines = [_pacing_ends(space, obs, now)]
    deadlines.extend(plan.backoff_until.values())
    deadlines.extend(_machine_deadlines(space, obs, now, heartbeats_fresh))
    deadlines.extend(_intent_deadlines(space, obs, now))
    drains = obs.drains
    for mark in (drains.space, *drains.machinetypes.values()):
        if mark is not None:
            deadlines.append(mark.starts_at)
    until = math.inf
    for t in deadlines:
        if t > now:
            until = min(until, before(t))
    return until if until > now else now


def _pacing_ends(space: Space, obs: Observation, now: float) -> float:
    """When pacing could first let a machine in (`now` when it may already: no skipping);
    +inf without a budget, or once its window is over."""
    policy = obs.policy
    money = policy.money if policy is not None else None
    if money is None:
        return math.inf
    prices = [f.price_per_hour for f in obs.flavors if f.price_per_hour is not None]
    if not prices or min(prices) <= 4 * _EPSILON:
        return now  # a free flavor passes any pace: not bounded here
    cheapest = min(prices) - 4 * _EPSILON
    if now >= money.end_at:
        return math.inf  # outside the window for good: nothing is created
    if now < money.start_at:
        return money.start_at
    spent = money.finished_spend
    for m in obs.machines:  # what the planner counts as realized, bounded below
        record = obs.records.get(m.name)
        if m.space != space.name or record is None or record.finished:
            continue
        created = record.created_at or m.created_at or now
        if created >= money.start_at and created < now:
            price = record.price_per_hour if record.price_per_hour is not None else next(
                (f.price_per_hour or 0.0 for f in obs.flavors if f.name == m.flavor), 0.0)
            if price < 0:
                return now
            spent += price * (now - created) / 3600.0
    left = max(0.0, money.allotment - spent)
    left += abs(money.allotment) * _EPSILON + 1e-6  # the sum above is not the planner's
    return money.end_at - left * 3600.0 / cheapest


def _machine_deadlines(space: Space, obs: Observation, now: float,
                       heartbeats_fresh: bool) -> list[float]:
    """The instants a per-machine rule or a proof of work can change (machines.py, fill.py)."""
    out: list[float] = []
    drains = obs.drains
    any_drain = bool(drains.space or drains.machinetypes or drains.machines)
    for m in obs.machines:
        if m.space != space.name:
            continue
        record = obs.records.get(m.name)
        mt = space.machinetypes.get(m.machinetype if record is None else record.machinetype)
        if mt is None or m.state.is_ended or m.state is MachineState.DELETING:
            continue
        created = (record.created_at if record is not None and record.created_at else None) \
            or m.created_at or now
        started = m.started_at or (record.started_at if record is not None else None)
        if any_drain:
            mark = drains.for_machine(m.name, mt.name, mt.drain_grace_seconds)
            if mark is not None:
                out.append(mark.shutdown_at(mt.drain_grace_seconds))
        out.append(created + mt.max_wallclock_seconds)
        if m.state is MachineState.STARTING:
            out.append(created + space.create_timeout_seconds)
        if started is not None:
            out.append(started + mt.fizzle_seconds)  # heartbeat checks, proof of work
            if mt.heartbeat_checked and not heartbeats_fresh:
                beats = [b for b in (m.heartbeat_at, obs.reports[m.name].heartbeat_at
                                     if m.name in obs.reports else None) if b is not None]
                if beats:
                    out.append(max(beats) + mt.heartbeat_limit)
    return out


def _intent_deadlines(space: Space, obs: Observation, now: float) -> list[float]:
    """When intents the cloud does not list yet expire (observe.py)."""
    listed = {m.name for m in obs.machines if m.space == space.name}
    out = []
    for name, record in obs.records.items():
        if name not in listed and intent_in_flight(record, space, now):
            timeout = space.create_timeout_seconds if record.cloud_id else \
                space.intent_timeout_seconds
            out.append(record.created_at + timeout)
    return out
