"""Demand signals in the pure planner (docs/demand.md): a ceiling from the waiting work, no
probing and no backoff when work waits, nothing when none does, and exactly today's plan
when the source failed or is stale. Hand-built observations, then hypothesis properties."""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_policy import (NOW, FLAVORS, created, full_of_backfill, iris_like, machine,
                                    make_config, mt, record)
from tests.unit.test_policy_properties import SETTINGS, scenarios
from vcyclectl.config import Community, Config
from vcyclectl.core.model import CloudMachine, Flavor, MachineState, Plan
from vcyclectl.core.names import random_names
from vcyclectl.core.planner import Observation, plan
from vcyclectl.core.provisioning import DemandReading, space_policy

FOUR = (Flavor("four", 4, price_per_hour=1.0),)


def reading(waiting: int, community: str = "ska", **kw: object) -> DemandReading:
    kw.setdefault("where", "in partition euclid")
    kw.setdefault("taken_at", NOW - 30)
    return DemandReading(community=community, source="slurm", waiting=waiting,
                         **kw)  # type: ignore[arg-type]


def run(cfg: Config, machines: list[CloudMachine], demand: dict[str, DemandReading], *,
        flavors: tuple[Flavor, ...] = FLAVORS, backoff: dict[str, float] | None = None) -> Plan:
    space = cfg.spaces["s"]
    obs = Observation(machines=machines, records={m.name: record(m) for m in machines},
                      backoff=backoff or {}, flavors=flavors,
                      policy=space_policy(cfg, space, NOW), demand=demand)
    return plan(space, obs, NOW, random_names("s", random.Random(1)))


def euclid(limit: int = 40) -> Config:
    return make_config({"ska": mt("ska"), "lhcb": mt("lhcb")},
                       {"ska": Community("ska", ("ska",), priority=3),
                        "lhcb": Community("lhcb", ("lhcb",), backfill=True,
                                          make_room="delete")}, limit=limit)


def test_waiting_work_caps_what_the_community_is_given() -> None:
    p = run(euclid(), [], {"ska": reading(16)}, flavors=FOUR)
    assert created(p)["ska"] == 16  # 4 machines, not the 40 processors free
    assert all("slurm: 16 CPUs pending in partition euclid" in a.reason
               for a in p.creates if a.machinetype == "ska")


def test_a_partial_machine_is_still_given_and_headroom_adds() -> None:
    assert created(run(euclid(), [], {"ska": reading(5)}, flavors=FOUR))["ska"] == 8
    p = run(euclid(), [], {"ska": reading(16, headroom=0.5, headroom_processors=4)},
            flavors=FOUR)
    assert created(p)["ska"] == 28  # 16 + 8 + 4


def test_work_waiting_skips_probing_and_takes_its_entitlement_in_one_pass() -> None:
    cfg = iris_like("delete")
    without = run(cfg, full_of_backfill(), {})
    assert created(without) == {"ska": 1}  # today: one probe
    p = run(cfg, full_of_backfill(), {"ska": reading(96)})
    assert created(p) == {"ska": 4}  # its processors_limit, at once
    assert [a.name for a in p.deletes] == ["lhcb-9", "lhcb-8", "lhcb-7", "lhcb-6"]


def test_nothing_waiting_means_no_machines_and_no_probe() -> None:
    cfg = iris_like("delete")
    p = run(cfg, full_of_backfill(), {"ska": reading(0)})
    assert not p.creates and not p.deletes
    assert "ska: slurm: 0 CPUs pending in partition euclid: no new machines" in p.notes
    assert created(run(euclid(), [], {"ska": reading(0)})) == {"lhcb": 40}


def test_machines_on_their_way_count_against_the_waiting_work() -> None:
    starting = [machine(f"ska-{i}", "ska", age=20.0, state=MachineState.STARTING, processors=4,
                        flavor="four") for i in range(2)]
    booted = machine("ska-2", "ska", age=200.0, running_for=100.0, processors=4, flavor="four")
    p = run(euclid(), [*starting, booted], {"ska": reading(16)}, flavors=FOUR)
    assert created(p).get("ska", 0) == 4  # 16 waiting - 12 on their way
    proven = machine("ska-3", "ska", age=5000.0, running_for=4000.0, processors=4,
                     flavor="four")
    p = run(euclid(), [proven], {"ska": reading(16)}, flavors=FOUR)
    assert created(p)["ska"] == 16  # a machine serving work already is not on its way


def test_work_waiting_sets_backoff_aside() -> None:
    p = run(euclid(), [], {"ska": reading(8)}, backoff={"ska": NOW - 10})
    assert created(p)["ska"] == 8
    assert any("ska: backoff set aside: slurm: 8 CPUs pending" in n for n in p.notes)
    assert "ska" not in created(run(euclid(), [], {"ska": reading(0)},
                                    backoff={"ska": NOW - 10}))


def test_a_failing_or_stale_source_falls_back_to_todays_plan_and_says_why() -> None:
    cfg = iris_like("delete")
    today = run(cfg, full_of_backfill(), {})
    failed = run(cfg, full_of_backfill(),
                 {"ska": reading(0, unavailable="squeue: timed out after 10s")})
    stale = run(cfg, full_of_backfill(), {"ska": reading(0, taken_at=NOW - 900,
                                                         max_age_seconds=300)})
    for p in (failed, stale):
        assert p.actions == today.actions
    assert ("ska: no demand signal (slurm in partition euclid: squeue: timed out after 10s); "
            "probing for work as without one") in failed.notes
    assert any("last reading 900s old (max_age_seconds 300)" in n for n in stale.notes)
    assert failed.to_json()["demand"]["ska"]["unavailable"] == "squeue: timed out after 10s"


def test_plan_json_shows_the_reading_and_its_age() -> None:
    shown = run(euclid(), [], {"ska": reading(16, running=8)}).to_json()["demand"]["ska"]
    assert shown["waiting_processors"] == 16 and shown["running_processors"] == 8
    assert shown["age_seconds"] == 30.0 and "unavailable" not in shown


# -- properties -------------------------------------------------------------------------------
def _readings(cfg: Config, draw: st.DrawFn, *, usable: bool) -> dict[str, DemandReading]:
    out = {}
    for name in cfg.communities:
        if draw(st.booleans()):
            out[name] = DemandReading(
                community=name, source="command", taken_at=NOW - draw(st.floats(0, 200)),
                waiting=draw(st.integers(0, 20)), headroom=draw(st.sampled_from([0, 0.5])),
                headroom_processors=draw(st.integers(0, 2)),
                join_seconds=draw(st.sampled_from([0.0, 300.0, 5000.0])),
                unavailable="" if usable else draw(st.sampled_from(["timed out", "bad JSON"])))
    return out


def _plan(cfg: Config, fleet: list[CloudMachine], backoff: dict[str, float],
          demand: dict[str, DemandReading]) -> Plan:
    space = cfg.spaces["s"]
    obs = Observation(machines=fleet, records={m.name: record(m) for m in fleet},
                      backoff=backoff, flavors=(Flavor("one", 1, price_per_hour=0.5),),
                      policy=space_policy(cfg, space, NOW), demand=demand)
    return plan(space, obs, NOW, random_names("s", random.Random(0)))


def _young(fleet: list[CloudMachine], r: DemandReading) -> int:
    return sum(m.processors for m in fleet if m.machinetype == r.community and
               (m.state is not MachineState.RUNNING or m.started_at is None or
                r.taken_at - m.started_at < r.join_seconds))


@SETTINGS
@given(scenarios(), st.data())
def test_never_more_than_the_waiting_work_beyond_what_is_on_its_way(
        scenario: tuple[Config, list[CloudMachine], dict[str, float]], data: st.DataObject) -> None:
    cfg, fleet, backoff = scenario
    demand = _readings(cfg, data.draw, usable=True)
    p = _plan(cfg, fleet, backoff, demand)
    made = created(p)
    for name, r in demand.items():  # one machinetype per community, 1-processor flavors
        assert made.get(name, 0) <= max(0, r.ceiling - _young(fleet, r))
        if r.waiting == 0:
            assert name not in made


@SETTINGS
@given(scenarios(), st.data())
def test_a_failing_source_plans_exactly_as_without_one(
        scenario: tuple[Config, list[CloudMachine], dict[str, float]], data: st.DataObject) -> None:
    cfg, fleet, backoff = scenario
    demand = _readings(cfg, data.draw, usable=False)
    stale = {k: replace(r, unavailable="", taken_at=NOW - 1000, max_age_seconds=60)
             for k, r in demand.items()}
    today = _plan(cfg, fleet, backoff, {})
    assert _plan(cfg, fleet, backoff, demand).actions == today.actions
    assert _plan(cfg, fleet, backoff, stale).actions == today.actions
