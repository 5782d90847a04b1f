"""`vcyclectl reconcile` on a `local` space whose spot machines are all pre-empted: each
pre-empted machine is deleted as pre-empted (its own end reason, not an abort), the
machinetype never goes into backoff for it, and the space is refilled in the next passes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from tests.conftest import Run

CONFIG = """\
state_dir: state
defaults:
  min_pass_interval_seconds: 0
  backoff_seconds: 3600      # an abort would stop all creation for an hour
  fizzle_seconds: 3600       # and every early stop without a message would be one
spaces:
  spot.local:
    cloud: local
    processors_limit: 4
    local:
      processors: 100
      boot_seconds: 0
      job_seconds: 0.6
      no_work_probability: 0
      preemption_probability: 1.0
      flavors: [{name: spot-2, processors: 2, spot: true}]
    machinetypes:
      lhcb: {}
"""


def test_preempted_machines_are_not_aborts(vc: Callable[..., Run],
                                           write_config: Callable[..., Path]) -> None:
    cfg = write_config(CONFIG)
    assert vc("--config", cfg, "reconcile").code == 0
    first = set(vc("--config", cfg, "list", "-o", "names").out.split())
    assert len(first) == 2
    time.sleep(0.8)  # past every machine's life on the local cloud's clock
    assert vc("--config", cfg, "reconcile").code == 0  # deletes the pre-empted ones
    assert vc("--config", cfg, "reconcile").code == 0  # forgets them, creates anew
    events = [json.loads(line) for line in
              (cfg.parent / "state/spaces/spot.local/events.jsonl").read_text().splitlines()]
    ended = [e for e in events if e.get("machine") in first and e.get("event") == "delete"]
    assert {e["machine"] for e in ended} == first
    assert all(e.get("preempted") and not e.get("abort") for e in ended), ended
    assert all("pre-empted" in e.get("reason", "") for e in ended)
    status = json.loads(vc("--config", cfg, "status", "-o", "json").out)
    (row,) = [r for r in status if r["machinetype"] == "lhcb"]
    assert row["backoff_until"] is None
    now = set(vc("--config", cfg, "list", "-o", "names").out.split())
    assert len(now - first) >= 2  # refilled: no backoff held creation
