"""After the storm: clean passes (no faults, this process, a true clock), and what they must
leave. A machine may be left over by a killed or frozen pass, but not past one clean pass:

1. after the first clean pass every machine on the cloud has a record, and no machine that
   had stopped, failed or passed its wallclock before that pass observed is still there;
2. after the second, every record names a machine on the cloud or one being deleted;
3. after the third, records of deleted machines are forgotten.

Every clean pass must succeed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from vcyclectl import config as config_module
from vcyclectl.clouds.local.driver import life_of
from vcyclectl.reconcile import reconcile_space
from vcyclectl.state.store import StateDir

if TYPE_CHECKING:
    from tests.chaos.campaign import RunResult
    from tests.chaos.monitor import Monitor


def clean_pass(config_path: Path, result: "RunResult") -> bool:
    config = config_module.load(config_path)
    state_id = StateDir(config.state_dir).open(create=False)
    ok = True
    for space in config.spaces.values():
        outcome = reconcile_space(config, space, state_id)
        result.clean_passes += outcome.outcome == "done"
        if outcome.outcome != "done":
            result.violations.append(f"{space.name}: a clean pass after the storm ended "
                                     f"{outcome.outcome}: {outcome.reason}")
            ok = False
    return ok


def settle(config_path: Path, state: Path, monitor: "Monitor", result: "RunResult") -> None:
    began = time.time()
    if not clean_pass(config_path, result):
        return
    for s in monitor.spaces:
        records = s.store.records()
        for m in s.view.list_machines():
            life = life_of(m.name, m.created_at, s.view.context.options_for(m.machinetype))
            if m.name not in records:
                result.violations.append(f"{s.name}: {m.name} on the cloud without a record "
                                         "after a clean pass")
            elif life.stopped_at < began - 0.5 or \
                    m.created_at + s.wallclock + monitor.clock_slack < began - 0.5:
                # (a record stamped by a host whose clock was ahead makes its machine look
                # younger by up to the hosts' clock spread: the documented skew tolerance)
                result.violations.append(f"{s.name}: {m.name} ended or past its wallclock "
                                         "before a clean pass, still on the cloud after it")
    if not clean_pass(config_path, result):
        return
    deleted: dict[str, set[str]] = {}
    for s in monitor.spaces:
        on_cloud = {m.name for m in s.view.list_machines()}
        records = s.store.records()
        deleted[s.name] = {n for n, r in records.items()
                           if n not in on_cloud and r.deleting_at is not None}
        orphans = sorted(set(records) - on_cloud - deleted[s.name])
        if orphans:
            result.violations.append(f"{s.name}: records without a machine after two clean "
                                     f"passes: {orphans[:5]}")
    if not clean_pass(config_path, result):
        return
    for s in monitor.spaces:
        kept = deleted[s.name] & set(s.store.records())
        if kept:
            result.violations.append(f"{s.name}: records of deleted machines not forgotten: "
                                     f"{sorted(kept)[:5]}")
