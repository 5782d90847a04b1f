"""The threads a `serve` worker hands its requests to: a plain queue and a callback, in place
of gunicorn's `concurrent.futures` pool.

Gunicorn's threaded worker submits every request to a `ThreadPoolExecutor` and waits for
the future's done-callback to hand the connection back to its event loop. Per request that
is a `Future` (with its `Condition` and `RLock`), a work item, a semaphore look-up and a
callback list, all in Python: about 15 µs on an idle core, about as much again on a busy
one, for what is one queue put and one call (`benchmarks/bench_serve.py`). `RequestPool`
does only that: each job is `(function, argument, then)`; a thread runs `function(argument)`
and passes the outcome to `then` as a `Done`, which answers `result()` and `cancelled()`
the way the future did, so gunicorn's `finish_request` takes it unchanged.

Like the executor's, the threads are not daemons and `shutdown` lets each finish the
request it holds. They start with the first job, all of them (the executor adds one per
job until it has `threads`): a worker whose application fails to load exits at once, with
no idle thread to wait for.
`pending()` is what waits for a thread, which `SlowClientGuard` reads as the backlog.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable


class Done:
    """A finished job, answering like a `concurrent.futures.Future` that is done."""

    __slots__ = ("_value", "_error")

    def __init__(self, value: Any, error: BaseException | None = None) -> None:
        self._value = value
        self._error = error

    def cancelled(self) -> bool:
        return False

    def done(self) -> bool:
        return True

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value


Job = tuple[Callable[[Any], Any], Any, Callable[[Done], None]]


class RequestPool:
    """A fixed set of threads taking `(function, argument, then)` jobs from one queue."""

    def __init__(self, threads: int, name: str = "vcyclectl-request") -> None:
        self._work_queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._serve, name=f"{name}-{i}")
                         for i in range(max(1, threads))]
        self._started = False
        self._stopped = False
        self._lock = threading.Lock()

    def submit_then(self, function: Callable[[Any], Any], argument: Any,
                    then: Callable[[Done], None]) -> None:
        """Run `function(argument)` on a free thread, then `then(Done(...))` on that thread."""
        with self._lock:  # never a job behind the stop marks, where no thread would see it
            if self._stopped:
                raise RuntimeError("the request pool is shut down")
            if not self._started:
                for thread in self._threads:
                    thread.start()
                self._started = True
            self._work_queue.put((function, argument, then))

    def pending(self) -> int:
        """Jobs waiting for a thread."""
        return self._work_queue.qsize()

    def shutdown(self, wait: bool = True) -> None:
        """No new jobs; each thread ends after the jobs queued before this call."""
        with self._lock:
            if not self._stopped:
                self._stopped = True
                for _ in self._threads:
                    self._work_queue.put(None)
        if wait and self._started:
            for thread in self._threads:
                thread.join()

    def _serve(self) -> None:
        while True:
            job = self._work_queue.get()
            if job is None:
                return
            function, argument, then = job
            try:
                done = Done(function(argument))
            except BaseException as exc:  # handed over, as a future's set_exception does
                done = Done(None, exc)
            then(done)
            del job, function, argument, then, done  # hold no connection while idle
