"""Demand signals over simulated time: the IRIS case for its first ten days, probing and with
signals from the demand profile's queue model, same seed. Probing pays for machines that
end "300 no work" and ramps up one probe and a fizzle period late; signals pay for none,
serve the work sooner, and keep the budget's pace. Also the queue model itself and
`simulate --compare-signals` end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import Run
from vcyclectl import config
from vcyclectl.policy.demand import Demand, load_demand
from vcyclectl.policy.demandsim import Outcome, run_case

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
DAY = 86400.0


@pytest.fixture(scope="module")
def runs() -> dict[str, Outcome]:
    cfg = config.load(EXAMPLES / "iris.yaml")
    budget = cfg.budgets["commercial"]
    start, end = budget.start_at, budget.start_at + 10 * DAY
    demand = load_demand(EXAMPLES / "iris-demand.yaml", budget.start_at, budget.end_at)
    return {mode: run_case(cfg, demand, start, end, signals=mode == "signals",
                           step_seconds=900.0) for mode in ("probing", "signals")}


def test_probing_pays_for_machines_without_work_and_signals_do_not(
        runs: dict[str, Outcome]) -> None:
    probing, signals = runs["probing"], runs["signals"]
    assert sum(probing.no_work_machines.values()) > 100  # a probe per backoff, per community
    assert sum(probing.no_work_spend.values()) > 50.0
    assert set(probing.no_work_spend) <= {"ska", "lsst", "dune"}  # backfill always has work
    assert sum(signals.no_work_spend.values()) == 0.0
    assert abs(signals.spent - probing.spent) <= 0.02 * probing.spent  # the pace holds


def test_signals_serve_waiting_work_sooner(runs: dict[str, Outcome]) -> None:
    probing, signals = runs["probing"], runs["signals"]
    assert probing.ramp_up_seconds and probing.ramp_up_seconds.keys() == \
        signals.ramp_up_seconds.keys()
    for community, waits in probing.ramp_up_seconds.items():
        faster = signals.ramp_up_seconds[community]
        assert sum(faster) < sum(waits), community
    assert all(v == 0.0 for v in signals.max_wait_seconds.values())


def test_queue_model_and_levels(tmp_path: Path) -> None:
    profile = tmp_path / "demand.yaml"
    profile.write_text("always: [lhcb]\nwindows:\n  ska: [{start: 2027-01-01, end: 2027-01-02}]"
                       "\nlevels: {ska: 160}\n")
    start = config.parse_when("2026-12-01")
    demand = load_demand(profile, start, start + 90 * DAY)
    inside = config.parse_when("2027-01-01T12:00:00Z")
    assert demand.waiting("ska", inside, running=32) == 128
    assert demand.waiting("ska", inside, running=200) == 0
    assert demand.waiting("ska", inside + 2 * DAY, running=0) == 0  # after its end date
    assert demand.waiting("lhcb", inside, running=10**5) > 0  # no level: without bound
    assert Demand().waiting("nobody", inside, 0) == 0
    profile.write_text("levels: {ska: lots}\n")
    from vcyclectl.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        load_demand(profile, start, start + DAY)
    assert caught.value.key == "levels"


def test_simulate_compare_signals_end_to_end(
        vc: Callable[..., Run], tmp_path: Path) -> None:
    result = vc("--config", EXAMPLES / "iris.yaml", "simulate", "--demand",
                EXAMPLES / "iris-demand.yaml", "--from", "2026-12-01", "--to", "2026-12-04",
                "--step", "1800", "--out", tmp_path / "sim", "--compare-signals", "-o", "json")
    assert result.code == 0, result.err
    figures = json.loads(result.out)
    assert figures["signals"]["no_work_spend"] == 0
    assert figures["probing"]["no_work_spend"] > 0
    assert json.loads((tmp_path / "sim" / "demand-comparison.json").read_text()) == figures
