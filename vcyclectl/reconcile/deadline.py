"""Every pass has a deadline, so a space's lock never outlives a stuck pass.

`Deadline` is the pass's own budget (`max_pass_seconds`, from the moment its lock is
taken): past it the pass starts no new cloud call, writes down what it did and ends,
which releases the lock. That is cooperative; it cannot help a pass stuck *inside* a call
(a TCP connection that never answers, an NFS read that hangs). For that, the `reconcile`
command runs a `Watchdog`: one daemon thread that ends the whole process with
`os._exit` once the deadline plus a grace has passed. Ending a pass at any instant is safe
because of intent records (docs/state.md): every create was recorded before its call and
every delete marked before its call, so the next pass, by any host, adopts or re-deletes.

A process frozen with SIGSTOP and resumed after its deadline wakes with its watchdog due:
the thread's timed wait returns at once (the monotonic clock kept running) and ends the
process. The main thread may run a little first; it checks the deadline before every cloud
call and the observation's age before each batch (`Pass.check_fresh`), so it does nothing
on the stale view either way.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from vcyclectl.errors import ExitStatus, VcyclectlError

#: The watchdog's grace past `max_pass_seconds`: a fifth of it, between these bounds, so a
#: call that started just before the deadline may still finish and be recorded.
GRACE_MIN_SECONDS = 2.0
GRACE_MAX_SECONDS = 60.0


def grace_seconds(max_pass_seconds: float) -> float:
    """How long past the deadline the watchdog waits before it ends the process."""
    return min(GRACE_MAX_SECONDS, max(GRACE_MIN_SECONDS, max_pass_seconds / 5))


class DeadlinePassed(VcyclectlError):
    """The pass ran out of `max_pass_seconds` before it could start what is left."""


class Deadline:
    """A pass's time budget: started when the space's lock is taken, finished when the pass
    is over (whatever its outcome). Monotonic, so a clock step never shortens it."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.grace = grace_seconds(seconds)
        self.clock = clock
        self.started_at: float | None = None
        self.finished = False
        #: What to write down if the watchdog ends the process (the pass's events so far,
        #: its `last_pass.json`): best effort, given LAST_WORDS_SECONDS, since the stuck
        #: thing may be the state directory itself.
        self.last_words: list[Callable[[], None]] = []

    def start(self) -> None:
        self.started_at = self.clock()

    def finish(self) -> None:
        self.finished = True

    @property
    def at(self) -> float | None:
        """The monotonic time past which no new cloud call starts (None: not started)."""
        return None if self.started_at is None else self.started_at + self.seconds

    def expired(self) -> bool:
        at = self.at
        return at is not None and self.clock() >= at

    def overdue(self) -> float:
        """Seconds past the deadline plus grace (> 0: the watchdog's time has come)."""
        at = self.at
        return -1.0 if at is None else self.clock() - (at + self.grace)

    def check(self, what: str) -> None:
        """`DeadlinePassed` if the deadline has passed, naming what is not started."""
        if self.expired():
            raise DeadlinePassed(f"max_pass_seconds ({self.seconds:g}s) passed before {what}; "
                                 "the next pass carries on")


#: How long the watchdog lets a pass's last words take before it ends the process anyway.
LAST_WORDS_SECONDS = 2.0


def _say_last_words(deadline: Deadline) -> None:
    """Run the pass's `last_words` in a thread of their own, for LAST_WORDS_SECONDS at most."""
    def run() -> None:
        for words in deadline.last_words:
            try:
                words()
            except Exception:  # noqa: BLE001 - the process ends either way
                pass

    worker = threading.Thread(target=run, name="vcyclectl-last-words", daemon=True)
    worker.start()
    worker.join(LAST_WORDS_SECONDS)


def _exit_process(space: str, deadline: Deadline) -> None:
    """Write down what can be (`last_words`), then end this process now, saying why in one
    line on stderr.

    `os.write`, not `logging`: the stuck thread may hold the logging handler's lock."""
    _say_last_words(deadline)
    line = (f"{time.strftime('%Y-%m-%d %H:%M:%S')} ERROR watchdog: pass over {space} is "
            f"{deadline.seconds + deadline.grace + deadline.overdue():.0f}s old, past "
            f"max_pass_seconds ({deadline.seconds:g}s) + grace ({deadline.grace:g}s); ending "
            f"process {os.getpid()} so its lock is released (intent records make this safe)\n")
    try:
        os.write(2, line.encode())
    except OSError:
        pass
    os._exit(int(ExitStatus.SPACE_FAILED))


class Watchdog:
    """A daemon thread watching the pass in progress (`watching`), for as long as one is."""

    #: The thread looks again at least this often: a timed wait across a SIGSTOP returns
    #: once resumed anyway, this only bounds any surprise.
    TICK_SECONDS = 1.0

    def __init__(self, fire: Callable[[str, Deadline], None] = _exit_process) -> None:
        self._fire = fire
        self._cond = threading.Condition()
        self._current: tuple[str, Deadline] | None = None
        self._thread: threading.Thread | None = None
        self.fired: list[str] = []

    @contextmanager
    def watching(self, space: str, deadline: Deadline) -> Iterator[Deadline]:
        """Watch `deadline` (the pass over `space`) for as long as the block runs."""
        with self._cond:
            self._current = (space, deadline)
            self._cond.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="vcyclectl-watchdog",
                                                daemon=True)
                self._thread.start()
        try:
            yield deadline
        finally:
            with self._cond:
                self._current = None
                self._cond.notify_all()

    def _run(self) -> None:
        with self._cond:
            while True:
                current = self._current
                if current is None or current[1].finished:
                    # Nothing to watch: the thread ends (the next `watching` starts one),
                    # so a long-lived process (a test run, `serve`) never piles them up.
                    self._thread = None
                    return
                space, deadline = current
                overdue = deadline.overdue() if deadline.at is not None else None
                if overdue is None or overdue < 0:
                    wait = self.TICK_SECONDS if overdue is None else min(-overdue,
                                                                        self.TICK_SECONDS)
                    self._cond.wait(wait)
                    continue
                # Still under the condition: a pass that just ended cannot be ended here.
                self.fired.append(space)
                self._current = None
                self._fire(space, deadline)
