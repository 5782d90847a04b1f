"""Simulated cron hosts for the multi-host benchmarks (`interval.py`, `failover.py`).

Each host starts a real `vcyclectl -o json reconcile` process every `tick` seconds (cron
never waits for the previous run, so neither does this), with a little jitter for the
hosts' clocks; every process's JSON results are kept. All hosts share one state directory
and the local cloud in it; a "host" here is a series of processes on this machine, which
is what a host is to the state directory (holder.json names host and pid).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VCYCLECTL = str(Path(sys.executable).parent / "vcyclectl")


def space_config(state: Path, spaces: list[str], *, interval: float, max_pass: float,
                 list_seconds: float = 0.0) -> str:
    """A config of `spaces` local spaces that keep busy (short jobs, so every pass has
    creates and deletes to do) and whose listing takes `list_seconds` (a real cloud's)."""
    calls = f", call_seconds: {{list: {list_seconds}}}" if list_seconds else ""
    blocks = "".join(f"""\
  {name}:
    cloud: local
    processors_limit: 4
    local: {{processors: 100, boot_seconds: 1, job_seconds: 20, no_work_probability: 0{calls}}}
    machinetypes:
      lhcb: {{}}
""" for name in spaces)
    return f"""\
state_dir: {state}
defaults:
  min_pass_interval_seconds: {interval}
  max_pass_seconds: {max_pass}
  backoff_seconds: 0
  fizzle_seconds: 0
spaces:
{blocks}"""


@dataclass
class Host:
    """One simulated cron host: starts a reconcile every `tick` seconds until stopped."""

    name: str
    config: Path
    tick: float
    jitter: float = 0.5
    dead: bool = False
    processes: list[subprocess.Popen[str]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, first_at: float) -> None:
        self._thread = threading.Thread(target=self._run, args=(first_at,), daemon=True)
        self._thread.start()

    def _run(self, first_at: float) -> None:
        rng = random.Random(self.name)
        tick_at = first_at
        while not self._stop.is_set():
            delay = tick_at + rng.uniform(0, self.jitter) - time.time()
            if delay > 0 and self._stop.wait(delay):
                break
            if self.dead:
                break
            proc = subprocess.Popen([VCYCLECTL, "--config", str(self.config), "-o", "json",
                                     "reconcile"], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True)
            with self._lock:
                self.processes.append(proc)
            threading.Thread(target=self._collect, args=(proc,), daemon=True).start()
            tick_at += self.tick

    def _collect(self, proc: subprocess.Popen[str]) -> None:
        out, _ = proc.communicate()
        try:
            results = json.loads(out) if out.strip() else []
        except ValueError:
            results = []
        with self._lock:
            self.results.extend(results)

    def running(self) -> list[subprocess.Popen[str]]:
        with self._lock:
            return [p for p in self.processes if p.poll() is None]

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for proc in list(self.processes):
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
