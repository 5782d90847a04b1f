"""The simulator's bookkeeping shortcuts change nothing: each case is simulated by
`Simulation` and by `Plain`, a subclass that does the same work the plain way (the policy
made afresh by `space_policy` at every ask, demand readings made afresh, both backfill-wait
what-ifs asked every time, each row's sums by `machine_cost` over every machine, a machine
with no work's options made afresh by `dataclasses.replace`), and the CSV and the summary
must be byte-identical. The cases cover a campaign in processors across two spaces (the
policy's inputs from other spaces, a campaign starting and ending), the IRIS case with and
without demand signals, and a budget that runs out with spot pre-emption.

The what-ifs are also tested on a hand-made state where priority work does wait on backfill
nobody asked to make room (the simulated cases never wait, so they cannot show it).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import tests.simulation.test_budget_over_time as budgeted
import tests.simulation.test_skip_quiet as quiet
from vcyclectl import config
from vcyclectl.clouds.local.driver import Life
from vcyclectl.clouds.local.options import LocalFlavor, LocalOptions
from vcyclectl.config import Community, Config, Machinetype, Space
from vcyclectl.core.model import CloudMachine, MachineState, Plan
from vcyclectl.core.provisioning import SpacePolicy, paced_rate, space_policy
from vcyclectl.core.records import DrainMark, MachineRecord
from vcyclectl.policy.budget import machine_cost
from vcyclectl.policy.demandsim import model_readings
from vcyclectl.policy.simwait import record_waits
from vcyclectl.policy.simulate import (Demand, Simulation, _Machine, _SpaceSim, listed,
                                       load_demand)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DAY = 86400.0


class Counting(Simulation):
    """`Simulation` as it is, counting the what-if plans it asks for."""

    what_ifs = 0

    def what_if(self, sim: _SpaceSim, now: float, stopped: set[str],
                idle: Any) -> Plan:
        self.what_ifs += 1
        return super().what_if(sim, now, stopped, idle)


class Plain(Counting):
    """The same simulation, each shortcut replaced by the plain work it stands for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._readings = model_readings  # type: ignore[assignment]

    def policy_for(self, sim: _SpaceSim, now: float) -> SpacePolicy | None:
        finished = sim.initial_spend
        if sim.budget is not None:
            finished += sim.ledger.spent(sim.budget.start_at, sim.budget.end_at)
        other: dict[str, int] = {}
        if any(c.processors is not None and c.active(now) for c in self.config.campaigns):
            for o in self.spaces:
                if o is not sim:
                    for m in o.machines.values():
                        key = self.group(o.space.name, m.machinetype)
                        other[key] = other.get(key, 0) + m.processors
        sim.policy = space_policy(self.config, sim.space, now, other_usage=other,
                                  finished_spend=finished)
        return sim.policy

    def no_work_options(self, sim: _SpaceSim, machinetype: str) -> LocalOptions:
        return replace(self.options_for(sim, machinetype), no_work_probability=1.0)

    def measure_wait(self, sim: _SpaceSim, now: float) -> None:
        assert sim.policy is not None
        backfill = sim.policy.backfill_machinetypes
        sim.wait_planned = False
        if not backfill:
            return
        waiting: set[str] = set()
        proven = {mt for mt, machinetype in sim.space.machinetypes.items()
                  if mt not in backfill and any(
                      m.machinetype == mt and m.life.started_at <= now < m.life.stopped_at
                      and not m.life.failed
                      and now - m.life.started_at >= machinetype.fizzle_seconds
                      for m in sim.machines.values())}
        leaving = {n for n, m in sim.machines.items() if m.machinetype in backfill and
                   n in sim.marks} if proven else set()
        everything = {n for n, m in sim.machines.items() if m.machinetype in backfill} \
            if proven else set()
        if proven and everything and everything != leaving:
            sim.wait_planned = True
            unproven = [mt for mt in sim.space.machinetypes
                        if mt not in backfill and mt not in proven]
            covered = self.what_if(sim, now, leaving, unproven).creates
            ideal = self.what_if(sim, now, everything, unproven).creates
            for mt in proven:
                if sum(a.processors for a in ideal if a.machinetype == mt) > \
                        sum(a.processors for a in covered if a.machinetype == mt):
                    waiting.add(self.group(sim.space.name, mt))
        record_waits(self, sim.space, waiting, now)

    def row(self, now: float) -> dict[str, Any]:
        from vcyclectl.core.times import iso

        row: dict[str, Any] = {"time": now, "date": iso(now)}
        processors, draining = self.count_processors()
        for c in self.communities:
            row[f"processors:{c}"] = processors[c]
        row["processors_draining"] = draining
        for c in self.communities:
            row[f"spend:{c}"] = self.spend_by_group[c]
        for budget in self.config.budgets.values():
            spent = reserved = rate = 0.0
            for sim in self.spaces:
                if sim.space.name not in budget.spaces:
                    continue
                spent += sim.initial_spend + sim.ledger.spent(budget.start_at, budget.end_at)
                margin = budget.reserve_margin_seconds
                for m in sim.machines.values():
                    if m.created_at < budget.start_at:
                        continue
                    price = m.flavor.price_per_hour or 0.0
                    spent += machine_cost(price, m.created_at, now)
                    reserved += price * max(0.0, m.created_at + (m.wallclock + margin) - now) \
                        / 3600.0
                    rate += price
            elapsed = min(max(now - budget.start_at, 0.0), budget.end_at - budget.start_at)
            row[f"budget:{budget.name}:spent"] = spent
            row[f"budget:{budget.name}:committed"] = spent + reserved
            row[f"budget:{budget.name}:line"] = budget.amount * elapsed / (
                budget.end_at - budget.start_at)
            row[f"budget:{budget.name}:burn_rate"] = rate
            row[f"budget:{budget.name}:paced_rate"] = (
                paced_rate(budget.amount, spent, now, budget.end_at)
                if budget.start_at <= now < budget.end_at else 0.0)
        return row


def both(tmp_path: Path, cfg: Config, demand: Demand, start: float, end: float,
         **options: Any) -> tuple[Counting, Plain]:
    """Run the case as `Simulation` and as `Plain`; assert identical CSV and summary."""
    runs: list[Any] = []
    outputs = []
    for kind in (Counting, Plain):
        simulation = kind(cfg, demand, start, end, **options)
        outputs.append(quiet.outputs_of(simulation, simulation.run(),
                                        tmp_path / f"{kind.__name__}.csv"))
        runs.append(simulation)
    assert outputs[0][0] == outputs[1][0], "the CSV differs from the plain simulation's"
    assert outputs[0][1] == outputs[1][1], "the summary differs from the plain simulation's"
    return runs[0], runs[1]


@pytest.mark.parametrize("signals", [False, True])
def test_iris(tmp_path: Path, signals: bool) -> None:
    cfg = config.load(EXAMPLES / "iris.yaml")
    budget = cfg.budgets["commercial"]
    demand = load_demand(EXAMPLES / "iris-demand.yaml", budget.start_at, budget.end_at)
    fast, plain = both(tmp_path, cfg, demand, budget.start_at, budget.start_at + 3 * DAY,
                       check_latency=True, signals=signals, tail=False)
    # The second what-if is left out when the first gives proven work nothing; without
    # signals it is asked at times too (with them, proven work is never offered more).
    assert fast.what_ifs < plain.what_ifs
    if not signals:
        assert fast.what_ifs > plain.what_ifs // 2


def test_two_spaces_under_a_campaign_in_processors(tmp_path: Path) -> None:
    cfg, demand, start = quiet.two_spaces_case()
    both(tmp_path, cfg, demand, start, start + 6 * DAY, step_seconds=600.0, seed=9,
         check_latency=True)


def test_a_budget_that_runs_out_with_preemption(tmp_path: Path) -> None:
    cfg, demand, budget = budgeted.budgeted_space(11, 250.0, "drain")
    space = cfg.spaces["s"]
    assert isinstance(space.cloud_options, LocalOptions)
    options = replace(space.cloud_options, preemption_probability=0.5,
                      flavors=tuple(replace(f, spot=f.name == "spot")
                                    for f in space.cloud_options.flavors))
    cfg = replace(cfg, spaces={"s": replace(space, cloud_options=options)})
    both(tmp_path, cfg, demand, budget.start_at, budget.end_at, step_seconds=budgeted.STEP,
         seed=11, check_latency=True)


@pytest.mark.parametrize("state,stopped,message", [
    (MachineState.RUNNING, None, None), (MachineState.STOPPED, 90.0, "300 No more work")])
def test_a_listed_machine_is_the_constructed_one(state: MachineState, stopped: float | None,
                                                 message: str | None) -> None:
    values: dict[str, Any] = dict(
        id="m", name="m", space="s", machinetype="a", state=state, processors=16,
        created_at=1.0, started_at=2.0, stopped_at=stopped, flavor="f", zone="local",
        spot=True, preempted=False, heartbeat_at=stopped, shutdown_message=message)
    fast, made = listed(**values), CloudMachine(**values)
    assert fast == made and hash(fast) == hash(made) and repr(fast) == repr(made)
    assert list(vars(fast).items()) == list(vars(made).items())  # same fields, same order
    assert fast.raw == {} and fast.raw is not listed(**values).raw


def test_the_policy_is_reused_while_the_same_campaigns_are_on() -> None:
    """Across passes, not only within one: `space_policy` reads the clock only to know
    which campaigns are on."""
    cfg = config.load(EXAMPLES / "iris.yaml")
    campaign = cfg.campaigns[0]
    simulation = Simulation(cfg, Demand(), campaign.start_at - DAY, campaign.end_at)
    sim = simulation.spaces[0]
    before = simulation.policy_for(sim, campaign.start_at - 7200)
    assert simulation.policy_for(sim, campaign.start_at - 600) is before
    assert before == space_policy(cfg, sim.space, campaign.start_at - 600)
    on = simulation.policy_for(sim, campaign.start_at)
    assert on != before and on == space_policy(cfg, sim.space, campaign.start_at)


# -- the what-ifs on a state where priority work waits on backfill -----------------------
START = 1_800_000_000.0
STEP = 600.0


def _waiting_case(p_limit: int | None = None) -> tuple[Counting, _SpaceSim]:
    """A 32-processor space full: one proven priority machine (`p`) and three backfill
    machines (`b`) that nobody asked to make room (state made by hand, not by a pass)."""
    options = LocalOptions(processors=1000, boot_seconds=60, job_seconds=DAY,
                           no_work_probability=0.0, seed=1, flavors=(LocalFlavor("m8", 8),))
    space = Space(name="s", processors_limit=32, cloud_options=options, machinetypes={
        "p": Machinetype(name="p", fizzle_seconds=600.0, processors_limit=p_limit),
        "b": Machinetype(name="b", fizzle_seconds=600.0)})
    cfg = Config(state_dir=Path("/x"), spaces={"s": space}, communities={
        "p": Community("p", ("p",), priority=2),
        "b": Community("b", ("b",), backfill=True)})
    simulation = Counting(cfg, Demand(always=frozenset({"p", "b"})), START, START + DAY,
                          step_seconds=STEP, check_latency=True)
    sim = simulation.spaces[0]
    flavor = sim.flavors[0]
    for name, mt in [("p1", "p"), ("b1", "b"), ("b2", "b"), ("b3", "b")]:
        created = START - 7200
        sim.machines[name] = _Machine(name, mt, 8, flavor, created,
                                      Life(created + 60, created + DAY, False, None), group=mt)
        sim.records[name] = MachineRecord(
            name=name, space="s", machinetype=mt, state=MachineState.RUNNING, processors=8,
            created_at=created, started_at=created + 60, flavor="m8", cloud_id=name)
    sim.policy = simulation.policy_for(sim, START)
    return simulation, sim


def test_priority_waiting_on_backfill_is_found_and_ends_when_backfill_drains() -> None:
    simulation, sim = _waiting_case()
    simulation.measure_wait(sim, START)
    assert sim.wait_planned and simulation.what_ifs == 2  # the first gave p something
    assert simulation.max_wait == {"p": STEP, "b": 0.0}
    simulation.measure_wait(sim, START + STEP)
    assert simulation.max_wait["p"] == 2 * STEP  # still waiting since START
    for name in ("b1", "b2", "b3"):
        sim.marks[name] = DrainMark(name, START + STEP, "room for p", "policy")
    simulation.measure_wait(sim, START + 2 * STEP)
    assert not sim.wait_planned and simulation.what_ifs == 4  # all backfill leaving
    assert simulation.waiting_since == {} and simulation.max_wait["p"] == 2 * STEP


def test_no_second_what_if_when_the_first_gives_priority_nothing() -> None:
    simulation, sim = _waiting_case(p_limit=8)  # p may have no more than it has
    simulation.measure_wait(sim, START)
    assert sim.wait_planned and simulation.what_ifs == 1
    assert simulation.max_wait == {"p": 0.0, "b": 0.0}
