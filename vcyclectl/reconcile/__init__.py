"""One pass over one space: lock → observe → plan → apply → record.

Returns a `SpaceResult` value (done / skipped because locked elsewhere / failed and why);
the CLI turns results into exit codes in one place. Safety rules kept here:
- no action on a partial view: a listing that fails after retries skips the space;
- intent before act: creations are recorded before the create calls, deletions marked
  before the delete calls, so a pass killed at any instant leaves nothing untracked;
- cloud calls run in a bounded thread pool with jittered retries for transient errors;
  a quota refusal stops further creation in this space for this pass;
- one space's failure never stops the others.
"""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping, TypeVar

from vcyclectl import log

from vcyclectl.core import planner

from vcyclectl.core import rules
from vcyclectl.clouds.contract import Cloud
from vcyclectl.clouds.registry import build_cloud
from vcyclectl.clouds.retries import with_retries
from vcyclectl.core.progress import NoProgress, Progress
from vcyclectl.config import Config, Space
from vcyclectl.errors import (CloudError, ConfigError, Fatal, LockTimeout, QuotaExceeded,
                              StateError, VcyclectlError)
from vcyclectl.state.lock import Busy, SpaceLock, describe_holder
from vcyclectl.core.model import Action, ActionKind, CloudMachine, Flavor, MachineSpec, MachineState, Plan
from vcyclectl.core.names import random_names
from vcyclectl.core.provisioning import SpacePolicy
from vcyclectl.core.records import DrainMark, MachineRecord
from vcyclectl.state.store import SpaceState, StateDir
from vcyclectl.vm import userdata

T = TypeVar("T")
Outcome = Literal["done", "skipped", "failed", "timeout"]


@dataclass
class SpaceResult:
    """What a pass over one space did; `outcome` decides the exit code."""

    space: str
    outcome: Outcome
    reason: str = ""
    plan: Plan | None = None
    created: int = 0
    deleted: int = 0
    adopted: int = 0
    forgotten: int = 0
    failed_calls: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    lock_seconds: float = 0.0  # for metrics (vcyclectl.monitoring): waited for the lock,
    events: list[dict[str, Any]] = field(default_factory=list)  # what was done,
    finished: list[dict[str, Any]] = field(default_factory=list)  # and what ended

    def summary(self) -> str:
        if self.outcome in ("skipped", "timeout"):
            return f"{self.space}: {self.outcome}, {self.reason}"
        if self.outcome == "failed" and self.plan is None:
            return f"{self.space}: FAILED, {self.reason}"
        text = (f"{self.space}: created {self.created}, deleted {self.deleted}, adopted "
                f"{self.adopted}, forgot {self.forgotten} in {self.seconds:.1f}s")
        if self.outcome == "failed":
            text += f"; FAILED: {self.reason}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"space": self.space, "outcome": self.outcome, "reason": self.reason,
                "created": self.created, "deleted": self.deleted, "adopted": self.adopted,
                "forgotten": self.forgotten, "failed_calls": self.failed_calls,
                "seconds": round(self.seconds, 3), "errors": self.errors,
                "plan": self.plan.to_json() if self.plan else None}


@dataclass
class Observed:
    machines: list[CloudMachine]
    flavors: list[Flavor]
    observation: planner.Observation


class _HeartbeatFiles(Mapping[str, str]):
    """machine name -> its machinetype's heartbeat file, looked up only for the machines that
    reported something (a dict of every record would cost more than the lookups)."""

    def __init__(self, space: Space, records: Mapping[str, MachineRecord]) -> None:
        self.space, self.records = space, records

    def __getitem__(self, name: str) -> str:
        rec = self.records.get(name)
        mt = self.space.machinetypes.get(rec.machinetype) if rec else None
        if mt is None:
            raise KeyError(name)
        return mt.heartbeat_name

    def __iter__(self) -> Iterator[str]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)


def observe(space: Space, cloud: Cloud, store: SpaceState) -> Observed:
    """List the cloud (all pages, retried) and read the state directory."""
    machines = with_retries(cloud.list_machines, "list")
    flavors = with_retries(cloud.flavors, "flavors")
    records = store.records()
    observation = planner.Observation(
        machines=machines, records=records, reports=store.reports(_HeartbeatFiles(space, records)),
        drains=store.drains(), backoff=store.backoff(), flavors=flavors)
    return Observed(machines, flavors, observation)


class Pass:
    """Everything one pass over one space needs, and the code that applies its plan."""

    def __init__(self, config: Config, space: Space, state_id: str, *,
                 cloud: Cloud | None = None, progress: Progress | None = None,
                 names: planner.NameSource | None = None, now: Callable[[], float] = time.time):
        self.config = config
        self.space = space
        self.state_id = state_id
        self.store = StateDir(config.state_dir).space(space.name)
        self._cloud = cloud
        self.progress = progress or NoProgress()
        self.names = names or random_names(space.slug)
        self.now = now
        self.events: list[dict[str, Any]] = []
        self._events_lock = threading.Lock()
        self._policy_drains: set[str] | None = None

    @property
    def cloud(self) -> Cloud:
        if self._cloud is None:
            self._cloud = build_cloud(self.config, self.space, self.state_id)
        return self._cloud

    def plan(self) -> tuple[Plan, Observed]:
        observed = observe(self.space, self.cloud, self.store)
        if self.config.has_policy:
            observed.observation = replace(observed.observation, policy=self.policy())
        return planner.plan(self.space, observed.observation, self.now(), self.names), observed

    def policy(self) -> SpacePolicy | None:
        """The provisioning policy for this pass, computed afresh from the shared state
        directory (communities, campaigns, this space's budget ledger); docs/policy.md."""
        from vcyclectl.policy.budget import gather_policy

        return gather_policy(self.config, self.space, self.store, self.now())

    # -- apply -------------------------------------------------------------------------
    def apply(self, plan: Plan, observed: Observed, result: SpaceResult) -> None:
        records = dict(observed.observation.records)
        now = self.now()
        self._apply_bookkeeping(plan, records, now, result)
        self.store.record_aborts(plan.aborts, {a.machinetype: a.message or "" for a in
                                               plan.actions if a.abort})
        confirmed = self._apply_deletes(plan.deletes, records, now, result)
        creates = plan.creates
        if plan.deletes:
            creates = self._replan_creates(plan, observed, records, confirmed)
        self._apply_creates(creates, records, result)
        self.store.add_events(self.events)
        result.events = list(self.events)
        if self.config.budgets:  # the ledger, under the lock: finished lines folded in
            from vcyclectl.policy.budget import update_ledger

            update_ledger(self.store)
        self.store.compact(records)
        from vcyclectl.state.outputs import cleanup_outputs  # joboutputs of long-ended machines go

        cleanup_outputs(self.store, records, now,
                        self.config.joboutputs_keep_seconds)

    def _replan_creates(self, plan: Plan, observed: Observed, records: dict[str, MachineRecord],
                        confirmed: set[str]) -> list[Action]:
        """Creations once deletions are done: only capacity the cloud has confirmed free is
        reused, so a delete that failed never lets the space overshoot its limits."""
        backoff = rules.merged_aborts(observed.observation.backoff, plan.aborts)
        observation = planner.Observation(
            machines=[m for m in observed.machines if m.name not in confirmed],
            records=dict(records), reports=observed.observation.reports,
            drains=observed.observation.drains, backoff=backoff, flavors=observed.flavors,
            policy=self.policy() if observed.observation.policy is not None else None)
        return planner.plan(self.space, observation, self.now(), self.names, max_deletes=0).creates

    def _event(self, action: str, name: str, machinetype: str, **extra: Any) -> None:
        entry = {"t": round(self.now(), 3), "pass": log.PASS_ID, "event": action, "machine": name,
                 "machinetype": machinetype}
        entry.update({k: v for k, v in extra.items() if v is not None})
        with self._events_lock:
            self.events.append(entry)

    def _clear_policy_drain(self, name: str) -> None:
        """A machine that made room is gone: its policy drain mark goes with it."""
        if self._policy_drains is None:
            self._policy_drains = {n for n, m in self.store.drains().machines.items()
                                   if m.by == "policy"}
        if name in self._policy_drains:
            self.store.clear_drain(machine=name)

    def _apply_bookkeeping(self, plan: Plan, records: dict[str, MachineRecord], now: float,
                           result: SpaceResult) -> None:
        puts: list[MachineRecord] = []
        dels: list[str] = []
        finished: list[dict[str, Any]] = []
        for action in plan.actions:
            if action.kind is ActionKind.ADOPT:
                rec = MachineRecord.from_record(action.changes)
                records[rec.name] = rec
                puts.append(rec)
                result.adopted += 1
                self._event("adopt", action.name, action.machinetype, reason=action.reason)
            elif action.kind is ActionKind.UPDATE and planner.POLICY_DRAIN in action.changes:
                self.store.set_drain(DrainMark(target=action.name, since=float(
                    action.changes[planner.POLICY_DRAIN]), reason=action.reason, by="policy"),
                    machine=action.name)
                self._event("drain", action.name, action.machinetype, reason=action.reason)
            elif action.kind is ActionKind.UPDATE and action.name in records:
                rec = records[action.name].with_changes(**action.changes)
                records[rec.name] = rec
                puts.append(rec)
            elif action.kind is ActionKind.FORGET:
                old = records.pop(action.name, None)
                dels.append(action.name)
                if self.config.has_policy:
                    self._clear_policy_drain(action.name)
                result.forgotten += 1
                if old is not None and not old.finished:
                    finished.append(finished_entry(old, now, action))
                self._event("forget", action.name, action.machinetype, reason=action.reason,
                            message=action.message, abort=action.abort or None,
                            preempted=action.preempted or None)
        self.store.put_records(puts)
        self.store.delete_records(dels)
        self.store.add_finished(finished)
        result.finished.extend(finished)

    def _apply_deletes(self, deletes: list[Action], records: dict[str, MachineRecord], now: float,
                       result: SpaceResult) -> set[str]:
        """Mark, then delete; the names whose deletion the cloud confirmed."""
        confirmed: set[str] = set()
        if not deletes:
            return confirmed
        marked: list[MachineRecord] = []
        finished: list[dict[str, Any]] = []
        for action in deletes:
            rec = records.get(action.name)
            if rec is None:
                continue
            if not rec.finished:
                finished.append(finished_entry(rec, now, action))
            rec = rec.with_changes(deleting_at=rec.deleting_at or now,
                                   message=rec.message or action.message, finished=True)
            records[rec.name] = rec
            marked.append(rec)
        self.store.put_records(marked)  # marked before the delete calls: intent before act
        self.store.add_finished(finished)
        result.finished.extend(finished)
        self.progress.start(f"{self.space.name}: deleting", len(deletes))

        def delete_one(action: Action) -> None:
            assert action.machine is not None
            machine = action.machine
            try:
                with_retries(lambda: self.cloud.delete(machine), "delete")
                with self._events_lock:
                    confirmed.add(action.name)
                    result.deleted += 1
                self._event("delete", action.name, action.machinetype, reason=action.reason,
                            message=action.message, abort=action.abort or None,
                            preempted=action.preempted or None)
            except CloudError as exc:
                result.failed_calls += 1
                result.errors.append(f"delete {action.name}: {exc}")
                self._event("delete-failed", action.name, action.machinetype, error=str(exc))
                log.warning("delete failed", space=self.space.name, machine=action.name,
                            error=str(exc))
            finally:
                self.progress.advance()

        self._run_pool(delete_one, deletes)
        self.progress.finish()
        return confirmed

    def _apply_creates(self, creates: list[Action], records: dict[str, MachineRecord],
                       result: SpaceResult) -> None:
        if not creates:
            return
        templates: dict[str, userdata.Template | None] = {}
        broken: set[str] = set()
        runnable: list[tuple[Action, MachineSpec]] = []
        for action in creates:
            mt = self.space.machinetypes[action.machinetype]
            if mt.name not in templates and mt.name not in broken:
                try:
                    templates[mt.name] = userdata.load_template(self.space, mt)
                except ConfigError as exc:
                    broken.add(mt.name)
                    result.errors.append(str(exc))
                    result.outcome, result.reason = "failed", f"user_data: {exc}"
                    log.warning("user_data broken, not creating", space=self.space.name,
                                machinetype=mt.name, error=str(exc))
            if mt.name in broken:
                continue
            assert action.flavor is not None
            spec = MachineSpec(
                name=action.name, space=self.space.name, machinetype=mt.name,
                flavor=action.flavor, image=mt.image, state_id=self.state_id,
                user_data=userdata.render(templates[mt.name], config=self.config,
                                          space=self.space, mt=mt, machine=action.name,
                                          token=self.machine_token(action.name)))
            runnable.append((action, spec))
        now = self.now()
        intents = [MachineRecord(
            name=spec.name, space=spec.space, machinetype=spec.machinetype,
            state=MachineState.CREATING, processors=spec.processors, created_at=now,
            flavor=spec.flavor.name, hs06=spec.processors *
            self.space.machinetypes[spec.machinetype].hs06_per_processor,
            price_per_hour=spec.flavor.price_per_hour, spot=spec.flavor.spot)
            for _, spec in runnable]
        self.store.put_records(intents)  # intent before act
        for rec in intents:
            records[rec.name] = rec
        stop = threading.Event()
        refused: list[str] = []
        created: list[MachineRecord] = []
        lock = threading.Lock()
        self.progress.start(f"{self.space.name}: creating", len(runnable))

        def create_one(item: tuple[Action, MachineSpec]) -> None:
            action, spec = item
            try:
                if stop.is_set():
                    with lock:
                        refused.append(spec.name)
                    return
                try:
                    machine = with_retries(lambda: self.cloud.create(spec), "create")
                except (QuotaExceeded, Fatal) as exc:
                    stop.set()
                    with lock:
                        refused.append(spec.name)
                        result.failed_calls += 1
                        result.errors.append(f"create {spec.name}: {exc}")
                        if isinstance(exc, Fatal):
                            result.outcome, result.reason = "failed", str(exc)
                    self._event("create-refused", spec.name, spec.machinetype, error=str(exc))
                    log.warning("create refused", space=self.space.name, machine=spec.name,
                                error=str(exc))
                    return
                except CloudError as exc:
                    # Maybe created, maybe not: keep the intent; the next listing decides.
                    with lock:
                        result.failed_calls += 1
                        result.errors.append(f"create {spec.name}: {exc}")
                    self._event("create-failed", spec.name, spec.machinetype, error=str(exc))
                    log.warning("create failed", space=self.space.name, machine=spec.name,
                                error=str(exc))
                    return
                with lock:
                    result.created += 1
                    created.append(records[spec.name].with_changes(
                        cloud_id=machine.id, state=machine.state.value if machine.state
                        is not MachineState.GONE else "creating", zone=machine.zone))
                self._event("create", spec.name, spec.machinetype, reason=action.reason,
                            flavor=spec.flavor.name, processors=spec.processors)
            finally:
                self.progress.advance()

        self._run_pool(create_one, runnable)
        self.progress.finish()
        for rec in created:
            records[rec.name] = rec
        for name in refused:
            records.pop(name, None)
        self.store.put_records(created)
        self.store.delete_records(refused)  # a definite refusal made no VM

    def machine_token(self, name: str) -> str:
        """The per-machine feedback token (`##user_data_machine_token##`)."""
        try:
            from vcyclectl.vm.tokens import machine_token
        except ImportError:
            return ""
        return machine_token(self.config.state_dir, name)

    def _run_pool(self, work: Callable[[T], None], items: Iterable[T]) -> None:
        items = list(items)
        if len(items) <= 1 or self.space.concurrency == 1:
            for item in items:
                work(item)
            return
        with ThreadPoolExecutor(max_workers=min(self.space.concurrency, len(items)),
                                thread_name_prefix=f"vcyclectl-{self.space.slug}") as pool:
            for future in [pool.submit(work, item) for item in items]:
                future.result()


def finished_entry(rec: MachineRecord, now: float, action: Action) -> dict[str, Any]:
    """An accounting line for a machine that ended: times, processors, hs06, message."""
    machine = action.machine
    stopped = (machine.stopped_at if machine and machine.stopped_at else None) or now
    started = rec.started_at or (machine.started_at if machine else None)
    seconds = max(0.0, stopped - started) if started else 0.0
    return {
        "name": rec.name, "space": rec.space, "machinetype": rec.machinetype,
        "processors": rec.processors, "hs06": rec.hs06, "flavor": rec.flavor,
        "created_at": rec.created_at, "started_at": started, "stopped_at": stopped,
        "finished_at": now, "cpu_seconds": round(seconds * rec.processors, 3),
        "hs06_seconds": round(seconds * rec.hs06, 3),
        "message": action.message, "reason": action.reason, "abort": action.abort,
        "preempted": action.preempted, "spot": rec.spot, "price_per_hour": rec.price_per_hour,
        "cloud_id": rec.cloud_id,
    }


#: A listing that shows none of at least this many machines the cloud had confirmed is
#: treated as a broken view (wrong endpoint, tags, region or a cloud-side bug), not as a
#: fleet that vanished, unless the operator says otherwise.
EMPTY_LISTING_GUARD = 10


def vanished_fleet(observed: Observed) -> int:
    """How many confirmed machines an empty listing would make us forget (0 if not empty)."""
    if observed.machines:
        return 0
    return sum(1 for r in observed.observation.records.values()
               if r.cloud_id and r.deleting_at is None and r.state is not MachineState.CREATING)


def reconcile_space(config: Config, space: Space, state_id: str, *, wait: float | None = None,
                    dry_run: bool = False, progress: Progress | None = None,
                    cloud: Cloud | None = None, accept_empty: bool = False) -> SpaceResult:
    """One pass over one space, never raising for cloud or state trouble."""
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
        run = Pass(config, space, state_id, cloud=cloud, progress=progress)
        try:
            plan, observed = run.plan()
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
            run.apply(plan, observed, result)
            store.write_last_pass({
                "pass_id": log.PASS_ID, "finished_at": time.time(), "outcome": result.outcome,
                "created": result.created, "deleted": result.deleted, "adopted": result.adopted,
                "forgotten": result.forgotten, "failed_calls": result.failed_calls,
                "seconds": round(time.monotonic() - started, 3), "notes": list(plan.notes),
                "host": socket.gethostname(),
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
