"""Steps 2 to 5 of a pass, with the space's lock held: plan, then act (bookkeeping,
deletions, creations re-planned on the capacity the deletions freed) with bounded
concurrency, recording each intent before its cloud call, then record what finished."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Callable, Iterable, TypeVar

from vcyclectl import log
from vcyclectl.core import planner
from vcyclectl.core import rules
from vcyclectl.clouds.contract import Cloud
from vcyclectl.clouds.registry import build_cloud
from vcyclectl.clouds.retries import NoTokenBeforeDeadline, with_retries
from vcyclectl.core.progress import NoProgress, Progress
from vcyclectl.config import Config, Space
from vcyclectl.errors import (CloudError, ConfigError, Fatal, QuotaExceeded)
from vcyclectl.core.model import Action, ActionKind, MachineSpec, MachineState, Plan
from vcyclectl.core.names import random_names
from vcyclectl.core.provisioning import SpacePolicy
from vcyclectl.core.records import DrainMark, MachineRecord
from vcyclectl.state.store import StateDir
from vcyclectl.vm import userdata
from vcyclectl.reconcile.deadline import Deadline
from vcyclectl.reconcile.observe import (Observed, StaleObservation, max_observation_age, observe,
                                         read_demand)
from vcyclectl.reconcile.result import SpaceResult, finished_entry

T = TypeVar("T")


class Pass:
    """Everything one pass over one space needs, and the code that applies its plan."""

    def __init__(self, config: Config, space: Space, state_id: str, *,
                 cloud: Cloud | None = None, progress: Progress | None = None,
                 names: planner.NameSource | None = None, now: Callable[[], float] = time.time,
                 deadline: Deadline | None = None):
        self.config = config
        self.space = space
        self.state_id = state_id
        self.store = StateDir(config.state_dir).space(space.name)
        self._cloud = cloud
        self.progress = progress or NoProgress()
        self.names = names or random_names(space.slug)
        self.now = now
        self.events: list[dict[str, Any]] = []  # not yet written to events.jsonl
        self._written_events: list[dict[str, Any]] = []
        self._events_lock = threading.Lock()
        self._machine_drains: set[str] | None = None
        #: Past it, no new cloud call starts (`max_pass_seconds`; reconcile/deadline.py).
        self.deadline = deadline or Deadline(space.max_pass_seconds)
        if self.deadline.started_at is None:
            self.deadline.start()
        self.deadline.last_words.append(self._write_events)

    @property
    def cloud(self) -> Cloud:
        if self._cloud is None:
            self._cloud = build_cloud(self.config, self.space, self.state_id)
        return self._cloud

    def plan(self, clock_untrusted: str = "") -> tuple[Plan, Observed]:
        """Observe, then decide against the observation's own time (`Observed.taken_at`)."""
        demand = read_demand(self.config, self.space, self.now)
        observed = observe(self.space, self.cloud, self.store, self.now, self.deadline.at)
        if demand:
            observed.observation = replace(observed.observation, demand=demand)
        if self.config.budgets:  # prices in the paying budget's currency (docs/policy.md)
            from vcyclectl.policy.currency import in_budget_currency

            observed.flavors = in_budget_currency(self.config, self.space.name,
                                                  observed.flavors)
            observed.observation = replace(observed.observation, flavors=observed.flavors)
        if self.config.has_policy:
            observed.observation = replace(observed.observation, policy=self.policy())
        if clock_untrusted:
            observed.observation = replace(observed.observation,
                                           clock_untrusted=clock_untrusted)
        return planner.plan(self.space, observed.observation, observed.taken_at,
                            self.names), observed

    def check_fresh(self, observed: Observed) -> None:
        """Refuse to act on an observation older than `max_observation_age`: a pass that
        stalled (SIGSTOP, a paused VM, a slow filesystem) no longer knows what is."""
        age = self.now() - observed.taken_at
        bound = max_observation_age(self.space)
        if age > bound:
            raise StaleObservation(
                f"the observation is {age:.1f}s old by the time of acting (bound {bound:g}s): "
                "this pass stalled between listing and acting; nothing more done, the next "
                "pass observes afresh")

    def _write_events(self) -> None:
        """Append the events not yet written (the watchdog may call this from its thread)."""
        with self._events_lock:
            events, self.events = self.events, []
            self._written_events.extend(events)
        self.store.add_events(events)

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
        try:
            self.check_fresh(observed)
            confirmed = self._apply_deletes(plan.deletes, records, now, result)
            creates = plan.creates
            if plan.deletes:
                creates = self._replan_creates(plan, observed, records, confirmed)
            self.check_fresh(observed)
            self._apply_creates(creates, records, result)
            if result.not_started:
                result.outcome, result.deadline_passed = "failed", True
                result.reason = (f"max_pass_seconds ({self.deadline.seconds:g}s) passed: "
                                 f"{result.not_started} cloud calls not started; the next "
                                 "pass carries on")
        finally:  # what was done is in the event log even when a stall stops the rest
            self._write_events()
        result.events = list(self._written_events)
        if self.config.budgets:  # the ledger, under the lock: finished lines folded in
            from vcyclectl.policy.budget import update_ledger

            update_ledger(self.store)
        if self.config.accounting is not None:  # APEL records, under the lock (accounting.md)
            self._account(now, result)
        self.store.compact(records)
        # Journals are rotated only now, after the ledger caught up (docs/state.md).
        for name in self.store.rotate_journals(self.config.journal_max_bytes,
                                               self.config.journal_keep):
            log.info("journal rotated", space=self.space.name, journal=name)
        from vcyclectl.state.outputs import cleanup_outputs  # joboutputs of long-ended machines go

        cleanup_outputs(self.store, records, now,
                        self.config.joboutputs_keep_seconds)

    def _account(self, now: float, result: SpaceResult) -> None:
        from vcyclectl.policy.accounting import account_space

        try:
            account_space(self.config, self.space, self.store, now)
        except (OSError, ValueError) as exc:  # the machines still get managed; retried next pass
            result.errors.append(f"accounting: {exc}")
            log.warning("accounting failed", space=self.space.name, error=str(exc))

    def _replan_creates(self, plan: Plan, observed: Observed, records: dict[str, MachineRecord],
                        confirmed: set[str]) -> list[Action]:
        """Creations once deletions are done: only capacity the cloud has confirmed free is
        reused, so a delete that failed never lets the space overshoot its limits."""
        backoff = rules.merged_aborts(observed.observation.backoff, plan.aborts)
        observation = planner.Observation(
            machines=[m for m in observed.machines if m.name not in confirmed],
            records=dict(records), reports=observed.observation.reports,
            drains=observed.observation.drains, backoff=backoff, flavors=observed.flavors,
            policy=self.policy() if observed.observation.policy is not None else None,
            demand=observed.observation.demand)
        return planner.plan(self.space, observation, observed.taken_at, self.names,
                            max_deletes=0).creates

    def _event(self, action: str, name: str, machinetype: str, **extra: Any) -> None:
        entry = {"t": round(self.now(), 3), "pass": log.PASS_ID, "event": action, "machine": name,
                 "machinetype": machinetype}
        entry.update({k: v for k, v in extra.items() if v is not None})
        with self._events_lock:
            self.events.append(entry)

    def _clear_machine_drain(self, name: str) -> None:
        """A machine is gone for good: its drain mark (an operator's or the policy's) goes
        with it, so marks never pile up and `serve` never reads marks of ended machines."""
        if self._machine_drains is None:
            self._machine_drains = set(self.store.drains().machines)
        if name in self._machine_drains:
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
                self._clear_machine_drain(action.name)
                result.forgotten += 1
                if old is not None and not old.finished:
                    finished.append(finished_entry(old, now, action))
                self._event("forget", action.name, action.machinetype, reason=action.reason,
                            message=action.message, abort=action.abort or None,
                            preempted=action.preempted or None)
        self.store.add_finished(finished)  # before the records: a kill between repeats it,
        self.store.put_records(puts)        # never loses it (readers drop repeats by name)
        self.store.delete_records(dels)
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
        self.store.add_finished(finished)  # first: see _apply_bookkeeping
        self.store.put_records(marked)  # marked before the delete calls: intent before act
        result.finished.extend(finished)
        self.progress.start(f"{self.space.name}: deleting", len(deletes))

        def delete_one(action: Action) -> None:
            assert action.machine is not None
            machine = action.machine
            if self.deadline.expired():  # marked: the next pass deletes it
                with self._events_lock:
                    result.not_started += 1
                self.progress.advance()
                return
            try:
                with_retries(lambda: self.cloud.delete(machine), "delete",
                             not_after=self.deadline.at)
                with self._events_lock:
                    confirmed.add(action.name)
                    result.deleted += 1
                self._event("delete", action.name, action.machinetype, reason=action.reason,
                            message=action.message, abort=action.abort or None,
                            preempted=action.preempted or None)
            except NoTokenBeforeDeadline:  # not sent: marked, the next pass deletes it
                with self._events_lock:
                    result.not_started += 1
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
                if stop.is_set() or self.deadline.expired():
                    with lock:
                        refused.append(spec.name)  # no call made: the intent goes
                        result.not_started += not stop.is_set()
                    return
                try:
                    machine = with_retries(lambda: self.cloud.create(spec), "create",
                                           not_after=self.deadline.at)
                except NoTokenBeforeDeadline:  # a request not sent: the listing decides
                    with lock:
                        result.not_started += 1
                    return
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

