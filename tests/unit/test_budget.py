"""Spend accounting: cost by the second, the ledger folded incrementally from finished.jsonl
under the space lock, per-space slices of a budget, and what `vcyclectl budget` reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vcyclectl.policy.budget import (LEDGER_FILE, Ledger, budget_rows, fold, gather_policy,
                              machine_cost, save, update_ledger)
from vcyclectl.config import Budget, Community, Config, Machinetype, Space, parse_when
from vcyclectl.core.model import MachineState
from vcyclectl.core.provisioning import allotment, paced_rate
from vcyclectl.core.records import MachineRecord
from vcyclectl.state.store import StateDir

START = parse_when("2026-12-01")
END = parse_when("2027-03-31", end=True)


def config(tmp_path: Path, **budget_kw: Any) -> Config:
    spaces = {"a": Space(name="a", processors_limit=300,
                         machinetypes={"lhcb": Machinetype(name="lhcb"),
                                       "ska": Machinetype(name="ska")}),
              "b": Space(name="b", processors_limit=100,
                         machinetypes={"lhcb": Machinetype(name="lhcb")})}
    budget = Budget(amount=50_000.0, start="2026-12-01", end="2027-03-31", spaces=("a", "b"),
                    name="iris", **budget_kw)
    return Config(state_dir=tmp_path, spaces=spaces, budgets={"iris": budget},
                  communities={"lhcb": Community("lhcb", ("lhcb",), backfill=True),
                               "ska": Community("ska", ("ska",), priority=3)})


def finished(name: str, created: float, seconds: float, price: float | None,
             machinetype: str = "lhcb", spot: bool = False) -> dict[str, Any]:
    return {"name": name, "machinetype": machinetype, "processors": 8, "created_at": created,
            "started_at": created + 60, "stopped_at": created + seconds - 10,
            "finished_at": created + seconds, "price_per_hour": price, "spot": spot}


def test_cost_is_by_the_second() -> None:
    assert machine_cost(0.36, 0.0, 1.0) == pytest.approx(0.0001)
    assert machine_cost(0.36, 0.0, 3600.0) == pytest.approx(0.36)
    assert machine_cost(None, 0.0, 3600.0) == 0.0
    assert machine_cost(1.0, 10.0, 5.0) == 0.0


def test_end_date_includes_the_whole_day() -> None:
    assert END - START == 121 * 86400
    assert parse_when("2027-03-31T12:00:00Z", end=True) == parse_when("2027-03-31T12:00:00Z")


def test_paced_rate_lands_on_the_budget() -> None:
    assert paced_rate(1000.0, 400.0, 0.0, 3600.0 * 100) == pytest.approx(6.0)
    assert paced_rate(1000.0, 1200.0, 0.0, 3600.0) == 0.0
    assert paced_rate(1000.0, 0.0, 10.0, 10.0) == 0.0


def test_budget_slices_by_processors_limit_or_by_shares(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    assert allotment(cfg, cfg.budgets["iris"], "a") == pytest.approx(37_500.0)
    assert allotment(cfg, cfg.budgets["iris"], "b") == pytest.approx(12_500.0)
    cfg = config(tmp_path, space_shares={"a": 1.0, "b": 1.0})
    assert allotment(cfg, cfg.budgets["iris"], "b") == pytest.approx(25_000.0)


def test_ledger_folds_only_new_lines_and_counts_the_window(tmp_path: Path) -> None:
    store = StateDir(tmp_path).space("a")
    store.ensure()
    store.add_finished([finished("m1", START + 3600, 7200, 0.5),
                        finished("m0", START - 7200, 3600, 0.5),  # before the budget
                        finished("m2", START + 7200, 3600, None)])  # price unknown
    ledger = update_ledger(store)
    assert ledger.spent(START, END) == pytest.approx(1.0)
    assert ledger.spent() == pytest.approx(1.5)
    assert (store.path / LEDGER_FILE).exists()
    offset = ledger.cursor.offset
    store.add_finished([finished("m3", START + 86400, 1800, 2.0, spot=True)])
    again, changed = fold(store)
    assert changed and again.cursor.offset > offset
    assert again.spent(START, END) == pytest.approx(2.0)
    assert again.spent(START, END, machinetypes={"ska"}) == 0.0
    assert sum(s.spot_cost for _, s in again.items(START, END)) == pytest.approx(1.0)
    assert Ledger.from_record(again.to_record()).spent(START, END) == pytest.approx(2.0)
    # the journal emptied in place: what was counted stays counted (issue 20)
    save(store, again)
    store.finished_file.write_text("")
    kept, _ = fold(store)
    assert kept.spent() == pytest.approx(again.spent()) and kept.problems


def test_gather_policy_reads_the_space_slice_and_spend(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    store = StateDir(tmp_path).space("a")
    store.ensure()
    store.add_finished([finished("m1", START + 3600, 3600, 3.0)])
    policy = gather_policy(cfg, cfg.spaces["a"], store, START + 86400)
    assert policy is not None and policy.money is not None
    assert policy.money.allotment == pytest.approx(37_500.0)
    assert policy.money.finished_spend == pytest.approx(3.0)
    assert policy.backfill_machinetypes == frozenset({"lhcb"})
    assert [t.priority for t in policy.tiers] == [3, -1]


def test_budget_rows_report_spend_burn_and_forecast(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    now = START + 10 * 86400
    a = StateDir(tmp_path).space("a")
    a.ensure()
    a.add_finished([finished("m1", START + 3600, 3600, 4.0, machinetype="ska")])
    a.put_records([MachineRecord(name="m2", space="a", machinetype="lhcb",
                                 state=MachineState.RUNNING, processors=8,
                                 created_at=now - 7200, price_per_hour=1.5)])
    rows = budget_rows(cfg, now)
    total = rows[0]
    assert (total["budget"], total["space"], total["community"]) == ("iris", "*", "*")
    assert total["spent"] == pytest.approx(4.0 + 3.0)
    assert total["burn_rate_per_hour"] == pytest.approx(1.5)
    hours_left = (END - now) / 3600
    assert total["forecast_at_end"] == pytest.approx(7.0 + 1.5 * hours_left, abs=0.01)
    assert total["paced_rate_per_hour"] == pytest.approx((50_000 - 7.0) / hours_left, abs=1e-3)
    by = {(r["space"], r["community"]): r for r in rows[1:]}
    assert by[("a", "ska")]["spent"] == pytest.approx(4.0)
    assert by[("a", "lhcb")]["running_processors"] == 8
    assert by[("b", "*")]["spent"] == 0.0 and by[("b", "*")]["amount"] == 12_500.0
