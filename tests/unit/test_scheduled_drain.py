"""`drain --at`: a drain scheduled ahead. Before its time machines are still made and every
machine is told the time as its MJF shutdowntime; from its time nothing is made and machines
end. Older marks (no `at`) read and behave as before."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vcyclectl.config import Machinetype
from vcyclectl.core.planner import plan
from vcyclectl.core.records import DrainMark, Drains
from vcyclectl.core.times import parse_when
from vcyclectl.vm import mjf

from tests.unit.test_planner import NOW, kinds, machine, names, observe, record, space

MT = Machinetype(name="a", drain_grace_seconds=100, max_wallclock_seconds=86400)


def scheduled(at: float) -> Drains:
    return Drains(machinetypes={"a": DrainMark("s/a", since=NOW - 10, at=at)})


def test_before_its_time_creates_go_on_and_machines_stay() -> None:
    m = machine("x")
    p = plan(space(3, machinetypes={"a": MT}), observe([m], drains=scheduled(NOW + 60)), NOW,
             names())
    assert len(p.creates) == 2 and not p.deletes
    assert any("drain scheduled in 60s" in n for n in p.notes)


def test_from_its_time_nothing_is_made_and_machines_end() -> None:
    m = machine("x")
    p = plan(space(3, machinetypes={"a": MT}), observe([m], drains=scheduled(NOW)), NOW,
             names())
    assert kinds(p) == [("delete", "x")] and not p.creates
    assert p.deletes[0].message.startswith("100")  # type: ignore[union-attr]


def test_a_scheduled_space_drain_does_not_hide_an_immediate_machinetype_drain() -> None:
    drains = Drains(space=DrainMark("s", since=NOW - 5, at=NOW + 3600),
                    machinetypes={"a": DrainMark("s/a", since=NOW - 5)})
    p = plan(space(3, machinetypes={"a": MT}), observe([], drains=drains), NOW, names())
    assert not p.creates


def test_mjf_shutdowntime_is_the_scheduled_time_from_the_moment_it_is_set() -> None:
    rec = record(machine("x"))
    mark = DrainMark("s/a", since=NOW, at=NOW + 7200)
    values = mjf.features(rec, MT, mark)
    assert values["shutdowntime"] == values["shutdowntime_job"] == str(int(NOW + 7200))
    far = DrainMark("s/a", since=NOW, at=NOW + 10 * 86400)  # never past the wallclock end
    assert mjf.features(rec, MT, far)["shutdowntime"] == str(int(rec.created_at + 86400))


def test_the_mark_that_ends_a_machine_first_wins() -> None:
    drains = Drains(space=DrainMark("s", since=NOW, at=NOW + 50),
                    machinetypes={"a": DrainMark("s/a", since=NOW)})
    mark = drains.for_machine("x", "a", grace_seconds=100)
    assert mark is not None and mark.shutdown_at(100) == NOW + 50


def test_old_marks_read_as_before_and_new_ones_round_trip() -> None:
    old = {"target": "s", "since": 5.0, "reason": "r", "by": "me@h"}
    mark = DrainMark.from_record(json.loads(json.dumps(old)))
    assert mark.at is None and mark.to_record() == old  # no new key written for them
    assert mark.in_force(5.0) and mark.shutdown_at(100) == 105.0
    new = DrainMark("s", since=5.0, at=50.0)
    assert DrainMark.from_record(new.to_record()) == new
    assert not new.in_force(49.0) and new.in_force(50.0) and new.shutdown_at(100) == 50.0


@pytest.mark.parametrize("text, expected", [
    ("+2h", NOW + 7200), ("+1h30m", NOW + 5400), ("+90s", NOW + 90), ("+1d", NOW + 86400),
    ("+5s", NOW + 5), ("1700000000", 1_700_000_000.0),
    ("2026-12-01T06:00:00Z", 1_796_104_800.0), ("2026-12-01T06:00", 1_796_104_800.0),
    ("2026-12-01T07:00+01:00", 1_796_104_800.0),
])
def test_times_an_operator_types(text: str, expected: float) -> None:
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize("text", ["tomorrow", "+2x", "2h", "+", "2026-13-01"])
def test_bad_times_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_when(text, NOW)


_offsets = st.one_of(st.none(), st.floats(min_value=-500, max_value=500))


@given(space_at=st.one_of(st.just("absent"), _offsets),
       mt_at=st.one_of(st.just("absent"), _offsets),
       running=st.integers(min_value=0, max_value=3))
def test_property_creation_stops_exactly_when_a_mark_is_in_force(
        space_at: object, mt_at: object, running: int) -> None:
    """Whatever mix of immediate and scheduled marks: machines are made iff no mark has
    taken hold, and a machine is kept iff no mark's shutdown time has passed."""
    def mark(at: object, target: str) -> DrainMark | None:
        if at == "absent":
            return None
        return DrainMark(target, since=NOW - 1000, at=None if at is None else NOW + at)

    drains = Drains(space=mark(space_at, "s"),
                    machinetypes={k: v for k, v in {"a": mark(mt_at, "s/a")}.items() if v})
    machines = [machine(f"m{i}") for i in range(running)]
    p = plan(space(4, machinetypes={"a": MT}), observe(machines, drains=drains), NOW, names())
    marks = [m for m in (drains.space, drains.machinetypes.get("a")) if m is not None]
    in_force = any(m.in_force(NOW) for m in marks)
    ended = any(m.shutdown_at(MT.drain_grace_seconds) <= NOW for m in marks)
    assert bool(p.creates) == (not in_force)
    assert len(p.deletes) == (running if ended else 0)
