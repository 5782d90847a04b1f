"""Slow clients must not stop `serve`: a per-worker guard closes a request still being sent
after `request_timeout`, and bounds how many of a worker's threads slow requests may hold,
so heartbeats keep flowing while someone drips bytes at the server (issue 22). The worker
class built here (`bounded_worker_class`) also trims gunicorn's per-request overhead
(issue 17): its pool, its liveness touches, its records read and frozen before serving."""

from __future__ import annotations

import gc
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from vcyclectl import log
from vcyclectl.feedback.workerpool import RequestPool



if TYPE_CHECKING:
    from vcyclectl.feedback.server import ServeOptions


@dataclass
class _Reading:
    """A worker thread's current request while the client is still sending it."""

    conn: Any
    started: float
    reading: bool = True


class SlowClientGuard:
    """Bounds how long, and how many, requests may hold a worker thread while their client
    is still sending them.

    Gunicorn's threaded worker hands a connection to a thread as soon as its first byte
    arrives, and the thread then reads the request with blocking reads: a client that sends
    a byte every few seconds holds that thread forever, and 16 such clients (workers x
    threads) once stopped every heartbeat. A per-read socket timeout would not help (each
    byte resets it), so the guard keeps a deadline per request instead: a reaper thread
    shuts down the socket of any request still being read after `request_timeout`, and
    of the oldest slow ones (reading for more than `slow_after`) beyond `max_slow`, so
    the other threads stay free for the requests that arrive whole at once, as every
    heartbeat does; while connections wait for a thread (`backlog`), every slow one is
    cut, so a queue of slow clients drains at `threads / slow_after` per second. Time the
    application spends once the request is read (an fsync on a slow filesystem) is
    never counted.
    """

    def __init__(self, request_timeout: float, slow_after: float, max_slow: int,
                 backlog: Callable[[], int] = lambda: 0) -> None:
        self.request_timeout = request_timeout
        self.slow_after = slow_after
        self.max_slow = max_slow
        self.backlog = backlog
        self._lock = threading.Lock()
        self._requests: dict[int, _Reading] = {}
        self.cut = 0

    def begin(self, conn: Any) -> None:
        with self._lock:
            self._requests[threading.get_ident()] = _Reading(conn, time.monotonic())

    def read_done(self) -> None:
        with self._lock:
            current = self._requests.get(threading.get_ident())
            if current is not None:
                current.reading = False

    def end(self) -> None:
        with self._lock:
            self._requests.pop(threading.get_ident(), None)

    def reap(self, now: float) -> int:
        """Cut the requests over their deadline, and the oldest slow ones over the bound."""
        with self._lock:
            reading = sorted((r for r in self._requests.values() if r.reading),
                             key=lambda r: r.started)
            late = [r for r in reading if now - r.started > self.request_timeout]
            slow = [r for r in reading if now - r.started > self.slow_after and r not in late]
            allowed = 0 if slow and self.backlog() > 0 else self.max_slow
            victims = late + slow[:max(0, len(slow) - allowed)]
            for r in victims:
                r.reading = False  # cut once
                try:  # the base method: no TLS close_notify from this thread
                    socket.socket.shutdown(r.conn.sock, socket.SHUT_RDWR)
                except (OSError, AttributeError):
                    pass
            self.cut += len(victims)
        return len(victims)

    def run_forever(self, interval: float = 0.1) -> None:
        while True:
            time.sleep(interval)
            if self.reap(time.monotonic()):
                log.debug("serve: cut slow requests", total=self.cut)


#: The guard of this worker process (set after the fork); None outside `serve`.
_GUARD: SlowClientGuard | None = None


def request_read() -> None:
    """The application has the whole request: its reading time is over."""
    if _GUARD is not None:
        _GUARD.read_done()


#: How often a worker tells the master it is alive (gunicorn's `notify`, a `utime` of its
#: liveness file): gunicorn does it on every turn of the event loop, about twice per
#: request; the master only checks it against `timeout` (30 s).
NOTIFY_SECONDS = 1.0


def bounded_worker_class(options: "ServeOptions") -> type:
    """Gunicorn's threaded worker with a `SlowClientGuard` around each request, its requests
    run by a `RequestPool` (vcyclectl.feedback.workerpool says why) where the gunicorn
    installed hands them over the way this was written for, its liveness file touched at
    most once per `NOTIFY_SECONDS`, and the app's records read (`FeedbackApp.warm`) and
    frozen out of the cyclic collector before it takes a connection."""
    from gunicorn.workers.gthread import ThreadWorker  # type: ignore[import-untyped]

    lean_pool = all(callable(getattr(ThreadWorker, name, None))
                    for name in ("get_thread_pool", "enqueue_req", "finish_request"))

    class BoundedThreadWorker(ThreadWorker):  # type: ignore[misc]
        _notified_at = float("-inf")
        #: The clock `notify` reads (a test sets its own, so its verdict needs no timing).
        clock: Callable[[], float] = time.monotonic  # a builtin: not bound as a method

        def run(self) -> None:
            warm = getattr(self.wsgi, "warm", None)
            if callable(warm):
                warm()
            # Everything loaded so far, the machine records above all, lives as long as
            # the worker: out of the cyclic collector's sight, a full collection no longer
            # walks it (7 ms on an idle core for 10,000 records, 60 ms on a busy one,
            # with every thread of the worker stopped). Dropped objects are still freed by
            # reference counting; only one in a reference cycle would stay, and the records
            # (plain JSON values, replaced whole by a replay) form none.
            gc.freeze()
            super().run()

        def notify(self) -> None:
            now = self.clock()
            if now - self._notified_at >= NOTIFY_SECONDS:
                self._notified_at = now
                super().notify()

        def get_thread_pool(self) -> Any:
            if lean_pool:
                return RequestPool(self.cfg.threads)
            return super().get_thread_pool()

        def enqueue_req(self, conn: Any) -> None:
            pool = self.tpool
            if not isinstance(pool, RequestPool):
                super().enqueue_req(conn)
                return
            defer = self.method_queue.defer
            finish = self.finish_request
            pool.submit_then(self.handle, conn, lambda done: defer(finish, conn, done))

        def init_process(self) -> None:
            global _GUARD
            _GUARD = SlowClientGuard(options.request_timeout, options.slow_request_seconds,
                                     max(1, options.threads // 2), self.waiting_for_a_thread)
            threading.Thread(target=_GUARD.run_forever, name="vcyclectl-slow-clients",
                             daemon=True).start()
            super().init_process()

        def waiting_for_a_thread(self) -> int:
            pool = getattr(self, "tpool", None)
            if isinstance(pool, RequestPool):
                return pool.pending()
            queue = getattr(pool, "_work_queue", None)  # ThreadPoolExecutor's own queue
            return int(queue.qsize()) if queue is not None else 0

        def handle(self, conn: Any) -> Any:
            guard = _GUARD
            if guard is None:
                return super().handle(conn)
            guard.begin(conn)
            try:
                return super().handle(conn)
            finally:
                guard.end()

    return BoundedThreadWorker


