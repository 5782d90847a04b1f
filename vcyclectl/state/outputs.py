"""Retention of job outputs: what VMs uploaded through `serve` stays readable after they
end (`inspect NAME` shows why a machine stopped), for `joboutputs_keep_seconds`, then goes.
Run by the reconciler under the space's lock, so one host removes and none races it."""

from __future__ import annotations

import os
import shutil
from typing import Mapping

from vcyclectl import log
from vcyclectl.core.records import MachineRecord
from vcyclectl.state.store import SpaceState, valid_machine_name

#: Vcycle's `cleanup_hours` default.
DEFAULT_KEEP_SECONDS = 24 * 3600.0


def cleanup_outputs(store: SpaceState, records: Mapping[str, MachineRecord], now: float,
                    keep_seconds: float = DEFAULT_KEEP_SECONDS) -> list[str]:
    """Remove the joboutputs of machines that ended more than `keep_seconds` ago.

    Vcycle's `cleanup_hours`: outputs outlive their machine so operators can read why it
    stopped (`inspect NAME`), then go. A folder is kept while its machine has a live record;
    once the machine has ended (record gone, or marked finished), the folder goes when
    nothing was written to it for `keep_seconds` (its mtime moves with every upload). One
    scandir per pass, and a stat only for folders of machines no longer live.
    """
    removed: list[str] = []
    try:
        entries = list(os.scandir(store.joboutputs_dir))
    except FileNotFoundError:
        return removed
    for entry in entries:
        name = entry.name
        if not valid_machine_name(name):
            continue
        rec = records.get(name)
        if rec is not None and not rec.finished and rec.deleting_at is None:
            continue
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
            last_write = entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue
        ended = rec.deleting_at if rec is not None and rec.deleting_at else last_write
        if now - max(last_write, ended) < keep_seconds:
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(name)
    if removed:
        log.info("removed old joboutputs", space=store.name, machines=len(removed))
    return removed
