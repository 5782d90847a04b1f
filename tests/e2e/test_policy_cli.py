"""The policy commands end to end on the `local` cloud, through the same `main()` the console
script runs: reconcile with communities and a budget (priced machines, backfill drained to
make room, the drain mark cleared once it is gone), `budget`, `schedule` and `simulate`."""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import Run

VC = Callable[..., Run]
EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"


def policy_config(ska_share: float, make_room: str = "drain") -> str:
    today = datetime.now(timezone.utc).date()
    return f"""\
state_dir: state
defaults:
  min_pass_interval_seconds: 0
  backoff_seconds: 0
  fizzle_seconds: 0
  drain_grace_seconds: 0
spaces:
  cloud.local:
    cloud: local
    processors_limit: 6
    local:
      processors: 100
      boot_seconds: 0
      job_seconds: 3600
      no_work_probability: 0
      flavors: [{{name: od, processors: 1, price_per_hour: 0.5}},
                {{name: spot, processors: 1, price_per_hour: 0.2}}]
    machinetypes:
      ska: {{flavors: [od], target_share: {ska_share}, processors_limit: 2}}
      lhcb: {{flavors: [spot]}}
communities:
  ska: {{machinetypes: [ska], priority: 10}}
  lhcb: {{machinetypes: [lhcb], backfill: true, make_room: {make_room}}}
budgets:
  commercial:
    spaces: [cloud.local]
    amount: 100000
    start: {today - timedelta(days=1)}
    end: {today + timedelta(days=30)}
campaigns:
  - {{community: ska, start: {today + timedelta(days=7)}, end: {today + timedelta(days=9)},
      processors: 2}}
"""


def machines(vc: VC, cfg: Path) -> list[dict[str, object]]:
    return list(json.loads(vc("--config", cfg, "list", "-o", "json").out))


def test_reconcile_drains_backfill_for_priority_then_serves_it(
        vc: VC, write_config: Callable[..., Path], tmp_path: Path) -> None:
    cfg = write_config(policy_config(ska_share=0))  # SKA asks for nothing yet
    assert vc("--config", cfg, "reconcile").code == 0
    fleet = machines(vc, cfg)
    assert [m["machinetype"] for m in fleet] == ["lhcb"] * 6  # backfill fills the space
    records = (tmp_path / "state/spaces/cloud.local/records.jsonl").read_text()
    assert '"price_per_hour":0.2' in records  # price at creation, for the ledger

    cfg = write_config(policy_config(ska_share=1))  # SKA has work now
    plan = json.loads(vc("--config", cfg, "plan", "-o", "json").out)[0]
    drains = [a for a in plan["actions"] if a["reason"].startswith("drain: backfill making room")]
    assert len(drains) == 1  # SKA has not shown work yet: room for one probe
    newest = max(fleet, key=lambda m: str(m["created_at"]))
    assert vc("--config", cfg, "reconcile").code == 0
    marks = list((tmp_path / "state/spaces/cloud.local/drains").glob("machine-*.json"))
    assert len(marks) == 1 and json.loads(marks[0].read_text())["by"] == "policy"
    drained = marks[0].name[len("machine-"):-len(".json")]
    assert drained == drains[0]["name"]
    assert str(newest["created_at"]) >= min(str(m["created_at"]) for m in fleet)

    assert vc("--config", cfg, "reconcile").code == 0  # past its shutdown time: deleted
    after = {m["name"]: m for m in machines(vc, cfg)}
    assert after[drained]["state"] == "deleting"
    assert "ska" in {m["machinetype"] for m in after.values()}  # the room, in the same pass
    assert vc("--config", cfg, "reconcile").code == 0  # gone from the cloud: forgotten
    assert drained not in {m["name"] for m in machines(vc, cfg)}
    assert not (tmp_path / f"state/spaces/cloud.local/drains/machine-{drained}.json").exists()
    events = (tmp_path / "state/spaces/cloud.local/events.jsonl").read_text()
    assert '"event":"drain"' in events


def test_reconcile_deletes_backfill_in_the_same_pass(vc: VC, write_config: Callable[..., Path],
                                                      tmp_path: Path) -> None:
    cfg = write_config(policy_config(ska_share=0, make_room="delete"))
    vc("--config", cfg, "reconcile")
    cfg = write_config(policy_config(ska_share=1, make_room="delete"))
    ledger = tmp_path / "state/spaces/cloud.local/spend.json"
    vc("--config", cfg, "plan")
    assert not ledger.exists()  # `plan` takes no lock, so it never writes the ledger
    run = vc("--config", cfg, "reconcile", "-o", "json")
    result = json.loads(run.out)[0]
    assert result["deleted"] == 1 and result["created"] == 1
    assert sorted(m["machinetype"] for m in machines(vc, cfg)
                  if m["state"] != "deleting") == ["lhcb"] * 5 + ["ska"]
    spend = json.loads(ledger.read_text())  # the deleted machine, folded in under the lock
    assert spend["cursor"]["offset"] > 0 and spend["hours"]


def test_budget_reports_spend_burn_and_forecast(vc: VC, write_config: Callable[..., Path]
                                                ) -> None:
    cfg = write_config(policy_config(ska_share=1))
    vc("--config", cfg, "reconcile")
    rows = json.loads(vc("--config", cfg, "budget", "-o", "json").out)
    total = rows[0]
    assert total["budget"] == "commercial" and total["currency"] == "GBP"
    assert total["burn_rate_per_hour"] == pytest.approx(2 * 0.5 + 4 * 0.2)
    assert total["forecast_at_end"] > total["spent"] >= 0
    assert {r["community"] for r in rows} >= {"ska", "lhcb"}
    table = vc("--config", cfg, "budget")
    assert table.code == 0 and "commercial" in table.out
    tsv = vc("--config", cfg, "budget", "-o", "tsv").out.splitlines()
    assert tsv[0].startswith("budget\tspace\tcommunity\tcurrency\tamount\tspent")


def test_schedule_json_markdown_and_self_contained_html(vc: VC, tmp_path: Path) -> None:
    cfg = EXAMPLES / "iris.yaml"
    state = tmp_path / "state"
    common = ("--config", cfg, "--state-dir", state, "schedule", "--from", "2026-12-01",
              "--step", "3600")
    plan = json.loads(vc(*common, "--format", "json").out)
    assert plan["communities"] == ["dune", "lhcb", "lsst", "ska"]
    assert 17 <= len(plan["weeks"]) <= 19  # 1 December to 31 March
    assert plan["budgets"][0]["planned_spend"] <= 50_000
    dune = plan["campaigns"][0]
    assert dune["community"] == "dune" and dune["planned_processors"] >= 150
    february = [w for w in plan["weeks"] if w["from"] in ("2027-02-01", "2027-02-08")]
    assert all(w["communities"]["dune"]["processors"] > 100 for w in february)
    markdown = vc(*common, "--format", "markdown").out
    assert "| week | from | dune | lhcb | lsst | ska | spend (GBP) |" in markdown
    out = tmp_path / "plan.html"
    assert vc(*common, "--format", "html", "--out", out).code == 0
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<rect" in page
    assert not re.search(r"(https?:)?//[a-z]", page.replace("://", ":")), "external reference"
    assert "<script" not in page and "src=" not in page and "href=" not in page


def test_simulate_writes_csv_png_and_summary(vc: VC, tmp_path: Path) -> None:
    out = tmp_path / "report"
    run = vc("--config", EXAMPLES / "iris.yaml", "--state-dir", tmp_path / "state", "simulate",
             "--from", "2026-12-01", "--to", "2026-12-05", "--demand",
             EXAMPLES / "iris-demand.yaml", "--out", out, "-o", "json")
    assert run.code == 0, run.err
    summary = json.loads(run.out)
    assert summary["simulated_days"] >= 5 and summary["months_per_cpu_second"] > 0
    assert "months per CPU second" in run.err
    with open(out / "simulation.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= 5 * 144 and "budget:commercial:spent" in rows[0]
    assert (out / "simulation.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "summary.json").read_text()) == summary


def test_simulate_without_matplotlib_keeps_its_work(tmp_path: Path) -> None:
    """Issue 20: without the plotting extra, simulate used to end in an internal error after
    the whole simulation; now it writes the CSV and summary and says the plot was skipped."""
    import subprocess
    import sys

    out = tmp_path / "report"
    hide = ("import sys; sys.modules['matplotlib'] = None; "
            "from vcyclectl.cli import main; main(sys.argv[1:])")
    run = subprocess.run([sys.executable, "-c", hide, "--config", str(EXAMPLES / "iris.yaml"),
                          "--state-dir", str(tmp_path / "state"), "simulate", "--from",
                          "2026-12-01", "--to", "2026-12-02", "--step", "3600", "--out",
                          str(out), "-o", "json"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "plot is skipped" in run.stderr and "internal error" not in run.stderr
    assert (out / "simulation.csv").exists() and (out / "summary.json").exists()
    assert not (out / "simulation.png").exists()


def test_simulate_usage_errors(vc: VC, tmp_path: Path) -> None:
    base = ("--config", EXAMPLES / "iris.yaml", "--state-dir", tmp_path / "s", "simulate")
    assert vc(*base, "--from", "soon").code == 2
    assert vc(*base, "--from", "2027-01-02", "--to", "2027-01-01").code == 2
    assert vc("--config", EXAMPLES / "iris.yaml", "schedule", "--format", "pdf").code == 2


def test_iris_example_passes_config_check(vc: VC) -> None:
    run = vc("--config", EXAMPLES / "iris.yaml", "config", "check")
    assert run.code == 0, run.err


def churn_config(tmp_path: Path, journal_max_bytes: int = 64 * 1024 * 1024) -> str:
    """Machines that live 0.2 s at a price that makes every one of them show in the spend."""
    today = datetime.now(timezone.utc).date()
    return f"""\
state_dir: state
journal_max_bytes: {journal_max_bytes}
journal_keep: 2
defaults: {{backoff_seconds: 0, fizzle_seconds: 0, max_wallclock_seconds: 600,
           min_pass_interval_seconds: 0}}
spaces:
  cloud.local:
    cloud: local
    processors_limit: 8
    local:
      boot_seconds: 0
      job_seconds: 0.2
      no_work_probability: 0
      flavors: [{{name: od, processors: 1, price_per_hour: 360}}]
    machinetypes:
      a: {{flavors: [od]}}
budgets:
  b:
    spaces: [cloud.local]
    amount: 1000000
    start: {today - timedelta(days=1)}
    end: {today + timedelta(days=30)}
"""


def spent(vc: VC, cfg: Path) -> float:
    return float(json.loads(vc("--config", cfg, "budget", "-o", "json").out)[0]["spent"])


def churn(vc: VC, cfg: Path, passes: int) -> list[float]:
    import time

    seen = []
    for _ in range(passes):
        assert vc("--config", cfg, "reconcile").code == 0
        seen.append(spent(vc, cfg))
        time.sleep(0.25)
    return seen


@pytest.mark.parametrize("how", ["mv", "copytruncate", "delete"])
def test_a_rotated_or_lost_finished_journal_never_lowers_spend(
        vc: VC, write_config: Callable[..., Path], tmp_path: Path, how: str) -> None:
    """Issue 20: `mv finished.jsonl finished.jsonl.1` (logrotate) and one pass used to
    rebuild the ledger from the short new file and lower recorded spend."""
    import shutil

    cfg = write_config(churn_config(tmp_path))
    before = churn(vc, cfg, 4)[-1]
    journal = tmp_path / "state/spaces/cloud.local/finished.jsonl"
    assert journal.stat().st_size > 0 and before > 0
    if how == "mv":
        journal.rename(journal.with_name("finished.jsonl.1"))
    elif how == "copytruncate":
        shutil.copy(journal, journal.with_name("finished.jsonl.1"))
        journal.write_text("")
    else:
        journal.unlink()
    after = churn(vc, cfg, 3)
    assert all(b >= a for a, b in zip([before] + after, after)), (before, after)
    run = vc("--config", cfg, "reconcile")
    assert run.code == 0


def test_vcyclectl_rotates_its_journals_and_spend_only_grows(
        vc: VC, write_config: Callable[..., Path], tmp_path: Path) -> None:
    cfg = write_config(churn_config(tmp_path, journal_max_bytes=4096))
    seen = churn(vc, cfg, 8)
    assert all(b >= a for a, b in zip(seen, seen[1:])), seen
    folder = tmp_path / "state/spaces/cloud.local"
    assert (folder / "finished.jsonl.1").exists() and (folder / "events.jsonl.1").exists()
    assert not (folder / "finished.jsonl.3").exists()  # journal_keep: 2
    ended = json.loads((folder / "finished.jsonl.1").read_text().splitlines()[0])["name"]
    assert vc("--config", cfg, "inspect", ended, "-o", "json").code == 0  # still findable


def test_schedule_and_simulate_refuse_what_they_cannot_model(
        vc: VC, write_config: Callable[..., Path], tmp_path: Path) -> None:
    """Issue 20: on an EC2-only config `schedule` printed `planned spend 0.00`, no community
    columns and exit 0. EC2 spaces are modelled from their configured prices; one without a
    price for its type cannot be planned: say which key to set, exit 2, plan nothing."""
    today = datetime.now(timezone.utc).date()
    cfg = write_config(f"""\
        state_dir: state
        spaces:
          aws.example:
            cloud: ec2
            processors_limit: 10
            ec2: {{region: eu-west-2, instance_types: [m5.large]}}
            machinetypes:
              a: {{image: ami-12345678}}
        budgets:
          b: {{spaces: [aws.example], amount: 1000, start: {today}, end: {today + timedelta(days=30)}}}
        """)
    for command in ("schedule", "simulate"):
        run = vc("--config", cfg, command, *(["--out", str(tmp_path / "r")]
                                             if command == "simulate" else []))
        assert run.code == 2, run.err
        assert "'m5.large' has no price" in run.err and "Nothing was planned" in run.err
        assert "spaces.aws.example.ec2.price_per_hour" in run.err and run.out == ""


def test_schedule_markdown_has_as_many_separators_as_headers(vc: VC, write_config: Callable[..., Path]
                                                            ) -> None:
    cfg = write_config(churn_config(Path(".")))
    run = vc("--config", cfg, "schedule", "--format", "markdown", "--weeks", "1")
    assert run.code == 0, run.err
    table = [line for line in run.out.splitlines() if line.startswith("| week")]
    header = table[0]
    separator = run.out.splitlines()[run.out.splitlines().index(header) + 1]
    assert header.count("|") == separator.count("|")
