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
guards), `apply` (plan and act, lock held), `result` (what a pass did) and `pipes`
(Vacuum Pipes refresh); `reconcile_space` here runs them for one space.
"""

from __future__ import annotations

import socket
import time
from typing import Callable

from vcyclectl import log
from vcyclectl.clouds.contract import Cloud
from vcyclectl.config import Config, Space
from vcyclectl.core.progress import Progress
from vcyclectl.errors import (CloudError, ConfigError, LockTimeout, StateError,
                              VcyclectlError)
from vcyclectl.reconcile.apply import Pass, finished_entry
from vcyclectl.reconcile.observe import (EMPTY_LISTING_GUARD, Observed, StaleObservation,
                                        host_clock, vanished_fleet)
from vcyclectl.reconcile.result import SpaceResult
from vcyclectl.state.lock import Busy, SpaceLock, describe_holder
from vcyclectl.state.store import StateDir

__all__ = ["EMPTY_LISTING_GUARD", "Observed", "Pass", "SpaceResult", "StaleObservation",
           "finished_entry", "reconcile_space", "vanished_fleet"]


def reconcile_space(config: Config, space: Space, state_id: str, *, wait: float | None = None,
                    dry_run: bool = False, progress: Progress | None = None,
                    cloud: Cloud | None = None, accept_empty: bool = False,
                    clock: Callable[[], float] = time.time) -> SpaceResult:
    """One pass over one space, never raising for cloud or state trouble.

    `clock` is this host's wall clock (a test gives a skewed one)."""
    clock = host_clock(clock)
    started = time.monotonic()
    store = StateDir(config.state_dir).space(space.name)
    result = SpaceResult(space.name, "done")
    lock = SpaceLock(store.path, log.PASS_ID)
    try:
        if not dry_run:
            store.ensure()
            asked = time.monotonic()
            try:
                lock.acquire(wait)
                result.lock_seconds = time.monotonic() - asked
            except Busy:
                result.outcome = "skipped"
                result.reason = f"locked by {describe_holder(lock.holder())}"
                return result
            if space.pipes:  # under the lock, so hosts take turns; never raises
                from vcyclectl.reconcile.pipes import refresh_space

                space = refresh_space(config, space)
        run = Pass(config, space, state_id, cloud=cloud, progress=progress, now=clock)
        skew = 0.0 if dry_run else StateDir(config.state_dir).clock_skew(clock)
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
            return result
        gone = vanished_fleet(observed)
        if gone >= EMPTY_LISTING_GUARD and not accept_empty:
            result.outcome = "failed"
            result.reason = (f"the cloud lists none of the {gone} machines recorded for this "
                             "space; nothing done. If they really are gone, run `vcyclectl "
                             f"reconcile {space.name} --accept-empty-listing` once")
            return result
        result.plan = plan
        if not dry_run:
            run.check_fresh(observed)
            run.apply(plan, observed, result)
            store.write_last_pass({
                "pass_id": log.PASS_ID, "finished_at": time.time(), "outcome": result.outcome,
                "created": result.created, "deleted": result.deleted, "adopted": result.adopted,
                "forgotten": result.forgotten, "failed_calls": result.failed_calls,
                "seconds": round(time.monotonic() - started, 3), "notes": list(plan.notes),
                "host": socket.gethostname(), "state_id": state_id,
                "clock_skew_seconds": round(skew, 3),
                "succeeded_at": time.time() if result.outcome == "done"
                else (store.last_pass() or {}).get("succeeded_at")})
        return result
    except LockTimeout as exc:
        result.outcome, result.reason = "timeout", str(exc)
        return result
    except (StateError, ConfigError, CloudError, OSError) as exc:
        result.outcome, result.reason = "failed", str(exc)
        return result
    except VcyclectlError as exc:
        result.outcome, result.reason = "failed", str(exc)
        return result
    except Exception as exc:  # a bug: fail this space only, the others still get their pass
        import traceback

        log.warning("internal error", space=space.name, error=f"{type(exc).__name__}: {exc}")
        log.debug("traceback", trace=traceback.format_exc())
        result.outcome = "failed"
        result.reason = f"internal error: {type(exc).__name__}: {exc} (please report it)"
        return result
    finally:
        lock.release()
        result.seconds = time.monotonic() - started
        log.info("space done", space=space.name, outcome=result.outcome,
                 created=result.created, deleted=result.deleted, seconds=f"{result.seconds:.2f}")
