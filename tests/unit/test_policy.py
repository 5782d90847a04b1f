"""The provisioning policy in the pure planner: priorities, backfill, making room, campaigns,
budgets and pacing, one rule per test, on hand-built observations (no I/O, fixed clock)."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import pytest

from vcyclectl import config as config_module
from vcyclectl.config import Budget, Campaign, Community, Config, Machinetype, Space
from vcyclectl.errors import ConfigError
from vcyclectl.core.model import ActionKind, CloudMachine, Flavor, MachineState, Plan
from vcyclectl.core.names import random_names
from vcyclectl.core.planner import POLICY_DRAIN, Observation, plan
from vcyclectl.core.provisioning import SpacePolicy, paced_rate, space_policy
from vcyclectl.core.records import DrainMark, Drains, MachineRecord

NOW = 1_800_000_000.0
DAY = 86400.0
FLAVORS = (Flavor("one", 1, price_per_hour=1.0), Flavor("spot", 1, price_per_hour=0.25,
                                                        spot=True))


def mt(name: str, **kw: Any) -> Machinetype:
    kw.setdefault("fizzle_seconds", 600.0)
    kw.setdefault("backoff_seconds", 600.0)
    return Machinetype(name=name, **kw)


def make_config(machinetypes: dict[str, Machinetype], communities: dict[str, Community], *,
                limit: int = 10, budgets: dict[str, Budget] | None = None,
                campaigns: tuple[Campaign, ...] = (), **space_kw: Any) -> Config:
    space = Space(name="s", processors_limit=limit, machinetypes=machinetypes, **space_kw)
    return Config(state_dir=Path("/nonexistent"), spaces={"s": space},
                  communities=communities, budgets=budgets or {}, campaigns=campaigns)


def machine(name: str, machinetype: str, *, age: float = 3600.0, running_for: float | None = None,
            state: MachineState = MachineState.RUNNING, processors: int = 1,
            flavor: str = "one") -> CloudMachine:
    created = NOW - age
    started = NOW - running_for if running_for is not None else created + 10
    return CloudMachine(id="id-" + name, name=name, space="s", machinetype=machinetype,
                        state=state, processors=processors, created_at=created,
                        started_at=started if state is MachineState.RUNNING else None,
                        flavor=flavor, heartbeat_at=NOW)


def record(m: CloudMachine, price: float | None = None) -> MachineRecord:
    return MachineRecord(name=m.name, space="s", machinetype=m.machinetype, state=m.state,
                         processors=m.processors, created_at=m.created_at or NOW,
                         cloud_id=m.id, started_at=m.started_at, flavor=m.flavor,
                         price_per_hour=price)


def run(cfg: Config, machines: list[CloudMachine], *, now: float = NOW,
        finished_spend: float = 0.0, drains: Drains | None = None,
        backoff: dict[str, float] | None = None, prices: dict[str, float] | None = None,
        flavors: tuple[Flavor, ...] = FLAVORS) -> Plan:
    space = cfg.spaces["s"]
    policy = space_policy(cfg, space, now, finished_spend=finished_spend)
    assert policy is not None
    obs = Observation(machines=machines,
                      records={m.name: record(m, (prices or {}).get(m.name)) for m in machines},
                      drains=drains or Drains(), backoff=backoff or {}, flavors=flavors,
                      policy=policy)
    return plan(space, obs, now, random_names("s", random.Random(1)))


def created(p: Plan) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in p.creates:
        out[a.machinetype] = out.get(a.machinetype, 0) + a.processors
    return out


def drained(p: Plan) -> list[str]:
    return [a.name for a in p.actions if a.kind is ActionKind.UPDATE and POLICY_DRAIN in a.changes]


# -- priorities and shares --------------------------------------------------------------------
def test_higher_priority_takes_capacity_first() -> None:
    cfg = make_config({"hi": mt("hi", processors_limit=6), "lo": mt("lo")},
                      {"hi": Community("hi", ("hi",), priority=2),
                       "lo": Community("lo", ("lo",), priority=1)})
    assert created(run(cfg, [])) == {"hi": 6, "lo": 4}


def test_strict_order_not_shares_between_priorities() -> None:
    cfg = make_config({"hi": mt("hi"), "lo": mt("lo", target_share=100)},
                      {"hi": Community("hi", ("hi",), priority=2),
                       "lo": Community("lo", ("lo",), priority=1)})
    assert created(run(cfg, [])) == {"hi": 10}


def test_equal_priorities_share_by_target_share() -> None:
    cfg = make_config({"a": mt("a"), "b": mt("b")},
                      {"a": Community("a", ("a",), priority=1, target_share=3),
                       "b": Community("b", ("b",), priority=1, target_share=1)}, limit=12)
    assert created(run(cfg, [])) == {"a": 9, "b": 3}


def test_priority_in_backoff_leaves_capacity_to_the_next() -> None:
    cfg = make_config({"hi": mt("hi"), "lo": mt("lo")},
                      {"hi": Community("hi", ("hi",), priority=2),
                       "lo": Community("lo", ("lo",), priority=1)})
    p = run(cfg, [], backoff={"hi": NOW - 10})
    assert created(p) == {"lo": 10}
    assert any("hi: in backoff" in n for n in p.notes)


def test_machinetype_outside_communities_keeps_priority_zero() -> None:
    cfg = make_config({"hi": mt("hi", processors_limit=4), "plain": mt("plain")},
                      {"hi": Community("hi", ("hi",), priority=5)})
    assert created(run(cfg, [])) == {"hi": 4, "plain": 6}


# -- backfill ---------------------------------------------------------------------------------
def iris_like(make_room: str = "drain", **space_kw: Any) -> Config:
    return make_config({"ska": mt("ska", processors_limit=4, drain_grace_seconds=300.0),
                        "lhcb": mt("lhcb", drain_grace_seconds=300.0)},
                       {"ska": Community("ska", ("ska",), priority=3),
                        "lhcb": Community("lhcb", ("lhcb",), backfill=True,
                                          make_room=make_room)},  # type: ignore[arg-type]
                       **space_kw)


def test_backfill_fills_what_priority_leaves() -> None:
    assert created(run(iris_like(), [])) == {"ska": 4, "lhcb": 6}


def test_backfill_takes_everything_when_priority_has_no_work() -> None:
    assert created(run(iris_like(), [], backoff={"ska": NOW - 1})) == {"lhcb": 10}


def full_of_backfill(n: int = 10) -> list[CloudMachine]:
    """Backfill machines of different ages: lhcb-0 is the oldest."""
    return [machine(f"lhcb-{i}", "lhcb", age=10_000.0 - 100 * i) for i in range(n)]


def test_backfill_makes_room_by_delete_newest_first_in_the_same_pass() -> None:
    ska = machine("ska-0", "ska", age=5000.0, running_for=4000.0)  # has shown work
    fleet = full_of_backfill(9) + [ska]
    p = run(iris_like("delete"), fleet)
    deleted = [a.name for a in p.deletes]
    assert deleted == ["lhcb-8", "lhcb-7", "lhcb-6"]  # newest first, the oldest stay
    assert all("making room for ska" in a.reason for a in p.deletes)
    assert created(p) == {"ska": 3}  # the room is used in this very pass


def test_backfill_makes_room_by_drain_with_a_shutdown_time() -> None:
    ska = machine("ska-0", "ska", age=5000.0, running_for=4000.0)
    fleet = full_of_backfill(9) + [ska]
    p = run(iris_like("drain"), fleet)
    assert drained(p) == ["lhcb-8", "lhcb-7", "lhcb-6"]
    assert not p.deletes and not p.creates  # drained machines keep counting until they end
    assert all(a.changes[POLICY_DRAIN] == NOW for a in p.actions if a.kind is ActionKind.UPDATE
               and POLICY_DRAIN in a.changes)


def test_drained_backfill_is_deleted_after_grace_and_priority_gets_the_room() -> None:
    ska = machine("ska-0", "ska", age=5000.0, running_for=4000.0)
    fleet = full_of_backfill(9) + [ska]
    marks = {n: DrainMark(n, NOW, "policy", "policy") for n in ("lhcb-8", "lhcb-7", "lhcb-6")}
    during = run(iris_like("drain"), fleet, drains=Drains(machines=marks))
    assert not drained(during) and not during.creates  # room on its way: nothing more asked
    assert any("backfill: no new machines" in n for n in during.notes)
    after = run(iris_like("drain"), fleet, now=NOW + 300, drains=Drains(machines=marks))
    assert sorted(a.name for a in after.deletes) == ["lhcb-6", "lhcb-7", "lhcb-8"]
    assert created(after) == {"ska": 3}


def test_priority_without_shown_work_only_probes() -> None:
    """Out of backoff but no machine has run past fizzle_seconds: one machine's room."""
    p = run(iris_like("delete"), full_of_backfill())
    assert [a.name for a in p.deletes] == ["lhcb-9"]
    assert created(p) == {"ska": 1}
    starting = machine("ska-0", "ska", age=30.0, state=MachineState.STARTING)
    p = run(iris_like("delete"), full_of_backfill(9) + [starting])
    assert not p.deletes and not p.creates  # one probe at a time


def test_no_room_is_made_for_priority_at_its_own_limit() -> None:
    fleet = full_of_backfill(6) + [machine(f"ska-{i}", "ska", running_for=4000.0, age=5000.0)
                                   for i in range(4)]
    p = run(iris_like("delete"), fleet)
    assert not p.deletes and not p.creates


# -- campaigns --------------------------------------------------------------------------------
def campaign_config(processors: int | None = 3, share: float | None = None) -> Config:
    return make_config(
        {"hi": mt("hi"), "dune": mt("dune")},
        {"hi": Community("hi", ("hi",), priority=5), "dune": Community("dune", ("dune",),
                                                                    priority=1)},
        campaigns=(Campaign(community="dune", start="2027-01-10", end="2027-01-20",
                            processors=processors, share=share, name="dune-run"),))


def test_campaign_raises_priority_inside_its_window_only() -> None:
    cfg = campaign_config()
    inside = config_module.parse_when("2027-01-15")
    before = config_module.parse_when("2027-01-09T23:59:59Z")
    after = config_module.parse_when("2027-01-21")
    assert created(run(cfg, [], now=inside)) == {"dune": 3, "hi": 7}
    assert created(run(cfg, [], now=before)) == {"hi": 10}
    assert created(run(cfg, [], now=after)) == {"hi": 10}
    # a bare end date includes that whole day
    assert created(run(cfg, [], now=config_module.parse_when("2027-01-20T23:00:00Z"))) == \
        {"dune": 3, "hi": 7}


def test_campaign_share_of_the_space() -> None:
    cfg = campaign_config(processors=None, share=0.5)
    assert created(run(cfg, [], now=config_module.parse_when("2027-01-15"))) == \
        {"dune": 5, "hi": 5}


def test_campaign_processors_span_spaces() -> None:
    cfg = campaign_config(processors=4)
    policy = space_policy(cfg, cfg.spaces["s"], config_module.parse_when("2027-01-15"),
                          other_usage={"dune": 3})
    assert policy is not None
    raised = [t for t in policy.tiers if t.priority > 5]
    assert raised and raised[0].caps == {"dune": 1}


# -- budgets ----------------------------------------------------------------------------------
def budgeted(amount: float, *, start: float = NOW - DAY, end: float = NOW + 9 * DAY,
             wallclock: float = 3600.0, margin: float = 0.0) -> Config:
    from vcyclectl.core.times import iso

    budget = Budget(amount=amount, start=str(iso(start)), end=str(iso(end)), spaces=("s",),
                    name="b", reserve_margin_seconds=margin)
    return make_config({"a": mt("a", flavors=("one",), max_wallclock_seconds=wallclock)},
                       {"a": Community("a", ("a",), priority=1)}, limit=1000,
                       budgets={"b": budget})


def test_pacing_allows_the_burn_rate_that_lands_on_the_budget() -> None:
    # 240 over 10 days: paced at 1/hour, with nothing spent; machines cost 1/hour each
    cfg = budgeted(240.0 * 10 / 9, start=NOW, end=NOW + 10 * DAY)
    p = run(cfg, [])
    assert len(p.creates) == 1
    assert paced_rate(240.0, 0.0, NOW, NOW + 10 * DAY) == pytest.approx(1.0)


def test_pacing_speeds_up_when_behind_and_slows_down_when_ahead() -> None:
    cfg = budgeted(2400.0, start=NOW - 5 * DAY, end=NOW + 5 * DAY)  # 10/hour on schedule
    behind = run(cfg, [], finished_spend=0.0)   # 2400 over 5 days left: 20/hour
    ahead = run(cfg, [], finished_spend=1800.0)  # 600 over 5 days left: 5/hour
    assert len(behind.creates) == 20 and len(ahead.creates) == 5


def test_hard_ceiling_reserves_until_max_wallclock() -> None:
    # One hour left: pacing allows 10.5/hour (10 machines), but 10.5 left pays for only
    # 5 machines for their two-hour max_wallclock_seconds.
    cfg = budgeted(1000.0, end=NOW + 3600.0, wallclock=7200.0)
    p = run(cfg, [], finished_spend=1000.0 - 10.5)
    assert len(p.creates) == 5
    assert any("cannot pay" in n for n in p.notes)


def test_running_machines_count_against_rate_and_ceiling() -> None:
    cfg = budgeted(2400.0, start=NOW - 5 * DAY, end=NOW + 5 * DAY)
    fleet = [machine(f"a-{i}", "a", age=1800.0) for i in range(15)]
    p = run(cfg, fleet, prices={m.name: 1.0 for m in fleet})
    # 15/hour already running; the 7.50 they have cost so far brings the pace from
    # 20/hour to just under it, so 4 more, not 5
    assert len(p.creates) == 4


def test_nothing_is_created_outside_the_budget_window() -> None:
    cfg = budgeted(1000.0, start=NOW + DAY, end=NOW + 2 * DAY)
    p = run(cfg, [])
    assert not p.creates and any("outside its window" in n for n in p.notes)


def test_unpriced_flavors_are_not_used_on_a_budgeted_space() -> None:
    cfg = budgeted(1000.0)
    p = run(cfg, [], flavors=(Flavor("one", 1),))
    assert not p.creates and any("without a price" in n for n in p.notes)


def test_backfill_keeps_the_rate_when_priority_has_no_work() -> None:
    budget = Budget(amount=2400.0, start="2027-01-01", end="2027-01-10", spaces=("s",), name="b")
    cfg = make_config({"ska": mt("ska", flavors=("one",)), "lhcb": mt("lhcb", flavors=("spot",))},
                      {"ska": Community("ska", ("ska",), priority=3),
                       "lhcb": Community("lhcb", ("lhcb",), backfill=True)},
                      limit=1000, budgets={"b": budget})
    now = config_module.parse_when("2027-01-01")
    rate = paced_rate(2400.0, 0.0, now, budget.end_at)
    busy = run(cfg, [], now=now)
    idle = run(cfg, [], now=now, backoff={"ska": now - 1})
    spend = lambda p: sum(a.flavor.price_per_hour for a in p.creates)  # noqa: E731
    assert spend(busy) == pytest.approx(spend(idle), abs=1.0) and spend(idle) <= rate
    assert created(idle) == {"lhcb": int(rate / 0.25)}


# -- unchanged without a policy ---------------------------------------------------------------
def test_no_policy_configured_means_no_policy() -> None:
    cfg = make_config({"a": mt("a")}, {})
    assert space_policy(cfg, cfg.spaces["s"], NOW) is None


def test_a_policy_of_one_plain_tier_plans_like_no_policy() -> None:
    """A space whose machinetypes are in no community gets one tier at priority 0 with
    their own shares: the same creations as the planner without a policy."""
    mts = {"a": mt("a", target_share=3), "b": mt("b")}
    cfg = make_config(mts, {"other": Community("other", ("zzz",), priority=1)})
    cfg = replace(cfg, spaces={**cfg.spaces, "t": Space(name="t", machinetypes={
        "zzz": mt("zzz")})})
    space = cfg.spaces["s"]
    policy = space_policy(cfg, space, NOW)
    assert isinstance(policy, SpacePolicy)
    obs = Observation(machines=[], records={}, flavors=FLAVORS[:1])
    plain = plan(space, obs, NOW, random_names("s", random.Random(1)))
    with_policy = plan(space, replace(obs, policy=policy), NOW,
                       random_names("s", random.Random(1)))
    assert created(plain) == created(with_policy) == {"a": 7, "b": 3}
    assert [a.name for a in plain.creates] != []


# -- configuration ----------------------------------------------------------------------------
POLICY_YAML = """\
state_dir: state
spaces:
  cloud.example.org:
    cloud: local
    processors_limit: 100
    machinetypes: {ska: {}, lhcb: {}}
  other.example.org:
    cloud: local
    processors_limit: 300
    machinetypes: {ska: {}}
communities:
  ska: {machinetypes: [ska], priority: 10}
  lhcb: {machinetypes: [cloud.example.org/lhcb], backfill: true, make_room: delete}
budgets:
  commercial:
    spaces: [cloud.example.org, other.example.org]
    amount: 50000
    start: 2026-12-01
    end: 2027-03-31
campaigns:
  - {community: ska, start: 2027-01-01, end: 2027-01-31T12:00:00Z, processors: 50}
"""


def test_policy_config_parses(write_config: Callable[..., Path]) -> None:
    cfg = config_module.load(write_config(POLICY_YAML))
    assert cfg.has_policy
    assert cfg.communities["lhcb"].make_room == "delete"
    assert cfg.communities["ska"].covers("other.example.org", "ska")
    budget = cfg.budgets["commercial"]
    assert budget.end_at - budget.start_at == 121 * DAY
    from vcyclectl.core.provisioning import allotment

    assert allotment(cfg, budget, "cloud.example.org") == pytest.approx(12500.0)
    assert cfg.campaigns[0].name == "ska-2027-01-01"
    shown = config_module.display(cfg)
    assert shown["budgets"]["commercial"]["amount"] == 50000


@pytest.mark.parametrize("edit, key, words", [
    (("[ska], priority: 10", "[nope], priority: 10"), "communities.ska.machinetypes",
     "names no configured machinetype"),
    (("[cloud.example.org/lhcb]", "[lhcb, ska]"), "communities.lhcb.machinetypes",
     "already in community"),
    (("spaces: [cloud.example.org, other.example.org]", "spaces: [cloud.example.org, x.org]"),
     "budgets.commercial.spaces", "no such space"),
    (("end: 2027-03-31", "end: 2026-11-01"), "budgets.commercial.end", "must be after"),
    (("{community: ska,", "{community: dune,"), "campaigns[0].community", "no such community"),
    (("processors: 50}", "processors: 50, share: 0.5}"), "campaigns[0].share", "not both"),
    (("make_room: delete", "make_room: kill"), "communities.lhcb.make_room", "one of"),
    (("amount: 50000", "amount: lots"), "budgets.commercial.amount", "number"),
    (("start: 2026-12-01", "start: December"), "budgets.commercial.start", "ISO date"),
    (("priority: 10}", "priority: 10, colour: red}"), "communities.ska.colour", "unknown key"),
])
def test_policy_config_errors_name_file_line_and_key(write_config: Callable[..., Path],
                                                     edit: tuple[str, str], key: str,
                                                     words: str) -> None:
    path = write_config(POLICY_YAML.replace(*edit))
    with pytest.raises(ConfigError) as info:
        config_module.load(path)
    message = str(info.value)
    assert key in message and words in message and str(path) in message, message
    assert info.value.line is not None
