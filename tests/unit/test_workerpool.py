"""`serve`'s request pool (vcyclectl.feedback.workerpool): every job runs once on one of its
threads and its outcome reaches the callback the way a finished future would answer."""

from __future__ import annotations

import queue
import threading

import pytest

from vcyclectl.feedback.workerpool import Done, RequestPool


def test_results_and_errors_reach_the_callback_like_a_future() -> None:
    pool = RequestPool(3)
    got: queue.SimpleQueue[tuple[int, Done]] = queue.SimpleQueue()

    def work(n: int) -> int:
        if n % 5 == 0:
            raise ValueError(f"bad {n}")
        return n * n

    for n in range(1, 41):
        pool.submit_then(work, n, lambda done, n=n: got.put((n, done)))
    seen = dict(got.get(timeout=10) for _ in range(40))
    pool.shutdown(wait=True)
    assert sorted(seen) == list(range(1, 41))
    for n, done in seen.items():
        assert not done.cancelled() and done.done()
        if n % 5 == 0:
            with pytest.raises(ValueError, match=f"bad {n}"):
                done.result()
        else:
            assert done.result() == n * n


def test_jobs_wait_for_a_free_thread_and_are_counted_as_pending() -> None:
    pool = RequestPool(2)
    release = threading.Event()
    started: queue.SimpleQueue[int] = queue.SimpleQueue()
    finished: queue.SimpleQueue[int] = queue.SimpleQueue()

    def hold(n: int) -> int:
        started.put(n)
        release.wait(10)
        return n

    for n in range(5):
        pool.submit_then(hold, n, lambda done: finished.put(done.result()))
    assert {started.get(timeout=10), started.get(timeout=10)} <= set(range(5))
    assert pool.pending() == 3  # two threads busy, three jobs queued: the guard's backlog
    release.set()
    assert sorted(finished.get(timeout=10) for _ in range(5)) == list(range(5))
    assert pool.pending() == 0
    pool.shutdown(wait=True)


def test_a_shut_down_pool_takes_no_job_and_its_threads_end() -> None:
    pool = RequestPool(2)
    done: queue.SimpleQueue[Done] = queue.SimpleQueue()
    pool.submit_then(lambda n: n, 7, done.put)
    assert done.get(timeout=10).result() == 7
    pool.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        pool.submit_then(lambda n: n, 8, done.put)
    assert not any(t.is_alive() for t in pool._threads)


def test_an_unused_pool_starts_no_thread() -> None:
    pool = RequestPool(4)
    pool.shutdown(wait=True)  # a worker whose application never loaded: nothing to join
    assert not any(t.is_alive() or t.ident for t in pool._threads)
