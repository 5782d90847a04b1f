"""Helpers for end-to-end fleet tests: watch the local cloud from outside vcyclectl and check
that the state directory and the cloud agree."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from vcyclectl.clouds.base import CloudContext
from vcyclectl.clouds.local import LocalCloud
from vcyclectl.clouds.local_options import LocalOptions
from vcyclectl.state import StateDir


def cloud_view(state_dir: Path, space: str) -> LocalCloud:
    """A second, error-free client of the same simulated cloud (what an auditor would see)."""
    state_id = StateDir(state_dir).open(create=False)
    return LocalCloud(CloudContext(space=space, state_id=state_id, state_dir=state_dir,
                                   options=LocalOptions(api_error_probability=0.0)))


class Monitor(threading.Thread):
    """Samples the cloud every few ms: the most processors that ever existed at once."""

    def __init__(self, state_dir: Path, space: str, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.state_dir, self.space, self.interval = state_dir, space, interval
        self.peak = 0
        self.samples = 0
        self.duplicates: set[str] = set()
        self._halt = threading.Event()

    def run(self) -> None:
        while not (self.state_dir / "format.json").exists() and not self._halt.is_set():
            time.sleep(self.interval)
        view = cloud_view(self.state_dir, self.space)
        while not self._halt.is_set():
            machines = view.list_machines()
            self.peak = max(self.peak, sum(m.processors for m in machines))
            names = [m.name for m in machines]
            self.duplicates |= {n for n in names if names.count(n) > 1}
            self.samples += 1
            time.sleep(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


def consistency(state_dir: Path, space: str) -> tuple[set[str], set[str], set[str]]:
    """(machines on the cloud with no record, records with no machine, records of machines
    deleted by the last pass, which the next pass forgets once the cloud no longer lists
    them)."""
    on_cloud = {m.name for m in cloud_view(state_dir, space).list_machines()}
    records = StateDir(state_dir).space(space).records()
    missing = set(records) - on_cloud
    deleted = {n for n in missing if records[n].deleting_at is not None}
    return on_cloud - set(records), missing - deleted, deleted
