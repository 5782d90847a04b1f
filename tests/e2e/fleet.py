"""Helpers for end-to-end fleet tests: watch the local cloud from outside vcyclectl and check
that the state directory and the cloud agree."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from vcyclectl.clouds.contract import CloudContext
from vcyclectl.clouds.local.driver import LocalCloud
from vcyclectl.clouds.local.options import LocalOptions
from vcyclectl.state.store import StateDir


def cloud_view(state_dir: Path, space: str, config: Path | None = None) -> LocalCloud:
    """A second, error-free client of the same simulated cloud (what an auditor would see),
    with the space's simulation rules when its config is given."""
    from dataclasses import replace

    from vcyclectl import config as config_module

    state_id = StateDir(state_dir).open(create=False)
    options = LocalOptions()
    if config is not None:
        options = config_module.load(config).spaces[space].cloud_options
    return LocalCloud(CloudContext(space=space, state_id=state_id, state_dir=state_dir,
                                   options=replace(options, api_error_probability=0.0)))


class Monitor(threading.Thread):
    """Samples the cloud every few ms: the most processors that ever existed at once."""

    def __init__(self, state_dir: Path, space: str, interval: float = 0.02,
                 limit: int | None = None, config: Path | None = None) -> None:
        super().__init__(daemon=True)
        self.config = config
        self.state_dir, self.space, self.interval, self.limit = state_dir, space, interval, limit
        self.breach: str | None = None  # what the cloud and the records held at the first breach
        self.peak = 0
        self.samples = 0
        self.duplicates: set[str] = set()
        self._halt = threading.Event()

    def run(self) -> None:
        while not (self.state_dir / "format.json").exists() and not self._halt.is_set():
            time.sleep(self.interval)
        view = cloud_view(self.state_dir, self.space, self.config)
        while not self._halt.is_set():
            machines = view.list_machines()
            total = sum(m.processors for m in machines)
            self.peak = max(self.peak, total)
            if self.limit is not None and total > self.limit and self.breach is None:
                self.breach = self.describe(machines, total)
            names = [m.name for m in machines]
            self.duplicates |= {n for n in names if names.count(n) > 1}
            self.samples += 1
            time.sleep(self.interval)

    def describe(self, machines: list, total: int) -> str:  # type: ignore[type-arg]
        """A diagnosis for a failed assertion: which machines exist and what records say."""
        records = StateDir(self.state_dir).space(self.space).records()
        states: dict[str, int] = {}
        for m in machines:
            states[m.state.value] = states.get(m.state.value, 0) + m.processors
        unrecorded = [m.name for m in machines if m.name not in records]
        import json
        import os

        dump = os.environ.get("VCYCLECTL_BREACH_DUMP")
        if dump:
            with open(dump, "w") as handle:
                json.dump({"now": time.time(), "cloud": [
                    {"name": m.name, "state": m.state.value, "created_at": m.created_at,
                     "processors": m.processors,
                     "record": records[m.name].to_record() if m.name in records else None}
                    for m in machines]}, handle, indent=1, default=str)
        return (f"{total} processors on the cloud by state {states}; {len(unrecorded)} "
                f"machines without a record; records by state "
                f"{ {s: sum(1 for r in records.values() if r.state.value == s) for s in {r.state.value for r in records.values()}} }; "
                f"deleting {sum(1 for r in records.values() if r.deleting_at)}")

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
