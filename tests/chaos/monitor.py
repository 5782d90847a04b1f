"""The outside monitor of a chaos run: it samples the simulated cloud's files and the state
directory (read-only, never through a vcyclectl command) every few milliseconds and checks
the invariants that must hold at every instant, whatever is killed or frozen:

- a space never holds more processors than its limit;
- no machine name exists twice;
- every machine the cloud lists has a record (the intent is written before the create);
- no record disappears while its machine still exists;
- no healthy machine (running by the simulation's own rules, hence heartbeating, and
  within its `max_wallclock_seconds` by every host's clock) is deleted;
- every space is reconciled within its deadline once the monitor is armed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from vcyclectl import config as config_module
from vcyclectl.clouds.contract import CloudContext
from vcyclectl.clouds.local.driver import LocalCloud, life_of
from vcyclectl.core.model import CloudMachine, MachineState
from vcyclectl.state.store import SpaceState, StateDir

#: A space must have a successful pass at least this often once the monitor is armed.
DEADLINE_SECONDS = 10.0


@dataclass
class _Space:
    name: str
    limit: int
    wallclock: float
    view: LocalCloud
    store: SpaceState
    seen: dict[str, tuple[CloudMachine, float]] = field(default_factory=dict)
    records: set[str] = field(default_factory=set)
    last_success: float | None = None
    success_seen_at: float = 0.0


class Monitor(threading.Thread):
    """Samples every space of a run until `stop()`; `violations` says what broke, once each."""

    def __init__(self, state_dir: Path, config_path: Path, clock_slack: float,
                 interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        config = config_module.load(config_path)
        state_id = StateDir(state_dir).open(create=False)
        self.spaces = [
            _Space(name, s.processors_limit, max(mt.max_wallclock_seconds
                                                 for mt in s.machinetypes.values()),
                   LocalCloud(CloudContext(space=name, state_id=state_id, state_dir=state_dir,
                                           options=s.cloud_options)),
                   StateDir(state_dir).space(name))
            for name, s in config.spaces.items()]
        self.clock_slack = clock_slack
        self.interval = interval
        self.samples = 0
        self.peak: dict[str, int] = {s.name: 0 for s in self.spaces}
        self.violations: list[str] = []
        self.armed_at: float | None = None
        self._halt = threading.Event()

    def arm_deadline(self) -> None:
        """From now on every space must pass within DEADLINE_SECONDS."""
        now = time.time()
        self.armed_at = now
        for s in self.spaces:
            s.success_seen_at = now

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                for space in self.spaces:
                    self.sample(space)
            except Exception as exc:  # the monitor itself must never die silently
                self.violate(f"monitor error: {type(exc).__name__}: {exc}")
                return
            self.samples += 1
            time.sleep(self.interval)

    def violate(self, what: str) -> None:
        if what not in self.violations:
            self.violations.append(what)

    def sample(self, s: _Space) -> None:
        first = {m.name for m in s.view.list_machines()}
        records = s.store.records()
        machines = s.view.list_machines()
        now = time.time()
        names = [m.name for m in machines]
        on_cloud = set(names)
        if len(on_cloud) != len(names):
            twice = sorted(n for n in on_cloud if names.count(n) > 1)
            self.violate(f"{s.name}: duplicate machine names {twice}")
        total = sum(m.processors for m in machines)
        self.peak[s.name] = max(self.peak[s.name], total)
        if total > s.limit:
            self.violate(f"{s.name}: {total} processors on the cloud, limit {s.limit}")
        for name in sorted((first & on_cloud) - set(records)):
            self.violate(f"{s.name}: machine {name} on the cloud without a record")
        for name in sorted((s.records - set(records)) & on_cloud):
            self.violate(f"{s.name}: the record of {name} vanished while the machine exists")
        for name, (machine, seen_at) in s.seen.items():
            if name not in on_cloud and self.healthy(s, machine, seen_at, now):
                self.violate(f"{s.name}: healthy machine {name} deleted (created "
                             f"{now - machine.created_at:.1f}s ago, running, within "
                             f"wallclock {s.wallclock:g}s)")
        s.seen = {m.name: (m, now) for m in machines}
        s.records = set(records)
        self.check_deadline(s, now)

    def healthy(self, s: _Space, machine: CloudMachine, seen_at: float, now: float) -> bool:
        """Running when last seen and still running now by the simulation's rules, and
        short of its wallclock by every host's clock: nothing may delete it.

        A machine's age is reckoned from its record's `created_at`, stamped by the creating
        host's clock and judged by another's, so ages may be off by the spread of the hosts'
        clocks (`clock_slack`, within the documented `max_clock_skew_seconds`), and by the
        time between the intent and the create call (its retries: up to a second here)."""
        if machine.state is not MachineState.RUNNING:
            return False
        options = s.view.context.options_for(machine.machinetype)
        life = life_of(machine.name, machine.created_at, options)
        return (not life.failed and now + 0.2 < life.stopped_at
                and machine.created_at + s.wallclock > now + self.clock_slack + 1.0)

    def check_deadline(self, s: _Space, now: float) -> None:
        last = s.store.last_pass() or {}
        succeeded = last.get("succeeded_at")
        if isinstance(succeeded, (int, float)) and succeeded != s.last_success:
            s.last_success, s.success_seen_at = succeeded, now
        if self.armed_at is not None and now - s.success_seen_at > DEADLINE_SECONDS:
            self.violate(f"{s.name}: no successful pass for {now - s.success_seen_at:.1f}s "
                         f"(deadline {DEADLINE_SECONDS:g}s)")

    def stop(self) -> None:
        self._halt.set()
        self.join(10)
