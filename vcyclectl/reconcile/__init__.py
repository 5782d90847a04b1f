"""One pass over one space: lock → observe → plan → apply → record.

Returns a `SpaceResult` value (done / skipped because locked elsewhere / failed and why);
the CLI turns results into exit codes in one place. Safety rules kept here:
- no action on a partial view: a listing that fails after retries skips the space;
- intent before act: creations are recorded before the create calls, deletions marked
  before the delete calls, so a pass killed at any instant leaves nothing untracked;
- cloud calls run in a bounded thread pool with jittered retries for transient errors;
  a quota refusal stops further creation in this space for this pass;
- one space's failure never stops the others.

The steps live in `observe` (list and read, with the stale-observation and empty-listing
guards), `apply` (plan and act, lock held), `result` (what a pass did), `pipes`
(Vacuum Pipes refresh), `turns` (one pass per space per interval, whichever host is
first) and `deadline` (`max_pass_seconds` and the watchdog); `reconcile_space` here runs
them for one space.
"""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from typing import Callable

from vcyclectl import log
from vcyclectl.clouds import retries
from vcyclectl.clouds.contract import Cloud
from vcyclectl.config import Config, Space
from vcyclectl.core.progress import Progress
from vcyclectl.errors import (CloudError, ConfigError, LockTimeout, StateError,
                              VcyclectlError)
from vcyclectl.reconcile.apply import Pass
from vcyclectl.reconcile.deadline import Deadline, DeadlinePassed, Watchdog
from vcyclectl.reconcile.observe import (EMPTY_LISTING_GUARD, Observed, StaleObservation,
                                        host_clock, vanished_fleet)
from vcyclectl.reconcile.result import SpaceResult, finished_entry
from vcyclectl.reconcile.turns import too_soon, visiting_order
from vcyclectl.redact import redact_text
from vcyclectl.state.lock import Busy, SpaceLock, describe_holder
from vcyclectl.state.store import SpaceState, StateDir

__all__ = ["EMPTY_LISTING_GUARD", "Deadline", "DeadlinePassed", "Observed", "Pass",
           "SpaceResult", "StaleObservation", "Watchdog", "finished_entry", "reconcile_space",
           "vanished_fleet", "visiting_order"]


def reconcile_space(config: Config, space: Space, state_id: str, *, wait: float | None = None,
                    dry_run: bool = False, progress: Progress | None = None,
                    cloud: Cloud | None = None, accept_empty: bool = False, force: bool = False,
                    deadline: Deadline | None = None,
                    clock: Callable[[], float] = time.time) -> SpaceResult:
    """One pass over one space, never raising for cloud or state trouble.

    With the lock taken, a space passed under `min_pass_interval_seconds` ago (by any host)
    is skipped unless `force` (or `accept_empty`, an operator's one-off); `deadline` (by
    default `max_pass_seconds` from now) starts with the lock. `clock` is this host's wall
    clock (a test gives a skewed one)."""
    clock = host_clock(clock)
    started = time.monotonic()
    store = StateDir(config.state_dir).space(space.name)
    result = SpaceResult(space.name, "done")
    lock = SpaceLock(store.path, log.PASS_ID)
    deadline = deadline or Deadline(space.max_pass_seconds)
    calls_before = Counter(retries.CALLS)
    passing = False  # the lock is ours and the space is due: this pass is recorded
    try:
        if not dry_run:
            store.ensure()
            asked = time.monotonic()
            try:
                lock.acquire(wait)
                result.lock_seconds = time.monotonic() - asked
            except Busy:
                result.outcome, result.skipped = "skipped", "locked"
                result.reason = f"locked by {describe_holder(lock.holder())}"
                return result
            deadline.start()
            why = None if force or accept_empty else too_soon(
                store.last_pass(), space.min_pass_interval_seconds, clock())
            if why:
                result.outcome, result.skipped, result.reason = "skipped", "interval", why
                return result
            passing = True
            deadline.last_words.append(lambda: _watchdog_ended(store, result, state_id,
                                                               deadline, clock))
            if space.pipes:  # under the lock, so hosts take turns; never raises
                from vcyclectl.reconcile.pipes import refresh_space

                space = refresh_space(config, space)
        _pass(config, space, state_id, result, dry_run=dry_run, progress=progress, cloud=cloud,
              accept_empty=accept_empty, deadline=deadline, clock=clock)
        return result
    except LockTimeout as exc:
        result.outcome, result.reason = "timeout", str(exc)
        return result
    except (StateError, ConfigError, CloudError, OSError) as exc:
        result.outcome, result.reason = "failed", str(exc)
        return result
    except VcyclectlError as exc:
        result.outcome, result.reason = "failed", str(exc)
        result.deadline_passed = isinstance(exc, DeadlinePassed)
        return result
    except Exception as exc:  # a bug: fail this space only, the others still get their pass
        import traceback

        log.warning("internal error", space=space.name, error=f"{type(exc).__name__}: {exc}")
        log.debug("traceback", trace=traceback.format_exc())
        result.outcome = "failed"
        result.reason = f"internal error: {type(exc).__name__}: {exc} (please report it)"
        return result
    finally:
        calls = Counter(retries.CALLS)
        calls.subtract(calls_before)
        for (call, _outcome), n in calls.items():
            if n > 0:
                result.calls[call] = result.calls.get(call, 0) + n
        result.seconds = time.monotonic() - started
        if passing:
            _record_pass(store, result, state_id, clock)
        lock.release()
        deadline.finish()
        log.info("space done", space=space.name, outcome=result.outcome,
                 created=result.created, deleted=result.deleted, seconds=f"{result.seconds:.2f}")


def _pass(config: Config, space: Space, state_id: str, result: SpaceResult, *, dry_run: bool,
          progress: Progress | None, cloud: Cloud | None, accept_empty: bool,
          deadline: Deadline, clock: Callable[[], float]) -> None:
    """Observe, plan and (unless a dry run) act, filling in `result`; raises for failures."""
    run = Pass(config, space, state_id, cloud=cloud, progress=progress, now=clock,
               deadline=deadline)
    skew = 0.0 if dry_run else StateDir(config.state_dir).clock_skew(clock)
    result.clock_skew = skew
    untrusted = ""
    if abs(skew) > config.max_clock_skew_seconds:
        untrusted = (f"this host's clock is {abs(skew):.0f}s "
                     f"{'ahead of' if skew > 0 else 'behind'} the state directory's "
                     f"filesystem (max_clock_skew_seconds {config.max_clock_skew_seconds:g})")
        log.warning("clock skew: time-based deletions withheld", space=space.name,
                    host=socket.gethostname(), skew_seconds=f"{skew:.1f}")
    try:
        plan, observed = run.plan(untrusted)
    except CloudError as exc:
        result.outcome, result.reason = "failed", f"listing failed, nothing done: {exc}"
        return
    gone = vanished_fleet(observed)
    if gone >= EMPTY_LISTING_GUARD and not accept_empty:
        result.outcome = "failed"
        result.reason = (f"the cloud lists none of the {gone} machines recorded for this "
                         "space; nothing done. If they really are gone, run `vcyclectl "
                         f"reconcile {space.name} --accept-empty-listing` once")
        return
    result.plan = plan
    if not dry_run:
        deadline.check("acting on the listing")
        run.check_fresh(observed)
        run.apply(plan, observed, result)


def _watchdog_ended(store: SpaceState, result: SpaceResult, state_id: str, deadline: Deadline,
                    clock: Callable[[], float]) -> None:
    """The watchdog is ending this process: `last_pass.json` says so (for `status`), as a
    pass cut short by its deadline, which the next host carries on at once."""
    result.outcome, result.deadline_passed = "failed", True
    result.reason = (f"ended by its watchdog past max_pass_seconds ({deadline.seconds:g}s) + "
                     f"grace ({deadline.grace:g}s), stuck in a call; the next pass carries on")
    _record_pass(store, result, state_id, clock)


def _record_pass(store: SpaceState, result: SpaceResult, state_id: str,
                 clock: Callable[[], float]) -> None:
    """`last_pass.json`: what this pass did, whatever its outcome. Its `finished_at` is what
    every host's `min_pass_interval_seconds` counts from, unless the pass ran out of
    `max_pass_seconds` (`deadline_passed`). A pass ended by a kill or its watchdog writes
    none. Either way another host takes the space over at once."""
    now = clock()
    try:
        store.write_last_pass({
            "pass_id": log.PASS_ID, "finished_at": now, "outcome": result.outcome,
            "reason": redact_text(result.reason) if result.outcome != "done" else "",
            "created": result.created, "deleted": result.deleted, "adopted": result.adopted,
            "forgotten": result.forgotten, "failed_calls": result.failed_calls,
            "not_started": result.not_started, "calls": dict(result.calls),
            "deadline_passed": result.deadline_passed,
            "seconds": round(result.seconds, 3),
            "notes": list(result.plan.notes) if result.plan else [],
            "host": socket.gethostname(), "pid": os.getpid(), "state_id": state_id,
            "clock_skew_seconds": round(result.clock_skew, 3),
            "succeeded_at": now if result.outcome == "done"
            else (store.last_pass() or {}).get("succeeded_at")})
    except OSError as exc:
        log.warning("last_pass.json not written", space=store.name, error=str(exc))
