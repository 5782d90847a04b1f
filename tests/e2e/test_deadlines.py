"""Passes that take turns and passes that end (issue 15), with real `vcyclectl` processes.

- one pass per space per interval: a second process right after the first skips the space
  (exit 0, said on stderr and in `-o json`), `--force` passes anyway, and a pass killed
  mid-way does not count, so the next process takes the space over at once;
- a cloud call that never returns: the watchdog ends the process past `max_pass_seconds`
  plus its grace, the lock goes with it, and the next process, another config on the
  same state directory and cloud, adopts what the stuck one had made, with no duplicate;
- a pass that runs out of `max_pass_seconds` between calls starts no new one and says so;
- a process frozen with SIGSTOP mid-pass holds its lock (`status` and `doctor` flag it
  past `max_pass_seconds`, with what to do) and, resumed past its deadline, acts on
  nothing it saw before the freeze; resumed past its observation bound (the issue-22
  stale-observation guard), likewise.

No timing is asserted: the sleeps only put the processes where each case needs them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import IO, Callable

from tests.conftest import Run, run_process, vcyclectl_command
from tests.e2e.fleet import cloud_view
from vcyclectl.state.lock import is_locked
from vcyclectl.state.store import StateDir

SPACE = "turns.local"


def config(*, interval: float = 45, max_pass: float = 300, local: str = "",
           heartbeat: str = "") -> str:
    return f"""\
state_dir: state
defaults:
  min_pass_interval_seconds: {interval}
  max_pass_seconds: {max_pass}
  backoff_seconds: 0
  fizzle_seconds: 0
{heartbeat}spaces:
  {SPACE}:
    cloud: local
    processors_limit: 4
    local: {{processors: 100, boot_seconds: 30, job_seconds: 300, no_work_probability: 0{local}}}
    machinetypes:
      lhcb: {{}}
"""


class Background:
    """A `vcyclectl` process in the background, its stderr in a file we can poll."""

    def __init__(self, tmp: Path, name: str, *args: str | Path,
                 env: dict[str, str] | None = None) -> None:
        self.err_path = tmp / f"{name}.err"
        self._err: IO[str] = open(self.err_path, "w")
        self.proc = subprocess.Popen([*vcyclectl_command(), *(str(a) for a in args)],
                                     stdout=subprocess.PIPE, stderr=self._err, text=True,
                                     env={**os.environ, **(env or {})})

    def err(self) -> str:
        return self.err_path.read_text()

    def wait_for(self, text: str, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while text not in self.err():
            assert self.proc.poll() is None, f"exited {self.proc.returncode}: {self.err()}"
            assert time.monotonic() < end, f"{text!r} never came: {self.err()}"
            time.sleep(0.05)

    def finish(self, timeout: float = 60) -> Run:
        out, _ = self.proc.communicate(timeout=timeout)
        self._err.close()
        return Run(self.proc.returncode, out, self.err())


def cloud_names(state: Path) -> list[str]:
    return sorted(m.name for m in cloud_view(state, SPACE).list_machines())


def space_dir(state: Path) -> Path:
    return StateDir(state).space(SPACE).path


def test_one_pass_per_interval_whoever_is_first(write_config: Callable[..., Path],
                                                tmp_path: Path) -> None:
    cfg = write_config(config(interval=45))
    first = run_process("--config", cfg, "reconcile")
    assert first.code == 0 and f"{SPACE}: created 4" in first.err
    second = run_process("--config", cfg, "-o", "json", "reconcile")
    assert second.code == 0, second.err
    [result] = json.loads(second.out)
    assert (result["outcome"], result["skipped"]) == ("skipped", "interval")
    assert "min_pass_interval_seconds 45" in result["reason"] and "--force" in result["reason"]
    assert f"{SPACE}: skipped, last pass finished" in second.err
    assert result["calls"] == {}  # a skipped space costs the cloud nothing
    forced = run_process("--config", cfg, "-o", "json", "reconcile", "--force")
    assert forced.code == 0 and json.loads(forced.out)[0]["outcome"] == "done"
    assert json.loads(forced.out)[0]["calls"].get("list") == 1


def test_four_hosts_on_the_same_tick_pass_a_space_once(write_config: Callable[..., Path],
                                                       tmp_path: Path) -> None:
    """Four processes started together (one cron tick on four hosts), the listing slow
    enough that they overlap: exactly one passes each space, the others skip it as locked
    or as just passed; none fails."""
    cfg = write_config(config(interval=45, local=", call_seconds: {list: 0.3}") +
                       config(interval=45).split("spaces:\n", 1)[1].replace(SPACE, "b.local"))
    hosts = [Background(tmp_path, f"host{n}", "--config", cfg, "-o", "json", "reconcile")
             for n in range(4)]
    runs = [host.finish() for host in hosts]
    assert all(run.code == 0 for run in runs), [run.err for run in runs]
    results = [r for run in runs for r in json.loads(run.out)]
    for space in (SPACE, "b.local"):
        outcomes = sorted((r["outcome"], r["skipped"]) for r in results if r["space"] == space)
        assert outcomes.count(("done", None)) == 1, outcomes
        assert all(o in (("done", None), ("skipped", "locked"), ("skipped", "interval"))
                   for o in outcomes), outcomes


def test_a_stuck_cloud_call_ends_the_process_and_the_next_one_carries_on(
        write_config: Callable[..., Path], tmp_path: Path) -> None:
    """The creates are made, then their answers never come (call_seconds): the watchdog
    writes the pass down as cut short and ends the process; a process with a healthy cloud
    finds the lock free at once (a pass cut short never counts for
    min_pass_interval_seconds) and adopts the four machines the stuck pass had recorded as
    intents: nothing duplicated, nothing lost."""
    stuck_cfg = write_config(config(max_pass=2, local=", call_seconds: {create: 600}"),
                             "stuck.yaml")
    healthy_cfg = write_config(config(), "healthy.yaml")
    state = tmp_path / "state"
    stuck = Background(tmp_path, "stuck", "--config", stuck_cfg, "reconcile")
    run = stuck.finish(timeout=120)
    assert run.code == 1, run.err
    assert "watchdog: pass over turns.local" in run.err and "max_pass_seconds (2s)" in run.err
    assert not is_locked(space_dir(state))
    last = json.loads((space_dir(state) / "last_pass.json").read_text())  # its last words
    assert last["outcome"] == "failed" and last["deadline_passed"] is True
    assert "ended by its watchdog" in last["reason"] and last["pid"] == stuck.proc.pid
    made = cloud_names(state)
    assert len(made) == 4
    records = StateDir(state).space(SPACE).records()
    assert sorted(records) == made and all(r.state.value == "creating" for r in records.values())

    after = run_process("--config", healthy_cfg, "-o", "json", "reconcile")
    assert after.code == 0, after.err
    [result] = json.loads(after.out)
    assert (result["outcome"], result["created"]) == ("done", 0)
    assert cloud_names(state) == made  # the same four: none twice, none lost
    records = StateDir(state).space(SPACE).records()
    assert sorted(records) == made and all(r.cloud_id for r in records.values())


def test_past_the_deadline_no_new_call_starts(write_config: Callable[..., Path],
                                              tmp_path: Path) -> None:
    """Each create answers after 1 s, one at a time, and the pass has 2 s: it makes one or
    two, starts no more, forgets the intents of those it never asked for, says so (exit 1)
    and releases its lock; the next pass finishes the job."""
    cfg = write_config(config(interval=0, max_pass=2,
                              local=", call_seconds: {create: 1}").replace(
        "    processors_limit: 4\n", "    processors_limit: 4\n    concurrency: 1\n"))
    state = tmp_path / "state"
    run = run_process("--config", cfg, "-o", "json", "reconcile")
    assert run.code == 1, run.err
    [result] = json.loads(run.out)
    assert result["outcome"] == "failed" and "max_pass_seconds (2s) passed" in result["reason"]
    assert 1 <= result["created"] <= 3 and "not started" in result["reason"]
    assert "watchdog" not in run.err
    assert not is_locked(space_dir(state))
    made = cloud_names(state)
    assert len(made) == result["created"]
    assert sorted(StateDir(state).space(SPACE).records()) == made  # no intent left behind
    last = json.loads((space_dir(state) / "last_pass.json").read_text())
    assert last["outcome"] == "failed" and last["not_started"] == 4 - len(made)
    assert last["deadline_passed"] is True
    # Cut short, it does not count for the interval: the next host carries on at once.
    slow_interval = cfg.read_text().replace("min_pass_interval_seconds: 0",
                                            "min_pass_interval_seconds: 45")
    cfg.write_text(slow_interval.replace("call_seconds: {create: 1}", "call_seconds: {}"))
    after = run_process("--config", cfg, "-o", "json", "reconcile")
    assert after.code == 0 and json.loads(after.out)[0]["outcome"] == "done", after.err
    assert len(cloud_names(state)) == 4


def test_a_frozen_pass_holds_its_lock_and_acts_on_nothing_once_resumed(
        write_config: Callable[..., Path], tmp_path: Path) -> None:
    """SIGSTOP right after the listing (the stall hook marks the spot), kept frozen past
    max_pass_seconds + grace: `status` and `doctor` flag the lock with host, pid and what
    to do, another process skips the space as locked; SIGCONT: the frozen process ends
    (its watchdog, or its deadline check before acting) having created nothing from its
    stale view, and the next process fills the space."""
    cfg = write_config(config(interval=0, max_pass=3))
    state = tmp_path / "state"
    frozen = Background(tmp_path, "frozen", "--config", cfg, "reconcile",
                        env={"VCYCLECTL_FAULT_STALL_AFTER_LISTING": "1"})
    frozen.wait_for("fault injection: stalling after the listing")
    os.kill(frozen.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(6)  # past max_pass_seconds (3) + grace (2)
        status = run_process("--config", cfg, "-o", "json", "status")
        [row] = json.loads(status.out)
        assert row["lock_overdue"] is True and row["lock_holder"]["pid"] == frozen.proc.pid
        assert f"kill -CONT {frozen.proc.pid}" in status.err
        doctor = run_process("--config", cfg, "-o", "json", "doctor")
        assert doctor.code == 1
        [check] = json.loads(doctor.out)
        assert any(f"pid {frozen.proc.pid}" in w and "max_pass_seconds 3" in w
                   for w in check["warnings"])
        other = run_process("--config", cfg, "-o", "json", "reconcile")
        assert other.code == 0 and json.loads(other.out)[0]["skipped"] == "locked"
    finally:
        os.kill(frozen.proc.pid, signal.SIGCONT)
    run = frozen.finish()
    assert run.code == 1, run.err
    assert "watchdog: pass over" in run.err or "max_pass_seconds (3s) passed" in run.err
    assert cloud_names(state) == []  # nothing done on the view from before the freeze
    assert not is_locked(space_dir(state))
    after = run_process("--config", cfg, "-o", "json", "reconcile")
    assert after.code == 0 and json.loads(after.out)[0]["created"] == 4
    assert len(cloud_names(state)) == 4


def test_a_pass_frozen_past_its_observation_bound_acts_on_nothing(
        write_config: Callable[..., Path], tmp_path: Path) -> None:
    """The issue-22 guard on its own: a deadline far away, heartbeats every 10 s (so an
    observation older than 5 s is stale); frozen 7 s after the listing, the resumed pass
    refuses to act on what it saw, the watchdog has nothing to do."""
    cfg = write_config(config(interval=0, max_pass=120,
                              heartbeat="  heartbeat_seconds: 10\n"))
    state = tmp_path / "state"
    frozen = Background(tmp_path, "frozen", "--config", cfg, "reconcile",
                        env={"VCYCLECTL_FAULT_STALL_AFTER_LISTING": "0.5"})
    frozen.wait_for("fault injection: stalling after the listing")
    os.kill(frozen.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(7)
    finally:
        os.kill(frozen.proc.pid, signal.SIGCONT)
    run = frozen.finish()
    assert run.code == 1, run.err
    assert "FAILED: the observation is" in run.err and "watchdog" not in run.err
    assert cloud_names(state) == []
    assert run_process("--config", cfg, "reconcile").code == 0
    assert len(cloud_names(state)) == 4
