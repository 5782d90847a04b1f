"""`vcyclectl simulate`: the real planner over simulated time, on each space's model
(`cloudmodel`: the `local` cloud's rules; EC2 and GCE spaces from their configuration).

Each step is one reconcile pass per space, done the way `reconcile.Pass` does it: the
policy is computed by the same pure `policy.space_policy`, the plan by the same
`planner.plan`, deletions are applied and creations re-planned on the capacity they freed,
and ended machines are folded into the same `budget.Ledger`. Only the cloud and the clock
are simulated: machines live the lives `clouds.local.life_of` gives them (boot, then a job,
or "300 No more work" soon after boot when their community has no work at that moment, as
a demand profile says), and time advances by `step_seconds` per pass, so months run in
seconds of CPU.

The report is one row per step (processors per community, spend and the budget line per
budget, spend rate allowed by pacing) written as CSV, and a PNG plot (matplotlib, imported
only when plotting). With `check_latency`, each pass also asks the planner what priority
communities that have shown work would get if every backfill machine were gone; while that is
more than they have, they are waiting for backfill, and the longest wait is reported
(`simwait`).

Passes known to do nothing are skipped (`simquiet`, `core.planner.quiet`): same rows, same
summary, as `skip_quiet=False`, which plans every pass, shows.

It is one module of about 540 lines because the loop, its what-ifs and its bookkeeping all
work on the simulated spaces' state; demand profiles (`demand`), the model's demand readings
(`demandsim`), the backfill-wait what-ifs (`simwait`) and the report and its plot
(`simreport`) are apart.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from vcyclectl.core import rules
from vcyclectl.policy.budget import Ledger, machine_cost
from vcyclectl.clouds.local.driver import Life, life_of
from vcyclectl.clouds.local.options import LocalOptions
from vcyclectl.config import Budget, Config, Space
from vcyclectl.core.model import ActionKind, CloudMachine, Flavor, MachineState, Plan
from vcyclectl.core.names import random_names
from vcyclectl.core.planner import POLICY_DRAIN, Observation, plan
from vcyclectl.core.planner.quiet import quiet_until
from vcyclectl.core.provisioning import (SpacePolicy, budget_of, community_of, paced_rate,
                              space_policy)
from vcyclectl.core.records import DrainMark, Drains, MachineRecord
from vcyclectl.policy.cloudmodel import space_model, unmodelled_spaces
from vcyclectl.policy.demand import Demand, bursts, demand_from_campaigns, load_demand
from vcyclectl.policy.demandsim import CachedReadings
from vcyclectl.policy.simquiet import sim_deadlines, spans_spaces
from vcyclectl.policy.simreport import SimReport, plot
from vcyclectl.policy.simwait import measure_wait

DAY = 86400.0
__all__ = ["Demand", "SimReport", "Simulation", "bursts", "demand_from_campaigns",
           "load_demand", "plot", "simulate_to"]


@dataclass
class _Machine:
    name: str
    machinetype: str
    processors: int
    flavor: Flavor
    created_at: float
    life: Life
    view: CloudMachine | None = None
    view_until: float = -math.inf
    #: Its community, and what it adds to that community's spend per step (`accrue`).
    group: str = ""
    accrual: float = 0.0
    #: Its machinetype's `max_wallclock_seconds` (0 if unconfigured): what it reserves.
    wallclock: float = 0.0


@dataclass
class _SpaceSim:
    space: Space
    options: LocalOptions
    flavors: tuple[Flavor, ...]
    names: Any
    machines: dict[str, _Machine] = field(default_factory=dict)
    records: dict[str, MachineRecord] = field(default_factory=dict)
    backoff: dict[str, float] = field(default_factory=dict)
    marks: dict[str, DrainMark] = field(default_factory=dict)
    ledger: Ledger = field(default_factory=Ledger)
    initial_spend: float = 0.0
    policy: SpacePolicy | None = None
    per_machinetype: dict[str, LocalOptions] = field(default_factory=dict)
    #: Passes before this instant are known to do nothing (`simquiet`): skipped.
    quiet_until: float = -math.inf
    #: Whether the last `measure_wait` ran its what-ifs (then a skipped pass runs it too).
    wait_planned: bool = False
    #: The last policy made and what it was made from (`policy_for`).
    policy_key: tuple[Any, ...] | None = None
    #: The budget the space is in (`budget_of`), if any.
    budget: Budget | None = None
    #: Per machinetype, its options for a machine whose community has no work now.
    no_work_options: dict[str, LocalOptions] = field(default_factory=dict)
    #: The drain marks as the planner reads them: one view of `marks`, always current.
    drains: Drains = field(init=False)

    def __post_init__(self) -> None:
        self.drains = Drains(machines=self.marks)


def as_stopped(view: CloudMachine, now: float) -> CloudMachine:
    """`view` as if it had just ended its work at `now`: equal to `dataclasses.replace(view,
    state=STOPPED, stopped_at=now, shutdown_message="200 ...")`, made by copying its fields
    (a tenth of replace's cost; the what-ifs make one per backfill machine per pass, and
    `CloudMachine` has no `__post_init__` to run)."""
    copy = object.__new__(CloudMachine)
    fields = copy.__dict__
    fields.update(view.__dict__)
    fields["state"] = MachineState.STOPPED
    fields["stopped_at"] = now
    fields["shutdown_message"] = "200 Intended work completed ok"
    return copy


#: `CloudMachine`'s fields in their order, at their defaults (None where it has none).
_LISTED: dict[str, Any] = {f.name: None if f.default is MISSING else f.default
                           for f in fields(CloudMachine)}


def listed(**values: Any) -> CloudMachine:
    """`CloudMachine(**values)`, every field given but the defaulted ones, made by filling
    its fields in their order (under half the constructor's cost, which sets each of its 20
    frozen fields through `object.__setattr__`; `view` makes one per machine per change of
    state). `CloudMachine` has no `__post_init__`; `raw`, its one `default_factory`, gets a
    fresh dict."""
    machine = object.__new__(CloudMachine)
    state = machine.__dict__
    state.update(_LISTED)
    state["raw"] = {}
    state.update(values)
    return machine


def check_modelled(config: Config, what: str) -> list[str]:
    """Refuse (a usage error, exit 2) when no space can be modelled, rather than print an
    empty plan; otherwise the spaces left out, for a warning."""
    from vcyclectl.errors import UsageError

    left_out = unmodelled_spaces(config)
    if left_out and len(left_out) == len(config.spaces):
        raise UsageError(f"{what} models local, EC2 and GCE spaces (a machine's life and "
                         f"price come from their configuration); this config has none: "
                         f"{', '.join(left_out)}. Nothing was planned")
    for space in config.spaces.values():
        space_model(config, space)  # a price it cannot know is refused here, before work
    return left_out


class Simulation:
    """Passes over every `local` space of `config` from `start` to `end`, one per step."""

    def __init__(self, config: Config, demand: Demand, start: float, end: float, *,
                 step_seconds: float = 600.0, seed: int = 0, check_latency: bool = False,
                 initial_spend: Mapping[str, float] | None = None, tail: bool = True,
                 signals: bool = False, skip_quiet: bool = True) -> None:
        self.config = config
        #: Skip passes known to do nothing (`simquiet`); False plans every pass (the
        #: reference the skipping is tested against: same CSV, same summary).
        self.skip_quiet = skip_quiet
        self._spans_spaces = spans_spaces(config)
        #: Hand the planner demand readings from `demand`'s queue model (docs/demand.md).
        self.signals = signals
        self._readings = CachedReadings()
        #: What machines that ended "300 no work" cost, per community (and how many).
        self.no_work_spend: dict[str, float] = {}
        self.no_work_machines: dict[str, int] = {}
        self.demand = demand
        self.start = start
        self.end = end
        self.step = step_seconds
        self.check_latency = check_latency
        self.tail = tail
        rng = random.Random(seed)
        self.spaces: list[_SpaceSim] = []
        for space in config.spaces.values():
            model = space_model(config, space)
            if model is None:
                continue  # no model of its machines' lives and prices (policy.cloudmodel)
            self.spaces.append(_SpaceSim(
                space=space, options=model.options, flavors=model.flavors,
                per_machinetype=model.per_machinetype,
                names=random_names(space.slug, random.Random(rng.random())),
                initial_spend=(initial_spend or {}).get(space.name, 0.0),
                budget=budget_of(config, space.name)))
        self._hypo_count = 0
        self._groups: dict[tuple[str, str], str] = {}
        self.communities = sorted({self.group(s.space.name, mt) for s in self.spaces
                                   for mt in s.space.machinetypes})
        self.spend_by_group: dict[str, float] = {c: 0.0 for c in self.communities}
        self.waiting_since: dict[tuple[str, str], float] = {}
        self.max_wait: dict[str, float] = {}
        self.max_drain = 0.0
        #: Passes the planner was run for (the rest were skipped as known to do nothing).
        self.planned = 0
        #: Processors per community and draining, as `row` last counted them; None once a
        #: pass acts (a pass without actions changes neither machines nor drain marks).
        self._counted: tuple[dict[str, int], int] | None = None
        #: The report's column names, made by the first `row`.
        self._columns: tuple[Any, ...] | None = None

    def group(self, space: str, machinetype: str) -> str:
        """The community a machinetype counts for (itself when it is in none)."""
        key = (space, machinetype)
        if key not in self._groups:
            community = community_of(self.config, space, machinetype)
            self._groups[key] = community.name if community is not None else machinetype
        return self._groups[key]

    def hypo_names(self, machinetype: str) -> str:
        """Names for what-if plans, which create nothing: cheap, and they leave the real
        name source's sequence (and so the simulation) unchanged."""
        self._hypo_count += 1
        return f"what-if-{machinetype}-{self._hypo_count}"

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> SimReport:
        cpu = time.process_time()
        rows: list[dict[str, Any]] = []
        now = self.start
        passes = 0
        budget_spaces = {s for b in self.config.budgets.values() for s in b.spaces}
        hard_stop = self.end + max((mt.max_wallclock_seconds for s in self.spaces
                                    for mt in s.space.machinetypes.values()), default=0) + DAY
        while now < self.end or (self.tail and now < hard_stop and any(
                sim.machines for sim in self.spaces if sim.space.name in budget_spaces)):
            for sim in self.spaces:
                if now < sim.quiet_until:
                    self.skipped_pass(sim, now)
                else:
                    self.one_pass(sim, now)
                passes += 1
            rows.append(self.row(now))
            self.accrue(self.step)
            now += self.step
        for sim in self.spaces:  # what is still running is paid until the end, too
            for m in sim.machines.values():
                self._finish(sim, m, now)
            sim.machines.clear()
        budgets = self.budget_summary(rows, now)
        columns = list(rows[0]) if rows else ["time"]
        return SimReport(columns=columns, rows=rows, communities=self.communities,
                         budgets=budgets, max_wait_seconds=dict(self.max_wait),
                         max_drain_seconds=self.max_drain,
                         simulated_seconds=now - self.start,
                         cpu_seconds=time.process_time() - cpu, passes=passes,
                         planned=self.planned)

    def one_pass(self, sim: _SpaceSim, now: float) -> None:
        """What `reconcile.Pass` does: plan, bookkeeping, deletes, re-plan, creates."""
        self.planned += 1
        obs = self.observe(sim, now)
        p = plan(sim.space, obs, now, sim.names)
        if p.actions:
            self._counted = None  # machines or drain marks change: `row` counts again
        if self.skip_quiet:
            self.note_quiet(sim, obs, p, now)
        for a in p.actions:
            if a.kind is ActionKind.UPDATE and POLICY_DRAIN in a.changes:
                sim.marks[a.name] = DrainMark(a.name, float(a.changes[POLICY_DRAIN]),
                                              a.reason, "policy")
            elif a.kind is ActionKind.UPDATE and a.name in sim.records:
                sim.records[a.name] = sim.records[a.name].with_changes(**a.changes)
            elif a.kind is ActionKind.FORGET:
                sim.records.pop(a.name, None)
                machine = sim.machines.pop(a.name, None)
                if machine is not None:
                    self._finish(sim, machine, now)
                sim.marks.pop(a.name, None)
        sim.backoff = rules.merged_aborts(sim.backoff, p.aborts)
        creates = p.creates
        if p.deletes:
            for a in p.deletes:
                machine = sim.machines.pop(a.name, None)
                sim.records.pop(a.name, None)
                if machine is not None:
                    self._finish(sim, machine, now)
                sim.marks.pop(a.name, None)
            creates = plan(sim.space, self.observe(sim, now), now, sim.names).creates
        for a in creates:
            assert a.flavor is not None
            group = self.group(sim.space.name, a.machinetype)
            life = life_of(a.name, now, self.options_for(sim, a.machinetype)
                           if self.demand.has_work(group, now)
                           else self.no_work_options(sim, a.machinetype), spot=a.flavor.spot)
            price = a.flavor.price_per_hour
            mt = sim.space.machinetypes.get(a.machinetype)
            sim.machines[a.name] = _Machine(
                a.name, a.machinetype, a.processors, a.flavor, now, life, group=group,
                accrual=price * self.step / 3600.0 if price else 0.0,
                wallclock=mt.max_wallclock_seconds if mt else 0.0)
            sim.records[a.name] = MachineRecord(
                name=a.name, space=sim.space.name, machinetype=a.machinetype,
                state=MachineState.CREATING, processors=a.processors, created_at=now,
                flavor=a.flavor.name, cloud_id=a.name, spot=a.flavor.spot,
                hs06=a.processors * sim.space.machinetypes[a.machinetype].hs06_per_processor,
                price_per_hour=a.flavor.price_per_hour)
        if self.check_latency and sim.policy is not None:
            self.measure_wait(sim, now)

    def note_quiet(self, sim: _SpaceSim, obs: Observation, p: Plan, now: float) -> None:
        """After planning a pass: until when the next ones are known to do nothing (a plan
        with no actions, the planner's bound and the simulator's own, `simquiet`); a plan
        that acts ends the quiet spell of every space its machines can steer."""
        if p.actions:
            sim.quiet_until = -math.inf
            if self._spans_spaces:
                for other in self.spaces:
                    other.quiet_until = -math.inf
            return
        fizzle = {n: mt.fizzle_seconds for n, mt in sim.space.machinetypes.items()}
        sim.quiet_until = min(quiet_until(sim.space, obs, now, p, heartbeats_fresh=True),
                              sim_deadlines(self.config, sim.machines.values(), fizzle, now))

    def skipped_pass(self, sim: _SpaceSim, now: float) -> None:
        """A pass known to plan nothing: only the backfill-wait what-ifs, when the last
        pass ran them, are run again (they may find a different wait each step; when they
        did not run, what they found holds until a deadline `simquiet` counts)."""
        if self.check_latency and sim.policy is not None and sim.wait_planned:
            sim.policy = self.policy_for(sim, now)
            self.measure_wait(sim, now)

    def options_for(self, sim: _SpaceSim, machinetype: str) -> LocalOptions:
        return sim.per_machinetype.get(machinetype, sim.options)

    def no_work_options(self, sim: _SpaceSim, machinetype: str) -> LocalOptions:
        """The machinetype's options for a machine whose community has no work now (it
        ends "300 No more work" soon after boot): made once per machinetype."""
        options = sim.no_work_options.get(machinetype)
        if options is None:
            options = replace(self.options_for(sim, machinetype), no_work_probability=1.0)
            sim.no_work_options[machinetype] = options
        return options

    def observe(self, sim: _SpaceSim, now: float, *,
                stopped: frozenset[str] | set[str] | None = None,
                idle: Iterable[str] = ()) -> Observation:
        """What a pass would see; machines named in `stopped` shown as just ended (a
        what-if: their capacity and spend rate free, what they cost still counted), and
        `idle` machinetypes shown in backoff (a what-if: they create nothing)."""
        sim.policy = self.policy_for(sim, now)
        view = self.view
        # `view`'s own cache test, inline: most machines show what they showed last pass.
        machines = [m.view if m.view is not None and now < m.view_until else view(sim, m, now)
                    for m in sim.machines.values()]
        if stopped is not None:
            machines = [as_stopped(m, now) if m.name in stopped else m for m in machines]
        records = sim.records
        return Observation(machines=machines, records=records, drains=sim.drains,
                           backoff=dict(sim.backoff, **{mt: now for mt in idle}) if idle
                           else sim.backoff, flavors=sim.flavors, policy=sim.policy,
                           demand=self._readings(self, sim.space, now) if self.signals else {})

    def policy_for(self, sim: _SpaceSim, now: float) -> SpacePolicy | None:
        budget = sim.budget
        finished = sim.initial_spend
        if budget is not None:
            finished += sim.ledger.spent(budget.start_at, budget.end_at)
        # All `space_policy` reads of `now`: which campaigns are on.
        active = tuple(c.active(now) for c in self.config.campaigns)
        other: dict[str, int] = {}
        if any(on and c.processors is not None
               for on, c in zip(active, self.config.campaigns, strict=True)):
            for o in self.spaces:
                if o is sim:
                    continue
                for m in o.machines.values():
                    key = self.group(o.space.name, m.machinetype)
                    other[key] = other.get(key, 0) + m.processors
        # Pure in these inputs: a pass asks up to four times (plan, re-plan, what-ifs), and
        # passes in a row mostly ask with the same campaigns on and the same usage.
        made_from = (active, finished, tuple(sorted(other.items())))
        last = sim.policy_key
        if made_from == last:
            return sim.policy
        sim.policy_key = made_from
        if last is not None and last[0] == active and last[2] == made_from[2] and \
                sim.policy is not None and sim.policy.money is not None:
            # Only the spend of machines that ended moved: `space_policy` would make the
            # same tiers and the same money but this figure.
            sim.policy = replace(sim.policy, money=replace(sim.policy.money,
                                                           finished_spend=finished))
        else:
            sim.policy = space_policy(self.config, sim.space, now, other_usage=other,
                                      finished_spend=finished)
        return sim.policy

    def view(self, sim: _SpaceSim, m: _Machine, now: float) -> CloudMachine:
        """The machine as the cloud lists it now; cached until its next change of state."""
        if m.view is not None and now < m.view_until:
            return m.view
        life = m.life
        started: float | None = None
        stopped: float | None = None
        message = None
        if now < life.started_at:
            state, until = MachineState.STARTING, life.started_at
        elif life.failed:
            state, stopped, until = MachineState.FAILED, life.stopped_at, math.inf
        elif now < life.stopped_at:
            state, started, until = MachineState.RUNNING, life.started_at, life.stopped_at
        else:
            state, started, stopped = MachineState.STOPPED, life.started_at, life.stopped_at
            message, until = life.message, math.inf
        mt = sim.space.machinetypes.get(m.machinetype)
        beating = mt is not None and mt.heartbeat_checked and state is MachineState.RUNNING
        m.view = listed(
            id=m.name, name=m.name, space=sim.space.name, machinetype=m.machinetype,
            state=state, processors=m.processors, created_at=m.created_at,
            started_at=started, stopped_at=stopped, flavor=m.flavor.name, zone="local",
            spot=m.flavor.spot, preempted=life.preempted and stopped is not None,
            heartbeat_at=now if beating else stopped, shutdown_message=message)
        # a fresh heartbeat every pass
        m.view_until = min(until, now + self.step / 2) if beating else until
        return m.view

    def _finish(self, sim: _SpaceSim, m: _Machine, now: float) -> None:
        mark = sim.marks.get(m.name)
        if mark is not None:
            self.max_drain = max(self.max_drain, now - mark.since)
        if m.life.message is not None and m.life.message.startswith("300"):
            group = self.group(sim.space.name, m.machinetype)
            self.no_work_spend[group] = self.no_work_spend.get(group, 0.0) + machine_cost(
                m.flavor.price_per_hour, m.created_at, now)
            self.no_work_machines[group] = self.no_work_machines.get(group, 0) + 1
        sim.ledger.add({"created_at": m.created_at, "finished_at": now,
                        "price_per_hour": m.flavor.price_per_hour, "spot": m.flavor.spot,
                        "processors": m.processors, "machinetype": m.machinetype})

    def accrue(self, seconds: float) -> None:
        spend = self.spend_by_group
        for sim in self.spaces:
            for m in sim.machines.values():
                if m.flavor.price_per_hour:
                    # the same product as `price * seconds / 3600`, made once per machine
                    spend[m.group] += m.accrual if seconds == self.step else \
                        m.flavor.price_per_hour * seconds / 3600.0

    # -- what a pass is measured by ------------------------------------------------------
    def measure_wait(self, sim: _SpaceSim, now: float) -> None:
        """After a pass: the backfill-wait what-ifs (`simwait`)."""
        measure_wait(self, sim, now)

    def what_if(self, sim: _SpaceSim, now: float, stopped: set[str],
                idle: Sequence[str]) -> Plan:
        """The plan of a pass at `now` if the machines in `stopped` had just ended and the
        `idle` machinetypes were in backoff: it creates nothing (names from `hypo_names`)."""
        return plan(sim.space, self.observe(sim, now, stopped=stopped, idle=idle), now,
                    self.hypo_names)

    def row(self, now: float) -> dict[str, Any]:
        """The report's row for the step at `now` (once per step: its columns' names are
        made once, and machines without a price, which add nothing, are not walked)."""
        from vcyclectl.core.times import iso

        row: dict[str, Any] = {"time": now, "date": iso(now)}
        if self._counted is None:
            self._counted = self.count_processors()
        processors, draining = self._counted
        if self._columns is None:
            self._columns = (
                [(f"processors:{c}", c) for c in self.communities],
                [(f"spend:{c}", c) for c in self.communities],
                [(b, [s for s in self.spaces if s.space.name in b.spaces],
                  *(f"budget:{b.name}:{k}" for k in
                    ("spent", "committed", "line", "burn_rate", "paced_rate")))
                 for b in self.config.budgets.values()])
        by_community, spend_columns, budget_columns = self._columns
        for key, c in by_community:
            row[key] = processors[c]
        row["processors_draining"] = draining
        spend = self.spend_by_group
        for key, c in spend_columns:
            row[key] = spend[c]
        for budget, sims, k_spent, k_committed, k_line, k_burn, k_paced in budget_columns:
            spent = reserved = rate = 0.0
            start_at = budget.start_at
            for sim in sims:
                spent += sim.initial_spend + sim.ledger.spent(start_at, budget.end_at)
                margin = budget.reserve_margin_seconds
                for m in sim.machines.values():
                    price = m.flavor.price_per_hour
                    if not price or m.created_at < start_at:
                        continue  # adds 0.0 to each sum below, which changes none
                    # `machine_cost(price, m.created_at, now)`, inline (every machine, step)
                    ran = now - m.created_at
                    spent += price * (ran if ran > 0.0 else 0.0) / 3600.0
                    left = m.created_at + (m.wallclock + margin) - now
                    reserved += price * (left if left > 0.0 else 0.0) / 3600.0
                    rate += price
            elapsed = min(max(now - start_at, 0.0), budget.end_at - start_at)
            row[k_spent] = spent
            row[k_committed] = spent + reserved
            row[k_line] = budget.amount * elapsed / (budget.end_at - start_at)
            row[k_burn] = rate
            row[k_paced] = (paced_rate(budget.amount, spent, now, budget.end_at)
                            if start_at <= now < budget.end_at else 0.0)
        return row

    def count_processors(self) -> tuple[dict[str, int], int]:
        """Processors per community, and those draining, over every space."""
        processors = {c: 0 for c in self.communities}
        draining = 0
        for sim in self.spaces:
            marks = sim.marks
            for m in sim.machines.values():
                processors[m.group] += m.processors
                if m.name in marks:
                    draining += m.processors
        return processors, draining

    def budget_summary(self, rows: Sequence[Mapping[str, Any]],
                       now: float) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for budget in self.config.budgets.values():
            key = f"budget:{budget.name}:spent"
            at_end = [r[key] for r in rows if r["time"] <= budget.end_at]
            final = sum(sim.initial_spend + sim.ledger.spent(budget.start_at, budget.end_at)
                        for sim in self.spaces if sim.space.name in budget.spaces)
            out[budget.name] = {
                "amount": budget.amount, "spent_at_end_date": at_end[-1] if at_end else 0.0,
                "final_spent": final,
                "max_spent": max((r[key] for r in rows), default=0.0),
                "max_committed": max((r[f"budget:{budget.name}:committed"] for r in rows),
                                     default=0.0)}
        return out


def simulate_to(config: Config, demand: Demand, start: float, end: float, out: Path, *,
                step_seconds: float = 600.0, seed: int = 0, plot_png: bool = True,
                check_latency: bool = True, title: str = "",
                signals: bool = False) -> SimReport:
    """Run and write the report: `simulation.csv`, `simulation.png`, `summary.json`."""
    import json

    simulation = Simulation(config, demand, start, end, step_seconds=step_seconds, seed=seed,
                            check_latency=check_latency, signals=signals)
    report = simulation.run()
    out.mkdir(parents=True, exist_ok=True)
    report.write_csv(out / "simulation.csv")
    summary = dict(report.summary(), demand_signals=signals, no_work_spend={
        k: round(v, 2) for k, v in sorted(simulation.no_work_spend.items())})
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if plot_png:  # last: what was simulated is on disk whatever the plot does
        plot(report, out / "simulation.png", title, config=config)
    return report

