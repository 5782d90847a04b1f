"""A machine someone else deleted through the cloud's API is replaced without backoff
(issue 15), end to end on the local cloud: another client of the same simulated cloud
deletes a young machine (far within fizzle_seconds), and the next pass forgets it, says
why, creates its replacement at once and records no abort."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from tests.conftest import run_process
from tests.e2e.fleet import cloud_view
from vcyclectl.state.store import StateDir

SPACE = "ends.local"
CONFIG = f"""\
state_dir: state
defaults:
  min_pass_interval_seconds: 0
  backoff_seconds: 3600
  fizzle_seconds: 3600
spaces:
  {SPACE}:
    cloud: local
    processors_limit: 2
    local: {{processors: 100, boot_seconds: 0, job_seconds: 3000, no_work_probability: 0}}
    machinetypes:
      lhcb: {{}}
"""


def test_deleted_by_someone_else_is_replaced_without_backoff(
        write_config: Callable[..., Path], tmp_path: Path) -> None:
    cfg = write_config(CONFIG)
    state = tmp_path / "state"
    assert run_process("--config", cfg, "reconcile").code == 0
    assert run_process("--config", cfg, "reconcile").code == 0  # now running
    operator = cloud_view(state, SPACE)
    victim = sorted(operator.list_machines(), key=lambda m: m.name)[0]
    operator.delete(victim)  # an operator's `openstack server delete`, in effect

    run = run_process("--config", cfg, "-o", "json", "reconcile")
    assert run.code == 0, run.err
    [result] = json.loads(run.out)
    assert (result["forgotten"], result["created"]) == (1, 1)
    [forget] = [a for a in result["plan"]["actions"] if a["action"] == "forget"]
    assert forget["name"] == victim.name
    assert "deleted by someone else through the cloud's API" in forget["reason"]
    assert result["plan"]["aborts"] == {}
    assert not (StateDir(state).space(SPACE).path / "backoff.json").exists()
    status = json.loads(run_process("--config", cfg, "-o", "json", "status").out)
    assert status[0]["backoff_until"] is None and status[0]["machines"] == 2
    [ended] = [e for e in StateDir(state).space(SPACE).finished() if e["name"] == victim.name]
    assert ended["abort"] is False
