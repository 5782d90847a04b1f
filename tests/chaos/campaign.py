"""One chaos run: hosts looping `vcyclectl reconcile` on a shared state directory while
processes are killed and frozen, journals torn and the filesystem filled; then clean
passes, which must leave the cloud and the records in agreement (docs/chaos.md).

`run(seed)` returns a `RunResult`; any `violations` is a bug in vcyclectl (or in this
harness), reproduced with `python benchmarks/chaos.py --seed N`.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos.monitor import Monitor
from tests.chaos.scenario import INTENT_TIMEOUT_SECONDS, MAX_FREEZE_SECONDS, Scenario, draw

#: A host process that has not ended this long after the storm is a hang.
HANG_SECONDS = 60.0
#: How long passes still in flight when the storm ends may take before they are killed.
END_GRACE_SECONDS = 0.3
DONE = re.compile(r"^\S+: created \d+", re.M)
SKIPPED = re.compile(r"skipped, locked by")
FAILED = re.compile(r"FAILED", re.M)


@dataclass
class RunResult:
    seed: int
    scenario: str
    kills: int = 0
    freezes: int = 0
    torn_lines: int = 0
    processes: int = 0
    passes: int = 0
    clean_passes: int = 0
    skipped: int = 0
    failed_passes: int = 0
    full_fs: bool = False
    samples: int = 0
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)
    workdir: str = ""


def vcyclectl_command() -> list[str]:
    script = Path(sys.executable).parent / "vcyclectl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "vcyclectl"]


class _Hosts:
    """The hosts: one thread each, starting `vcyclectl reconcile` again as soon as the last
    one ended, until the storm is over; and the chaos that befalls their processes."""

    def __init__(self, scenario: Scenario, config: Path, result: RunResult) -> None:
        self.scenario, self.config, self.result = scenario, config, result
        self.running: dict[int, subprocess.Popen[str]] = {}
        self.frozen: dict[int, float] = {}  # pid -> when to resume it
        self.killed: set[int] = set()
        self.lock = threading.Lock()
        self.storm_over = threading.Event()
        self.rng = random.Random(scenario.seed * 7919 + 1)
        self.fates: list[tuple[float, str, subprocess.Popen[str]]] = []
        #: how long a pass takes here, learnt from the passes that ended by themselves
        self.typical = 0.8

    def host(self, index: int) -> None:
        env = {**os.environ, "VCYCLECTL_CLOCK_OFFSET": str(self.scenario.clock_offsets[index])}
        while not self.storm_over.is_set():
            proc = subprocess.Popen([*vcyclectl_command(), "--config", str(self.config),
                                     "reconcile"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True, env=env)
            with self.lock:
                self.running[index] = proc
                self.result.processes += 1
            self.doom(proc)
            began = time.monotonic()
            try:
                _, err = proc.communicate(timeout=HANG_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
                self.violation(f"host {index}: a pass hung for {HANG_SECONDS:g}s: {err[-300:]}")
            with self.lock:
                self.running.pop(index, None)
                killed = proc.pid in self.killed
                if proc.returncode in (0, 1) and proc.pid not in self.frozen:
                    self.typical = 0.8 * self.typical + 0.2 * (time.monotonic() - began)
            self.tally(index, proc.returncode, err, killed)

    def tally(self, index: int, code: int, err: str, killed: bool) -> None:
        with self.lock:
            self.result.passes += len(DONE.findall(err))
            self.result.skipped += len(SKIPPED.findall(err))
            self.result.failed_passes += len(FAILED.findall(err))
        if killed and code == -signal.SIGKILL:
            return
        if "internal error" in err or "Traceback" in err or code not in (0, 1):
            self.violation(f"host {index}: exit {code}: {err.strip()[-400:]}")

    def violation(self, what: str) -> None:
        with self.lock:
            self.result.violations.append(what)

    def doom(self, proc: "subprocess.Popen[str]") -> None:
        """Decide a new process's fate: killed, frozen or spared, at a moment drawn over
        the typical length of a pass here (so a loaded machine is struck mid-pass too)."""
        s = self.scenario
        with self.lock:
            draw = self.rng.random()
            kind = "kill" if draw < s.kill_probability else \
                "freeze" if draw < s.kill_probability + s.freeze_probability else None
            if kind is not None:
                when = time.monotonic() + self.rng.uniform(0, 1.2) * self.typical
                self.fates.append((when, kind, proc))

    def chaos(self, state: Path, until: float) -> None:
        """Strike doomed processes and tear journals until `until`, then thaw everyone."""
        gap = self.scenario.torn_gap
        next_tear = time.monotonic() + self.rng.expovariate(1 / gap) if gap else float("inf")
        while time.monotonic() < until:
            now = time.monotonic()
            self.thaw(now)
            with self.lock:
                due = [f for f in self.fates if f[0] <= now]
                self.fates = [f for f in self.fates if f[0] > now]
            for _, kind, proc in due:
                self.strike(proc, kind, now)
            if now >= next_tear and gap:
                self.tear(state)
                next_tear = now + self.rng.expovariate(1 / gap)
            time.sleep(0.01)
        self.thaw(float("inf"))

    def strike(self, proc: "subprocess.Popen[str]", kind: str, now: float) -> None:
        with self.lock:
            if proc.poll() is not None or proc.pid in self.frozen:
                return
            try:
                if kind == "kill":
                    proc.send_signal(signal.SIGKILL)
                    self.killed.add(proc.pid)
                    self.result.kills += 1
                else:
                    proc.send_signal(signal.SIGSTOP)
                    self.frozen[proc.pid] = now + self.rng.uniform(0.1, MAX_FREEZE_SECONDS)
                    self.result.freezes += 1
            except ProcessLookupError:
                pass

    def end(self, threads: list[threading.Thread]) -> None:
        """The storm is over: passes in flight get a moment to finish, then are killed
        (one more kill at a random moment of theirs), so a run lasts seconds."""
        grace = time.monotonic() + END_GRACE_SECONDS
        for t in threads:
            t.join(max(0.0, grace - time.monotonic()))
        self.strike_all()
        for t in threads:
            t.join(HANG_SECONDS + 10)

    def strike_all(self) -> None:
        with self.lock:
            for proc in self.running.values():
                if proc.poll() is None:
                    try:
                        proc.send_signal(signal.SIGKILL)
                    except ProcessLookupError:
                        continue
                    self.killed.add(proc.pid)
                    self.result.kills += 1

    def thaw(self, now: float) -> None:
        with self.lock:
            for pid, when in list(self.frozen.items()):
                if when <= now:
                    try:
                        os.kill(pid, signal.SIGCONT)
                    except ProcessLookupError:
                        pass
                    del self.frozen[pid]

    def tear(self, state: Path) -> None:
        """A writer killed mid-append, made explicit: a torn last line in one of a space's
        journals, written while holding the space's lock as that writer did."""
        from vcyclectl.state.lock import Busy, SpaceLock

        space = self.rng.choice(self.scenario.spaces).name
        folder = state / "spaces" / space
        journal = folder / self.rng.choice(("records.jsonl", "events.jsonl", "finished.jsonl"))
        lock = SpaceLock(folder, "chaos-torn-line")
        try:
            lock.acquire()
        except (Busy, OSError):
            return
        try:
            with open(journal, "ab") as handle:
                handle.write(b'{"put":{"name":"' + space.split(".")[0].encode() + b"-torn")
            self.result.torn_lines += 1
        except OSError:
            pass  # a full filesystem: nothing torn
        finally:
            lock.release()


def _fill(state: Path, free: int) -> Path:
    """Leave about `free` bytes on the state filesystem: the rest goes to a ballast file."""
    ballast = state / "ballast"
    stat = os.statvfs(state)
    room = stat.f_bavail * stat.f_frsize - free
    with open(ballast, "wb") as handle:
        while room > 0:
            chunk = min(room, 1 << 20)
            try:
                handle.write(b"\0" * chunk)
                handle.flush()
            except OSError:
                break
            room -= chunk
    return ballast


def _mount(state: Path) -> bool:
    state.mkdir(parents=True)
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs",
                           str(state)], capture_output=True)
    return made.returncode == 0


def _unmount(state: Path) -> None:
    subprocess.run(["umount", "-l", str(state)], capture_output=True)


def run(seed: int, root: Path | None = None, keep: bool = False) -> RunResult:
    """Draw the scenario for `seed` and run it; the work directory is removed unless
    `keep` or something was violated."""
    scenario = draw(seed)
    result = RunResult(seed, scenario.describe())
    work = Path(tempfile.mkdtemp(prefix=f"chaos-{seed}-", dir=root))
    result.workdir = str(work)
    state, cloud = work / "state", work / "cloud"
    started = time.monotonic()
    mounted = False
    if scenario.full_fs_free is not None:
        mounted = _mount(state)
        result.full_fs = mounted
        if not mounted:
            result.scenario += " (tmpfs mount refused: ordinary directory)"
    state.mkdir(exist_ok=True)
    cloud.mkdir()
    os.symlink(cloud, state / "local")  # the simulated cloud is not on the full filesystem
    try:
        _storm_and_settle(scenario, work, state, result, mounted)
    finally:
        if mounted:
            if result.violations or keep:  # what the full filesystem held, for diagnosis
                shutil.copytree(state, work / "state-at-end", symlinks=True,
                                ignore_dangling_symlinks=True, dirs_exist_ok=True)
            _unmount(state)
        result.seconds = time.monotonic() - started
        if not keep and not result.violations:
            shutil.rmtree(work, ignore_errors=True)
    return result


def _storm_and_settle(scenario: Scenario, work: Path, state: Path, result: RunResult,
                      mounted: bool) -> None:
    from tests.chaos.scenario import config_text
    from tests.chaos.settle import settle
    from vcyclectl.state.store import StateDir

    config = work / "chaos.yaml"
    config.write_text(config_text(scenario, str(state)))
    clean = work / "clean.yaml"
    clean.write_text(config_text(scenario, str(state), clean=True))
    StateDir(state).open(create=True)
    ballast = _fill(state, scenario.full_fs_free or 0) if mounted else None
    monitor = Monitor(state, clean, clock_slack=max(scenario.clock_offsets)
                      - min(scenario.clock_offsets))
    monitor.start()
    if ballast is None:
        monitor.arm_deadline()
    hosts = _Hosts(scenario, config, result)
    threads = [threading.Thread(target=hosts.host, args=(i,), daemon=True)
               for i in range(scenario.hosts)]
    for t in threads:
        t.start()
    try:
        hosts.chaos(state, time.monotonic() + scenario.storm_seconds)
    finally:  # also on Ctrl-C: no process is left frozen or running
        hosts.storm_over.set()
        hosts.thaw(float("inf"))
        hosts.end(threads)
    if ballast is not None:
        ballast.unlink()
        monitor.arm_deadline()
    # Unconfirmed intents expire; one stamped by a host whose clock is ahead looks younger
    # by that much (within the documented max_clock_skew_seconds tolerance).
    time.sleep(INTENT_TIMEOUT_SECONDS + max(scenario.clock_offsets) + 0.2)
    try:
        settle(clean, state, monitor, result)
    finally:
        monitor.stop()
        result.samples = monitor.samples
        result.violations.extend(monitor.violations)
