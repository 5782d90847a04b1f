"""Skipping quiet passes changes nothing: each case is simulated twice, skipping passes
known to do nothing (the default) and planning every pass (`skip_quiet=False`, the
reference), and the CSV and the summary must be byte-identical.

The cases cover what the skip reasons about: the IRIS case (campaign, backfill making room,
budget pacing, the backfill-wait what-ifs), with demand signals, at a 30-minute step; a
budget that runs out (pacing then lets nothing in) with spot pre-emption; long jobs on a
space without a policy, with heartbeats checked; and two spaces under a campaign counted
in processors across them. The quiet cases must really skip, or the test proves nothing.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import tests.simulation.test_budget_over_time as budgeted
from vcyclectl import config
from vcyclectl.clouds.local.options import LocalFlavor, LocalOptions
from vcyclectl.config import Campaign, Community, Config, Machinetype, Space
from vcyclectl.policy.simreport import SimReport
from vcyclectl.policy.simulate import Demand, Simulation, load_demand

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DAY = 86400.0


def outputs_of(simulation: Simulation, report: SimReport, path: Path) -> tuple[bytes, str]:
    """What a run gives its user, to compare byte for byte: the CSV (written to `path`) and
    the summary with the no-work figures, without the CPU it took."""
    report.write_csv(path)
    summary = dict(report.summary(), no_work_spend=simulation.no_work_spend,
                   no_work_machines=simulation.no_work_machines)
    for volatile in ("cpu_seconds", "months_per_cpu_second"):
        summary.pop(volatile)
    return path.read_bytes(), json.dumps(summary, sort_keys=True)


def both_ways(tmp_path: Path, cfg: Config, demand: Demand, start: float, end: float,
              **options: object) -> tuple[int, int]:
    """Run the case skipping and planning every pass; assert identical outputs; return
    (passes, planned) of the skipping run."""
    outputs = []
    counts = (0, 0)
    for skip in (True, False):
        simulation = Simulation(cfg, demand, start, end, skip_quiet=skip,
                                **options)  # type: ignore[arg-type]
        report = simulation.run()
        outputs.append(outputs_of(simulation, report, tmp_path / f"skip-{skip}.csv"))
        if skip:
            counts = (report.passes, report.planned)
        else:
            assert report.planned == report.passes
    assert outputs[0][0] == outputs[1][0], "the CSV differs when quiet passes are skipped"
    assert outputs[0][1] == outputs[1][1], "the summary differs when quiet passes are skipped"
    return counts


@pytest.mark.parametrize("signals,step", [(False, 600.0), (True, 1800.0)])
def test_iris(tmp_path: Path, signals: bool, step: float) -> None:
    cfg = config.load(EXAMPLES / "iris.yaml")
    budget = cfg.budgets["commercial"]
    demand = load_demand(EXAMPLES / "iris-demand.yaml", budget.start_at, budget.end_at)
    both_ways(tmp_path, cfg, demand, budget.start_at, budget.start_at + 2 * DAY,
              step_seconds=step, check_latency=True, signals=signals, tail=False)


def test_iris_after_its_budget_ends(tmp_path: Path) -> None:
    """The tail: past the budget's end nothing is created and the fleet runs down."""
    cfg = config.load(EXAMPLES / "iris.yaml")
    budget = cfg.budgets["commercial"]
    demand = load_demand(EXAMPLES / "iris-demand.yaml", budget.start_at, budget.end_at)
    cfg = replace(cfg, budgets={"commercial": replace(budget, start="2026-12-01",
                                                      end="2026-12-01")})
    passes, planned = both_ways(tmp_path, cfg, demand, budget.start_at,
                                budget.start_at + 3 * DAY, step_seconds=1800.0)
    assert planned < passes


@pytest.mark.parametrize("seed,amount,preemption", [(206, 300.0, 0.0), (11, 250.0, 0.5)])
def test_a_budget_that_runs_out(tmp_path: Path, seed: int, amount: float,
                                preemption: float) -> None:
    cfg, demand, budget = budgeted.budgeted_space(seed, amount, "drain")
    space = cfg.spaces["s"]
    assert isinstance(space.cloud_options, LocalOptions)
    options = replace(space.cloud_options, preemption_probability=preemption,
                      flavors=tuple(replace(f, spot=f.name == "spot")
                                    for f in space.cloud_options.flavors))
    cfg = replace(cfg, spaces={"s": replace(space, cloud_options=options)})
    # Pacing keeps a budget open to its end (it spends what is left), so few passes here
    # are quiet: the case checks that the few that are skipped change nothing.
    both_ways(tmp_path, cfg, demand, budget.start_at, budget.end_at, step_seconds=budgeted.STEP,
              seed=seed, check_latency=True)


def _long_jobs(name: str, limit: int, seed: int) -> Space:
    options = LocalOptions(processors=1000, boot_seconds=300, job_seconds=2 * DAY,
                           no_work_probability=0.2, seed=seed,
                           flavors=(LocalFlavor("m4", 4), LocalFlavor("m8", 8)))
    return Space(name=name, processors_limit=limit, max_starting_processors=16,
                 cloud_options=options, machinetypes={
                     "alpha": Machinetype(name="alpha", target_share=2.0, fizzle_seconds=900.0,
                                          backoff_seconds=7200.0, heartbeat_seconds=900.0,
                                          max_wallclock_seconds=3 * DAY),
                     "beta": Machinetype(name="beta", flavors=("m8",), fizzle_seconds=900.0,
                                         backoff_seconds=3600.0,
                                         max_wallclock_seconds=1.5 * DAY)})


def test_long_jobs_without_a_policy(tmp_path: Path) -> None:
    cfg = Config(state_dir=Path("/x"), spaces={"a.example": _long_jobs("a.example", 64, 3)})
    start = 1_800_000_000.0
    passes, planned = both_ways(tmp_path, cfg, Demand(always=frozenset({"alpha"})), start,
                                start + 6 * DAY, step_seconds=300.0, seed=5)
    assert planned < passes * 0.5


def two_spaces_case() -> tuple[Config, Demand, float]:
    """Two spaces under a campaign counted in processors across both, which starts and ends
    inside the run: (config, demand, start)."""
    spaces = {n: _long_jobs(n, 48, i) for i, n in enumerate(["a.example", "b.example"])}
    start = 1_800_000_000.0
    cfg = Config(state_dir=Path("/x"), spaces=spaces, communities={
        "alpha": Community("alpha", ("alpha",), priority=2),
        "beta": Community("beta", ("beta",), backfill=True)},
        campaigns=(Campaign(community="alpha", start="2027-01-16", end="2027-01-18",
                            processors=40),))
    demand = Demand(windows={"alpha": ((start + DAY, start + 4 * DAY),)},
                    always=frozenset({"beta"}))
    return cfg, demand, start


def test_two_spaces_under_a_campaign_in_processors(tmp_path: Path) -> None:
    cfg, demand, start = two_spaces_case()
    passes, planned = both_ways(tmp_path, cfg, demand, start, start + 6 * DAY,
                                step_seconds=600.0, seed=9, check_latency=True)
    assert planned < passes
