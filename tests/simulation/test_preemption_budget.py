"""The budget properties with spot pre-emption: backfill runs on spot machines that the
`local` cloud pre-empts (`preemption_probability`, drawn), so machines end early, at random,
and are replaced. The hard ceiling must hold all the same (spent and committed money never
above the budget), pre-emptions must really happen, and they never put backfill in backoff
(a pre-emption is not an abort)."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from hypothesis import example, given
from hypothesis import strategies as st

import tests.simulation.test_budget_over_time as base
from vcyclectl.clouds.local.options import LocalOptions
from vcyclectl.policy.simulate import SimReport, Simulation

RATES = st.sampled_from([0.2, 0.5, 0.9])


class _Counting(Simulation):
    """The simulation, counting machines whose life ended in a pre-emption."""

    preempted = 0

    def _finish(self, sim, m, now):  # type: ignore[no-untyped-def]
        if m.life.preempted and now >= m.life.stopped_at:
            self.preempted += 1
        super()._finish(sim, m, now)


@lru_cache(maxsize=32)
def simulated(seed: int, amount: float, rate: float) -> tuple[SimReport, int, dict[str, float]]:
    cfg, demand, budget = base.budgeted_space(seed, amount, "drain")
    space = cfg.spaces["s"]
    assert isinstance(space.cloud_options, LocalOptions)
    options = replace(space.cloud_options, preemption_probability=rate, flavors=tuple(
        replace(f, spot=f.name == "spot") for f in space.cloud_options.flavors))
    cfg = replace(cfg, spaces={"s": replace(space, cloud_options=options)})
    sim = _Counting(cfg, demand, budget.start_at, budget.end_at, step_seconds=base.STEP,
                    seed=seed)
    report = sim.run()
    return report, sim.preempted, dict(sim.spaces[0].backoff)


def cases(test):  # type: ignore[no-untyped-def]
    test = example(seed=206, amount=798.65, rate=0.9)(test)
    return base.SIM_SETTINGS(given(seed=base.SEEDS, amount=base.AMOUNTS, rate=RATES)(test))


@cases
def test_preemption_never_takes_spend_over_the_budget(seed: int, amount: float,
                                                      rate: float) -> None:
    report, preempted, _ = simulated(seed, amount, rate)
    assert preempted > 0  # the property is about something that happened
    assert max(row["budget:b:spent"] for row in report.rows) <= amount + 1e-6
    assert max(row["budget:b:committed"] for row in report.rows) <= amount + 1e-6
    assert report.budgets["b"]["final_spent"] <= amount + 1e-6


@cases
def test_preemption_never_puts_backfill_in_backoff(seed: int, amount: float,
                                                   rate: float) -> None:
    """Backfill always has work: only a pre-emption ends it early, which is no abort."""
    _, preempted, backoff = simulated(seed, amount, rate)
    assert preempted > 0 and "b" not in backoff
