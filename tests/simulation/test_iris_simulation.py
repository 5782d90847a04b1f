"""The IRIS case, simulated with the real planner (examples/iris.yaml, iris-demand.yaml):
SKA, LSST and DUNE at priority with bursty demand, LHCb backfilling and always busy, one
commercial space with £50,000 from 1 December to 31 March at on-demand and spot prices.

Spend lands within 2% below the budget and is never above it (nor is what running machines
may still cost); priority work that has shown itself never waits on backfill that was not
already asked to make room, so it gets its capacity within one grace period (drain) or in
the same pass (delete)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from vcyclectl import config
from vcyclectl.policy.simulate import SimReport, Simulation, load_demand, plot

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
STEP = 900.0
AMOUNT = 50_000.0


@pytest.fixture(scope="module")
def iris() -> config.Config:
    return config.load(EXAMPLES / "iris.yaml")


def simulate(cfg: config.Config, days: float | None = None) -> SimReport:
    budget = cfg.budgets["commercial"]
    end = budget.end_at if days is None else budget.start_at + days * 86400
    demand = load_demand(EXAMPLES / "iris-demand.yaml", budget.start_at, budget.end_at)
    return Simulation(cfg, demand, budget.start_at, end, step_seconds=STEP,
                      check_latency=True).run()


def test_iris_four_months_drain(iris: config.Config, tmp_path: Path) -> None:
    budget = iris.budgets["commercial"]
    assert budget.amount == AMOUNT and budget.currency == "GBP"
    assert iris.communities["lhcb"].make_room == "drain"
    report = simulate(iris)

    money = report.budgets["commercial"]
    assert 0.98 * AMOUNT <= money["spent_at_end_date"] <= AMOUNT, money
    assert 0.98 * AMOUNT <= money["final_spent"] <= AMOUNT, money
    for row in report.rows:  # never above, not even counting what running machines may cost
        assert row["budget:commercial:spent"] <= AMOUNT
        assert row["budget:commercial:committed"] <= AMOUNT + 1e-6

    grace = iris.spaces["commercial.iris.ac.uk"].machinetypes["lhcb"].drain_grace_seconds
    assert report.max_wait_seconds == {"ska": 0.0, "lsst": 0.0, "dune": 0.0, "lhcb": 0.0}
    assert 0 < report.max_drain_seconds <= grace + STEP

    inside = [r for r in report.rows if budget.start_at <= r["time"] < budget.end_at]
    # paid-for capacity never idle: the spend keeps pace, by priority work or by backfill
    paced = [r for r in inside if r["budget:commercial:burn_rate"] >=
             0.9 * r["budget:commercial:paced_rate"]]
    assert len(paced) >= 0.95 * len(inside)
    assert sum(1 for r in inside if r["processors:lhcb"] > 0) >= 0.9 * len(inside)
    for community in ("ska", "lsst", "dune"):
        assert max(r[f"processors:{community}"] for r in inside) >= 160
    # the DUNE campaign (1-14 February, 160 processors) is served
    campaign = iris.campaigns[0]
    during = [r["processors:dune"] for r in inside
              if campaign.start_at + 86400 <= r["time"] < campaign.end_at]
    assert sum(during) / len(during) >= 0.9 * 160

    report.write_csv(tmp_path / "iris.csv")
    header = (tmp_path / "iris.csv").read_text().splitlines()[0]
    assert re.match(r"time,date,processors:\w+", header)
    plot(report, tmp_path / "iris.png")
    assert (tmp_path / "iris.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_iris_delete_serves_priority_in_the_same_pass(iris: config.Config) -> None:
    communities = dict(iris.communities)
    communities["lhcb"] = replace(communities["lhcb"], make_room="delete")
    report = simulate(replace(iris, communities=communities), days=30)
    assert report.max_wait_seconds == {"ska": 0.0, "lsst": 0.0, "dune": 0.0, "lhcb": 0.0}
    assert report.max_drain_seconds == 0.0
    for row in report.rows:
        assert row["budget:commercial:committed"] <= AMOUNT + 1e-6
