"""The planner's rules, one test each, on hand-built observations (no I/O, fixed clock)."""

from __future__ import annotations

import random
from dataclasses import replace

from vcyclectl.config import Machinetype, Space
from vcyclectl.core.model import ActionKind, CloudMachine, Flavor, MachineState
from vcyclectl.core.names import random_names
from vcyclectl.core.planner import (MSG_FAILED, MSG_HEARTBEAT, MSG_WALLCLOCK, Observation, is_abort,
                               message_code, plan)
from vcyclectl.core.records import DrainMark, Drains, MachineRecord, Report

NOW = 1_000_000.0
FLAVORS = (Flavor("small", 1), Flavor("medium", 2), Flavor("large", 4))


def space(limit: int = 10, **kw: object) -> Space:
    mts = kw.pop("machinetypes", None) or {"a": Machinetype(name="a")}
    return Space(name="s", processors_limit=limit, machinetypes=mts, **kw)  # type: ignore[arg-type]


def machine(name: str, mt: str = "a", state: MachineState = MachineState.RUNNING,
            processors: int = 1, created: float = NOW - 100, **kw: object) -> CloudMachine:
    started = kw.pop("started_at", created + 5)
    return CloudMachine(id="id-" + name, name=name, space="s", machinetype=mt, state=state,
                        processors=processors, created_at=created, started_at=started,  # type: ignore[arg-type]
                        heartbeat_at=NOW, **kw)  # type: ignore[arg-type]


def record(m: CloudMachine, **kw: object) -> MachineRecord:
    base = MachineRecord(name=m.name, space="s", machinetype=m.machinetype, state=m.state,
                         processors=m.processors, created_at=m.created_at or NOW,
                         cloud_id=m.id, started_at=m.started_at)
    return base.with_changes(**kw)


def observe(machines: list[CloudMachine], records: dict[str, MachineRecord] | None = None,
            **kw: object) -> Observation:
    if records is None:
        records = {m.name: record(m) for m in machines}
    return Observation(machines=machines, records=records, flavors=FLAVORS, **kw)  # type: ignore[arg-type]


def names() -> object:
    return random_names("s", random.Random(1))


def kinds(p: object) -> list[tuple[str, str]]:
    return [(a.kind.value, a.name) for a in p.actions]  # type: ignore[attr-defined]


def test_empty_space_fills_to_the_limit() -> None:
    p = plan(space(10), observe([]), NOW, names())
    assert len(p.creates) == 10
    assert sum(a.processors for a in p.creates) == 10
    assert all(a.flavor == FLAVORS[0] for a in p.creates)
    assert "processors_limit 10 reached" in " ".join(p.notes)


def test_first_fitting_flavor_wins() -> None:
    mt = Machinetype(name="a", flavors=("large", "medium"), min_processors=2, max_processors=2)
    p = plan(space(10, machinetypes={"a": mt}), observe([]), NOW, names())
    assert {a.flavor.name for a in p.creates} == {"medium"}  # type: ignore[union-attr]


def test_flavor_must_fit_remaining_capacity() -> None:
    mt = Machinetype(name="a", flavors=("large", "medium"), min_processors=2, max_processors=4)
    p = plan(space(6, machinetypes={"a": mt}), observe([]), NOW, names())
    assert [a.flavor.name for a in p.creates] == ["large", "medium"]  # type: ignore[union-attr]


def test_no_fitting_flavor_is_a_note_not_a_crash() -> None:
    mt = Machinetype(name="a", min_processors=8)
    p = plan(space(10, machinetypes={"a": mt}), observe([]), NOW, names())
    assert not p.creates
    assert any("no flavor fits" in n for n in p.notes)


def test_max_starting_processors_ramps_up_gently() -> None:
    running = [machine(f"r{i}") for i in range(3)]
    starting = [machine("st", state=MachineState.STARTING)]
    p = plan(space(100, max_starting_processors=4), observe(running + starting), NOW, names())
    assert len(p.creates) == 3


def test_machinetype_limits_cap_creation() -> None:
    mts = {"a": Machinetype(name="a", processors_limit=2),
           "b": Machinetype(name="b", max_starting_processors=1)}
    p = plan(space(10, machinetypes=mts), observe([]), NOW, names())
    per_type = {t: sum(1 for a in p.creates if a.machinetype == t) for t in mts}
    assert per_type == {"a": 2, "b": 1}


def test_target_shares_are_hs06_weighted() -> None:
    mts = {"a": Machinetype(name="a", target_share=1, hs06_per_processor=20.0),
           "b": Machinetype(name="b", target_share=1, hs06_per_processor=10.0)}
    p = plan(space(30, machinetypes=mts), observe([]), NOW, names())
    per_type = {t: sum(a.processors for a in p.creates if a.machinetype == t) for t in mts}
    assert per_type == {"a": 10, "b": 20}  # equal hs06: 200 each


def test_stopped_machine_is_deleted_with_its_message_and_abort_starts_backoff() -> None:
    m = machine("x", state=MachineState.STOPPED, stopped_at=NOW - 10,
                shutdown_message="300 No more work available from task queue")
    mt = Machinetype(name="a", backoff_seconds=60)
    p = plan(space(10, machinetypes={"a": mt}), observe([m]), NOW, names())
    assert kinds(p)[0] == ("delete", "x")
    assert p.deletes[0].abort and p.deletes[0].message.startswith("300")  # type: ignore[union-attr]
    assert not p.creates  # in backoff from this very pass
    assert p.aborts == {"a": NOW - 10}


def test_backoff_expires() -> None:
    mt = Machinetype(name="a", backoff_seconds=60)
    obs = observe([], backoff={"a": NOW - 61})
    assert plan(space(2, machinetypes={"a": mt}), obs, NOW, names()).creates
    obs = observe([], backoff={"a": NOW - 59})
    p = plan(space(2, machinetypes={"a": mt}), obs, NOW, names())
    assert not p.creates and any("backoff" in n for n in p.notes)


def test_quick_stop_without_message_is_a_fizzle_abort() -> None:
    m = machine("x", state=MachineState.STOPPED, created=NOW - 30, started_at=NOW - 25,
                stopped_at=NOW - 20)
    p = plan(space(1, machinetypes={"a": Machinetype(name="a", fizzle_seconds=60)}),
             observe([m]), NOW, names())
    assert p.deletes[0].abort
    m2 = replace(m, started_at=NOW - 500, created_at=NOW - 505)
    p2 = plan(space(1, machinetypes={"a": Machinetype(name="a", fizzle_seconds=60)}),
              observe([m2]), NOW, names())
    assert not p2.deletes[0].abort


def test_completed_work_is_not_an_abort() -> None:
    m = machine("x", state=MachineState.STOPPED, shutdown_message="200 Intended work completed ok",
                stopped_at=NOW - 1, started_at=NOW - 2)
    p = plan(space(1), observe([m]), NOW, names())
    assert not p.deletes[0].abort
    assert len(p.creates) == 1  # shown assuming the deletion succeeds (reconcile re-plans)


def test_failed_machine_gets_failed_to_start() -> None:
    m = machine("x", state=MachineState.FAILED, state_reason="No valid host")
    p = plan(space(1), observe([m]), NOW, names())
    assert p.deletes[0].message == MSG_FAILED and "No valid host" in p.deletes[0].reason


def test_wallclock_exceeded() -> None:
    mt = Machinetype(name="a", max_wallclock_seconds=50)
    p = plan(space(1, machinetypes={"a": mt}), observe([machine("x", created=NOW - 51)]), NOW,
             names())
    assert p.deletes[0].message == MSG_WALLCLOCK


def test_stale_heartbeat_after_fizzle() -> None:
    mt = Machinetype(name="a", heartbeat_seconds=30, fizzle_seconds=60)
    old = replace(machine("x", created=NOW - 200, started_at=NOW - 190), heartbeat_at=None)
    reports = {"x": Report(heartbeat_at=NOW - 31)}
    p = plan(space(1, machinetypes={"a": mt}), observe([old], reports=reports), NOW, names())
    assert p.deletes[0].message == MSG_HEARTBEAT
    fresh = {"x": Report(heartbeat_at=NOW - 5)}
    assert not plan(space(1, machinetypes={"a": mt}), observe([old], reports=fresh), NOW,
                    names()).deletes
    young = replace(old, started_at=NOW - 30)  # still within fizzle_seconds: not judged yet
    assert not plan(space(1, machinetypes={"a": mt}), observe([young]), NOW, names()).deletes


def test_drained_machinetype_gets_nothing_and_ends_after_grace() -> None:
    mt = Machinetype(name="a", drain_grace_seconds=100)
    m = machine("x")
    early = Drains(machinetypes={"a": DrainMark("s/a", since=NOW - 50)})
    p = plan(space(5, machinetypes={"a": mt}), observe([m], drains=early), NOW, names())
    assert not p.creates and not p.deletes
    late = Drains(machinetypes={"a": DrainMark("s/a", since=NOW - 101)})
    p = plan(space(5, machinetypes={"a": mt}), observe([m], drains=late), NOW, names())
    assert kinds(p) == [("delete", "x")] and p.deletes[0].message.startswith("100")  # type: ignore[union-attr]


def test_draining_one_machine_still_replaces_it() -> None:
    mt = Machinetype(name="a", drain_grace_seconds=0)
    drains = Drains(machines={"x": DrainMark("x", since=NOW - 1)})
    p = plan(space(1, machinetypes={"a": mt}), observe([machine("x")], drains=drains), NOW, names())
    assert [a.kind for a in p.actions] == [ActionKind.DELETE, ActionKind.CREATE]


def test_adopts_tagged_machine_without_record() -> None:
    p = plan(space(1), observe([machine("x")], records={}), NOW, names())
    assert kinds(p) == [("adopt", "x")]


def test_forgets_record_whose_machine_is_gone() -> None:
    m = machine("x")
    sp = space(1, machinetypes={"a": Machinetype(name="a", fizzle_seconds=10)})
    p = plan(sp, observe([], records={"x": record(m)}), NOW, names())
    assert ("forget", "x") in kinds(p)
    assert len(p.creates) == 1


def test_intent_counts_until_it_expires() -> None:
    intent = MachineRecord(name="i", space="s", machinetype="a", state=MachineState.CREATING,
                           processors=1, created_at=NOW - 10)
    sp = space(1, intent_timeout_seconds=60)
    assert not plan(sp, observe([], records={"i": intent}), NOW, names()).actions
    p = plan(sp, observe([], records={"i": intent}), NOW + 60, names())
    assert ("forget", "i") in kinds(p) and len(p.creates) == 1


def test_lowered_limit_deletes_newest_first() -> None:
    ms = [machine(f"m{i}", created=NOW - 100 + i) for i in range(5)]
    p = plan(space(3), observe(ms), NOW, names())
    assert sorted(a.name for a in p.deletes) == ["m3", "m4"]
    assert not p.creates


def test_unconfigured_machinetype_is_removed() -> None:
    p = plan(space(3), observe([machine("x", mt="gone")]), NOW, names())
    assert [a.name for a in p.deletes] == ["x"]


def test_deletes_are_bounded_per_pass_and_the_rest_still_count() -> None:
    ms = [machine(f"m{i}", state=MachineState.STOPPED, shutdown_message="200 done")
          for i in range(5)]
    p = plan(space(5, max_deletes_per_pass=2), observe(ms), NOW, names())
    assert len(p.deletes) == 2
    assert len(p.creates) == 2  # the three not deleted still occupy the limit
    assert any("max_deletes_per_pass" in n for n in p.notes)


def test_creates_are_bounded_per_pass() -> None:
    p = plan(space(50, max_creates_per_pass=7), observe([]), NOW, names())
    assert len(p.creates) == 7


def test_pending_deletion_still_counts() -> None:
    m = machine("x")
    rec = record(m, deleting_at=NOW - 5, message="700 Heartbeat file not updated")
    p = plan(space(1), observe([m], records={"x": rec}), NOW, names())
    assert [a.name for a in p.deletes] == ["x"]
    assert not p.creates  # it is still on the cloud until the delete is confirmed


def test_preempted_machine_is_not_an_abort() -> None:
    m = machine("x", state=MachineState.STOPPED, preempted=True, stopped_at=NOW - 1,
                started_at=NOW - 3)
    p = plan(space(1), observe([m]), NOW, names())
    assert p.deletes[0].preempted and not p.deletes[0].abort and not p.aborts


def test_gone_machine_with_record_is_forgotten_with_its_end() -> None:
    m = machine("x", state=MachineState.GONE, preempted=True)
    p = plan(space(1), observe([m]), NOW, names())
    forget = p.of(ActionKind.FORGET)[0]
    assert forget.preempted and "pre-empted" in forget.reason


def test_vanished_young_machine_without_message_is_replaced_without_backoff() -> None:
    """Issue 15: a machine gone from the listing was deleted by someone else through the
    cloud's API (a VM cannot remove itself from Nova or the local cloud): not an abort,
    whatever its age; it is replaced at once. (Before, it started a backoff.)"""
    m = machine("x", created=NOW - 20, started_at=NOW - 15)
    sp = space(1, machinetypes={"a": Machinetype(name="a", fizzle_seconds=60)})
    p = plan(sp, observe([], records={"x": record(m)}), NOW, names())
    forget = p.of(ActionKind.FORGET)[0]
    assert not forget.abort and not p.aborts and len(p.creates) == 1
    assert "someone else through the cloud's API" in forget.reason


def test_other_spaces_machines_are_ignored() -> None:
    foreign = replace(machine("x"), space="other")
    assert [a.kind for a in plan(space(1), observe([foreign], records={}), NOW,
                                  names()).actions] == [ActionKind.CREATE]


def test_message_codes() -> None:
    assert message_code("300 No more work") == 300
    assert message_code("hello") is None
    assert is_abort("500 Problem", 1000, 10) and not is_abort("200 ok", 1, 10)
    assert is_abort(None, 5, 10) and not is_abort(None, None, 10)


def test_a_creations_only_plan_counts_every_machine_it_will_not_delete() -> None:
    """The reconciler re-plans creations after its deletions with max_deletes=0: a machine
    that ended meanwhile (or whose deletion the per-pass bound cut) is still on the cloud and
    must hold its capacity, or the space would overshoot."""
    ms = [machine(f"m{i}", state=MachineState.STOPPED, shutdown_message="200 done")
          for i in range(5)]
    assert len(plan(space(5), observe(ms), NOW, names()).creates) == 5  # shown as if deleted
    p = plan(space(5), observe(ms), NOW, names(), max_deletes=0)
    assert not p.creates and not p.deletes
