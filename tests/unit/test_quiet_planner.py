"""`quiet_until` under hypothesis: for random fleets settled by applying plans until one
does nothing, planning again with the same observation at any time in [now, quiet_until)
does nothing too (the bound `simulate` skips passes by), with and without a provisioning
policy and a budget; and the bound is not vacuous: past a machine's wallclock it acts."""

from __future__ import annotations

import math
import random
from dataclasses import replace

from hypothesis import event, given, settings
from hypothesis import strategies as st

from vcyclectl.config import Machinetype, Space
from vcyclectl.core.model import ActionKind, CloudMachine, Flavor, MachineState, Plan
from vcyclectl.core.names import random_names
from vcyclectl.core.planner import POLICY_DRAIN, Observation, plan
from vcyclectl.core.planner.quiet import quiet_until
from vcyclectl.core.provisioning import SpaceMoney, SpacePolicy, Tier
from vcyclectl.core.records import DrainMark, Drains, MachineRecord

NOW = 5_000_000.0
FLAVORS = (Flavor("f1", 1, price_per_hour=0.1), Flavor("f2", 2, price_per_hour=0.25),
           Flavor("f4", 4, price_per_hour=0.4))


def names() -> object:
    return random_names("s", random.Random(7))


@st.composite
def machinetypes(draw: st.DrawFn) -> dict[str, Machinetype]:
    chosen = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3,
                           unique=True))
    return {name: Machinetype(
        name=name, processors_limit=draw(st.one_of(st.none(), st.integers(0, 16))),
        max_starting_processors=draw(st.one_of(st.none(), st.integers(0, 8))),
        target_share=draw(st.sampled_from([0.0, 1.0, 3.0])),
        backoff_seconds=draw(st.sampled_from([0.0, 600.0, 3600.0])),
        fizzle_seconds=draw(st.sampled_from([0.0, 300.0, 3600.0])),
        heartbeat_seconds=draw(st.sampled_from([None, 600.0])),
        max_wallclock_seconds=draw(st.sampled_from([3600.0, 86400.0])),
        drain_grace_seconds=draw(st.sampled_from([0.0, 1800.0])))
        for name in chosen}


@st.composite
def policies(draw: st.DrawFn, mts: dict[str, Machinetype]) -> SpacePolicy | None:
    """None, or tiers (the last machinetype backfill when there are several) and perhaps
    a budget, from empty to ample, its window around NOW or ahead of it."""
    if draw(st.booleans()):
        return None
    names_ = sorted(mts)
    backfill = names_[-1:] if len(names_) > 1 and draw(st.booleans()) else []
    tiers = [Tier(priority=1.0, shares={n: 1.0 for n in names_ if n not in backfill})]
    if backfill:
        tiers.append(Tier(priority=-1.0, shares={n: 1.0 for n in backfill}, backfill=True))
    money = None
    if draw(st.booleans()):
        start = NOW - draw(st.sampled_from([-7200.0, 0.0, 3600.0, 86400.0]))
        money = SpaceMoney(
            budget="b", currency="GBP", allotment=draw(st.sampled_from([0.0, 1.0, 5.0, 50.0])),
            finished_spend=draw(st.sampled_from([0.0, 0.5, 4.9])), start_at=start,
            end_at=start + draw(st.sampled_from([86400.0, 10 * 86400.0])),
            reserve_seconds={n: mt.max_wallclock_seconds for n, mt in mts.items()})
    return SpacePolicy(tiers=tuple(tiers), make_room={n: "drain" for n in backfill},
                       money=money)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[Space, Observation]:
    mts = draw(machinetypes())
    space = Space(name="s", processors_limit=draw(st.integers(0, 24)),
                  max_starting_processors=draw(st.one_of(st.none(), st.integers(0, 12))),
                  max_creates_per_pass=draw(st.integers(0, 10)), machinetypes=mts)
    machines: list[CloudMachine] = []
    records: dict[str, MachineRecord] = {}
    for i in range(draw(st.integers(0, 8))):
        mt = draw(st.sampled_from(sorted(mts)))
        running = draw(st.booleans())
        created = NOW - draw(st.floats(0, 20_000))
        started = created + draw(st.floats(0, 600)) if running else None
        m = CloudMachine(id=f"id{i}", name=f"m{i}", space="s", machinetype=mt,
                         state=MachineState.RUNNING if running else MachineState.STARTING,
                         processors=draw(st.sampled_from([1, 2, 4])), created_at=created,
                         started_at=started, flavor=draw(st.sampled_from(["f1", "f2", "f4"])),
                         heartbeat_at=NOW - draw(st.floats(0, 500)) if running else None)
        machines.append(m)
        records[m.name] = MachineRecord(name=m.name, space="s", machinetype=mt,
                                        state=m.state, processors=m.processors,
                                        created_at=created, cloud_id=m.id, started_at=started,
                                        flavor=m.flavor)
    marks = {n: DrainMark(n, NOW - 100, at=NOW + draw(st.sampled_from([600.0, 7200.0])))
             for n in mts if draw(st.integers(0, 4)) == 0}
    backoff = {n: NOW - draw(st.floats(0, 4000)) for n in mts if draw(st.booleans())}
    return space, Observation(machines=machines, records=records, backoff=backoff,
                              drains=Drains(machinetypes=marks), flavors=FLAVORS,
                              policy=draw(policies(mts)))


def applied(obs: Observation, p: Plan, now: float) -> Observation:
    """The world once every action of `p` is done (creations boot at once)."""
    gone = {a.name for a in p.deletes} | {a.name for a in p.of(ActionKind.FORGET)}
    machines = [m for m in obs.machines if m.name not in gone]
    records = {n: r for n, r in obs.records.items() if n not in gone}
    drains = dict(obs.drains.machines)
    for a in p.of(ActionKind.UPDATE):
        if POLICY_DRAIN in a.changes:
            drains[a.name] = DrainMark(a.name, float(a.changes[POLICY_DRAIN]), by="policy")
        else:
            records[a.name] = records[a.name].with_changes(**a.changes)
    for a in p.creates:
        assert a.flavor is not None
        m = CloudMachine(id="id-" + a.name, name=a.name, space="s", machinetype=a.machinetype,
                         state=MachineState.STARTING, processors=a.processors,
                         created_at=now, flavor=a.flavor.name)
        machines.append(m)
        records[a.name] = MachineRecord(name=a.name, space="s", machinetype=a.machinetype,
                                        state=MachineState.STARTING, processors=a.processors,
                                        created_at=now, cloud_id=m.id, flavor=a.flavor.name,
                                        price_per_hour=a.flavor.price_per_hour)
    backoff = dict(obs.backoff)
    for mt, when in p.aborts.items():
        backoff[mt] = max(when, backoff.get(mt, when))
    return replace(obs, machines=machines, records=records, backoff=backoff,
                   drains=replace(obs.drains, machines={n: m for n, m in drains.items()
                                                        if n not in gone}))


def settled(space: Space, obs: Observation) -> tuple[Observation, Plan] | None:
    """Apply plans until one does nothing (None if that takes too long)."""
    for _ in range(6):
        p = plan(space, obs, NOW, names())
        if not p.actions:
            return obs, p
        obs = applied(obs, p, NOW)
    return None


@settings(deadline=None, max_examples=200)
@given(worlds(), st.floats(0, 1, exclude_max=True))
def test_a_quiet_plan_stays_quiet_until_the_bound(world: tuple[Space, Observation],
                                                  fraction: float) -> None:
    space, obs = world
    found = settled(space, obs)
    if found is None:
        event("did not settle")
        return
    obs, p = found
    until = quiet_until(space, obs, NOW, p)
    assert until >= NOW
    if until == NOW:
        event("no bound")
        return
    event("bounded" if math.isfinite(until) else "quiet for good")
    horizon = min(until, NOW + 30 * 86400.0)
    for t in (NOW + fraction * (horizon - NOW), math.nextafter(horizon, NOW)):
        later = plan(space, obs, t, names())
        assert later.actions == (), (t - NOW, until - NOW, later.actions)


@settings(deadline=None, max_examples=150)
@given(worlds(), st.floats(0, 1, exclude_max=True))
def test_with_fresh_heartbeats_the_bound_ignores_their_age(
        world: tuple[Space, Observation], fraction: float) -> None:
    """What `simulate` does: each pass shows running machines with a heartbeat taken then."""
    space, obs = world
    found = settled(space, obs)
    if found is None:
        return
    obs, p = found
    until = quiet_until(space, obs, NOW, p, heartbeats_fresh=True)
    assert until >= quiet_until(space, obs, NOW, p)
    if until == NOW:
        return
    t = NOW + fraction * (min(until, NOW + 30 * 86400.0) - NOW)
    fresh = [replace(m, heartbeat_at=t) if m.state is MachineState.RUNNING else m
             for m in obs.machines]
    later = plan(space, replace(obs, machines=fresh), t, names())
    assert later.actions == (), (t - NOW, until - NOW, later.actions)


def test_a_plan_that_acts_is_not_quiet() -> None:
    space = Space(name="s", processors_limit=4, machinetypes={"a": Machinetype(name="a")})
    obs = Observation(machines=[], records={}, flavors=FLAVORS)
    p = plan(space, obs, NOW, names())
    assert p.creates
    assert quiet_until(space, obs, NOW, p) == NOW


def test_the_bound_is_the_first_deadline_and_the_plan_acts_after_it() -> None:
    """A full space of one running machine: quiet until its wallclock runs out (less the
    rounding margin), and planning just past that deletes it."""
    mt = Machinetype(name="a", max_wallclock_seconds=3600.0, fizzle_seconds=0.0)
    space = Space(name="s", processors_limit=4, machinetypes={"a": mt})
    m = CloudMachine(id="i", name="m", space="s", machinetype="a", state=MachineState.RUNNING,
                     processors=4, created_at=NOW - 600, started_at=NOW - 500, flavor="f4")
    record = MachineRecord(name="m", space="s", machinetype="a", state=MachineState.RUNNING,
                           processors=4, created_at=NOW - 600, cloud_id="i",
                           started_at=NOW - 500, flavor="f4")
    obs = Observation(machines=[m], records={"m": record}, flavors=FLAVORS)
    p = plan(space, obs, NOW, names())
    assert not p.actions
    until = quiet_until(space, obs, NOW, p)
    deadline = NOW - 600 + 3600.0
    assert deadline - 10 < until < deadline
    assert plan(space, obs, deadline + 1, names()).deletes


def test_an_exhausted_budget_is_quiet_to_the_end_of_its_window() -> None:
    """No money left: nothing can be paced in, so only machines' own deadlines bound it;
    with money left, the bound is when the pace could first afford the cheapest flavor."""
    space = Space(name="s", processors_limit=40, machinetypes={"a": Machinetype(name="a")})
    tiers = (Tier(priority=1.0, shares={"a": 1.0}),)

    def money(allotment: float) -> SpacePolicy:
        return SpacePolicy(tiers=tiers, money=SpaceMoney(
            budget="b", currency="GBP", allotment=allotment, finished_spend=10.0,
            start_at=NOW - 86400, end_at=NOW + 86400))

    obs = Observation(machines=[], records={}, flavors=FLAVORS, policy=money(10.0))
    p = plan(space, obs, NOW, names())
    assert not p.actions
    assert NOW + 86400 - 60 < quiet_until(space, obs, NOW, p) < NOW + 86400
    richer = replace(obs, policy=money(10.05))  # 0.05 left: paced in an hour before the end
    p = plan(space, richer, NOW, names())
    assert not p.actions
    until = quiet_until(space, richer, NOW, p)
    assert NOW + 86400 - 1800 - 10 < until < NOW + 86400 - 1800
    assert plan(space, richer, NOW + 86400 - 1800 + 60, names()).creates


def test_a_community_proving_it_has_work_ends_the_quiet() -> None:
    """Priority `a` only probes (one machine at a time) until one of its machines has run
    `fizzle_seconds`; then backfill makes room for it. The bound must stop before that."""
    mts = {"a": Machinetype(name="a", fizzle_seconds=600.0, flavors=("f4",)),
           "b": Machinetype(name="b", fizzle_seconds=600.0, flavors=("f4",))}
    space = Space(name="s", processors_limit=12, machinetypes=mts)
    fleet = [("a1", "a", MachineState.RUNNING, NOW - 100), ("a2", "a", MachineState.STARTING,
                                                             None),
             ("b1", "b", MachineState.RUNNING, NOW - 5000)]
    machines = [CloudMachine(id=n, name=n, space="s", machinetype=mt, state=state,
                             processors=4, created_at=NOW - 60 if started is None
                             else started - 60, started_at=started, flavor="f4")
                for n, mt, state, started in fleet]
    records = {m.name: MachineRecord(name=m.name, space="s", machinetype=m.machinetype,
                                     state=m.state, processors=4, created_at=m.created_at,
                                     cloud_id=m.id, started_at=m.started_at, flavor="f4")
               for m in machines}
    policy = SpacePolicy(tiers=(Tier(priority=1.0, shares={"a": 1.0}),
                                Tier(priority=-1.0, shares={"b": 1.0}, backfill=True)),
                         make_room={"b": "drain"})
    obs = Observation(machines=machines, records=records, flavors=FLAVORS, policy=policy)
    p = plan(space, obs, NOW, names())
    assert not p.actions
    until = quiet_until(space, obs, NOW, p)
    assert NOW + 490 < until < NOW + 500
    assert plan(space, obs, NOW + 510, names()).actions  # b drains for proven a
