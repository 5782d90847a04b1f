"""APEL accounting end to end: real `vcyclectl reconcile` processes on the `local` cloud,
two "hosts" at once and passes SIGKILLed at random moments; then the APEL queue, read back
with dirq as `ssmsend` reads it, holds exactly one job record per machine that ran (none
for fizzles), and the summaries add up to the same wall and HS06 hours."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.apelqueue import jobs_in, latest, read_queue
from tests.conftest import run_process, vcyclectl_command

SPACE = "acct.local"
FIZZLE = 1.0
CONFIG = f"""\
state_dir: state
accounting:
  gocdb_sitename: UKI-TEST
  messages: both
  summaries_every_seconds: 0
defaults:
  min_pass_interval_seconds: 0
  backoff_seconds: 0
  fizzle_seconds: {FIZZLE}
  max_wallclock_seconds: 60
spaces:
  {SPACE}:
    cloud: local
    processors_limit: 8
    intent_timeout_seconds: 2
    local:
      processors: 1000
      flavors: [{{name: one, processors: 1, price_per_hour: 0.05}},
                {{name: two, processors: 2, price_per_hour: 0.1}}]
      boot_seconds: 0.3
      job_seconds: 2.5
      no_work_probability: 0.3
      failure_probability: 0.1
    machinetypes:
      lhcb: {{flavors: [two], hs06_per_processor: 10,
              accounting_fqan: /lhcb/Role=pilot/Capability=NULL}}
      atlas: {{flavors: [one], hs06_per_processor: 12.5, accounting_vo: atlas}}
"""


def host(cfg: Path, until: float, kills: list[int], seed: int) -> None:
    """One host's cron: pass after pass; now and then a pass is SIGKILLed mid-way."""
    rng = random.Random(seed)
    while time.time() < until:
        proc = subprocess.Popen([*vcyclectl_command(), "--config", str(cfg), "reconcile"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if rng.random() < 0.3:
            time.sleep(rng.uniform(0.05, 0.6))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills.append(1)
        proc.wait(timeout=120)
        time.sleep(rng.uniform(0.0, 0.3))


def finished_lines(state: Path) -> list[dict[str, object]]:
    path = state / "spaces" / SPACE / "finished.jsonl"
    out = []
    for raw in path.read_text().splitlines():
        try:
            out.append(json.loads(raw))
        except ValueError:
            continue  # a torn line from a killed pass
    return out


@pytest.mark.slow
def test_every_machine_that_ran_is_published_once(write_config: Callable[..., Path],
                                                  tmp_path: Path) -> None:
    cfg = write_config(CONFIG)
    state = tmp_path / "state"
    kills: list[int] = []
    until = time.time() + 25
    hosts = [threading.Thread(target=host, args=(cfg, until, kills, seed)) for seed in (1, 2)]
    for t in hosts:
        t.start()
    for t in hosts:
        t.join()
    # wind down: no new machines, the rest finish and are deleted by clean passes
    assert run_process("--config", cfg, "drain", SPACE).code == 0
    deadline = time.time() + 60
    while time.time() < deadline:
        assert run_process("--config", cfg, "reconcile").code in (0, 1)
        if not json.loads(run_process("--config", cfg, "list", "-o", "json").out or "[]"):
            break
        time.sleep(0.5)
    for _ in range(2):  # a second host's clean passes add nothing
        run_process("--config", cfg, "reconcile")

    ended: dict[str, dict[str, object]] = {}
    for line in finished_lines(state):
        ended.setdefault(str(line["name"]), line)

    def ran(line: dict[str, object]) -> bool:
        start, stop = line.get("started_at"), line.get("stopped_at")
        return isinstance(start, float) and isinstance(stop, float) and \
            int(stop) - int(start) >= FIZZLE and stop > start
    ran_names = {n for n, line in ended.items() if ran(line)}
    fizzles = set(ended) - ran_names
    assert kills, "no pass was killed"
    assert len(ran_names) >= 10 and fizzles, (len(ran_names), len(fizzles))

    messages = read_queue(state / "apel-outgoing")
    records = jobs_in(messages)
    ids = [r["LocalJobId"] for r in records]
    assert len(ids) == len(set(ids)), "a machine was published twice"
    assert set(ids) == ran_names, "every machine that ran, and no fizzle"

    month = time.strftime("%Y-%m", time.gmtime())
    assert run_process("--config", cfg, "accounting", "--republish", month).code == 0
    messages = read_queue(state / "apel-outgoing")
    summary = latest(messages, "APEL-summary-job-message")
    wall = sum(int(r["WallDuration"]) for r in records)
    hs06 = sum(int(r["WallDuration"]) * int(r["Processors"]) * float(r["ServiceLevel"])
               for r in records)
    assert sum(int(r["NumberOfJobs"]) for r in summary) == len(records)
    assert sum(int(r["WallDuration"]) for r in summary) == wall
    assert sum(int(r["WallDuration"]) * int(r["Processors"]) * float(r["ServiceLevel"])
               for r in summary) == pytest.approx(hs06)
    sync = latest(messages, "APEL-sync-message")
    assert sum(int(r["NumberOfJobs"]) for r in sync) == len(records)

    shown = run_process("--config", cfg, "accounting", "--month", month, "-o", "json")
    assert shown.code == 0, shown.err
    data = json.loads(shown.out)
    assert sum(r["jobs"] for r in data["rows"]) == len(records)
    assert sum(r["fizzles"] for r in data["rows"]) == len(fizzles)
    assert sum(r["wall_hours"] for r in data["rows"]) == pytest.approx(wall / 3600, abs=1e-3)
    assert sum(r["hs06_hours"] for r in data["rows"]) == pytest.approx(hs06 / 3600, abs=1e-2)
    # `budget` bills the same finished machines: same processor-hours for the month
    for row in data["budget"]:
        assert row["budget_processor_hours"] == pytest.approx(
            row["accounting_processor_hours"], rel=1e-3)
