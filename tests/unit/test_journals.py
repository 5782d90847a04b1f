"""Journals that are rotated, truncated or lost never lower recorded spend, and nothing is
counted twice (issue 20): the ledger's cursor follows a rotated `finished.jsonl` into its
copy, reports cut or lost lines, and vcyclectl's own rotation keeps every reader whole."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from vcyclectl.errors import StateError
from vcyclectl.policy.budget import LEDGER_FILE, Ledger, fold, update_ledger
from vcyclectl.state.cursor import Cursor, generations, read_since, rotate
from vcyclectl.state.store import SpaceState, StateDir

HOUR = 3600.0
T0 = 1_800_000_000.0


def ended(i: int, price: float = 1.0) -> dict[str, Any]:
    """One machine that ran an hour at `price` per hour."""
    return {"name": f"m{i}", "machinetype": "a", "processors": 1, "created_at": T0 + i * 10,
            "finished_at": T0 + i * 10 + HOUR, "price_per_hour": price}


@pytest.fixture
def store(tmp_path: Path) -> SpaceState:
    s = StateDir(tmp_path).space("s")
    s.ensure()
    return s


def counted(store: SpaceState, first: int, n: int) -> Ledger:
    store.add_finished([ended(i) for i in range(first, first + n)])
    return update_ledger(store)


def test_mv_rotation_keeps_spend_and_reads_the_rest_of_the_old_file(store: SpaceState) -> None:
    assert counted(store, 0, 3).total == pytest.approx(3.0)
    store.add_finished([ended(3)])  # appended after the last count, before the rotation
    store.finished_file.rename(store.finished_file.with_name("finished.jsonl.1"))
    store.add_finished([ended(4)])  # the new journal
    ledger = update_ledger(store)
    assert ledger.total == pytest.approx(5.0) and not ledger.problems
    assert update_ledger(store).total == pytest.approx(5.0)  # nothing counted twice


def test_logrotate_dateext_and_create(store: SpaceState) -> None:
    counted(store, 0, 2)
    store.add_finished([ended(2)])
    store.finished_file.rename(store.finished_file.with_name("finished.jsonl-20261129"))
    store.finished_file.touch()  # logrotate's `create`
    assert update_ledger(store).total == pytest.approx(3.0)
    assert counted(store, 3, 1).total == pytest.approx(4.0)


def test_copytruncate_then_new_lines(store: SpaceState) -> None:
    counted(store, 0, 2)
    store.add_finished([ended(2)])
    shutil.copy(store.finished_file, store.finished_file.with_name("finished.jsonl.1"))
    os.truncate(store.finished_file, 0)
    store.add_finished([ended(3), ended(4)])
    ledger = update_ledger(store)
    assert ledger.total == pytest.approx(5.0) and not ledger.problems


def test_truncation_in_place_is_said_and_never_lowers(store: SpaceState) -> None:
    counted(store, 0, 4)
    lines = store.finished_file.read_bytes().splitlines(keepends=True)
    store.finished_file.write_bytes(b"".join(lines[:2]))  # the last two lines cut out
    ledger = update_ledger(store)
    assert ledger.total == pytest.approx(4.0)
    assert any("shorter" in p for p in ledger.problems)
    store.add_finished([ended(9)])
    assert update_ledger(store).total == pytest.approx(5.0)  # new lines still counted once


def test_deleted_journal_is_said_and_the_next_one_counted(store: SpaceState) -> None:
    counted(store, 0, 3)
    store.add_finished([ended(3)])  # never counted, and then lost with the file
    store.finished_file.unlink()
    ledger = update_ledger(store)
    assert ledger.total == pytest.approx(3.0) and any("missing" in p for p in ledger.problems)
    store.add_finished([ended(4)])
    ledger = update_ledger(store)
    assert ledger.total == pytest.approx(4.0)
    assert any("not beside it" in p for p in ledger.problems)


def test_lost_ledger_file_is_rebuilt_from_every_generation(store: SpaceState) -> None:
    counted(store, 0, 2)
    rotate(store.finished_file, keep=4)
    counted(store, 2, 2)
    (store.path / LEDGER_FILE).unlink()
    # A ledger made afresh reads every copy vcyclectl's rotation kept, then the journal.
    assert update_ledger(store).total == pytest.approx(4.0)
    assert update_ledger(store).total == pytest.approx(4.0)


def test_vcyclectl_rotation_keeps_generations_and_readers_whole(store: SpaceState) -> None:
    for first in (0, 2, 4, 6, 8):
        counted(store, first, 2)
        rotate(store.finished_file, keep=3)
    names = sorted(p.name for p in store.path.iterdir() if p.name.startswith("finished"))
    assert names == ["finished.jsonl.1", "finished.jsonl.2", "finished.jsonl.3"]
    assert update_ledger(store).total == pytest.approx(10.0)
    assert [p.name for p in generations(store.finished_file)] == names[::-1]
    assert [e["name"] for e in store.finished()][:2] == ["m4", "m5"]  # oldest kept first


def test_events_journal_rotates_and_inspect_reads_every_generation(store: SpaceState) -> None:
    store.add_events([{"t": 1, "event": "create", "machine": "m1"}])
    rotate(store.events_file, keep=2)
    store.add_events([{"t": 2, "event": "delete", "machine": "m1"}])
    assert [e["event"] for e in store.events("m1")] == ["create", "delete"]
    store.events_file.unlink()  # a lost events journal loses only history
    assert [e["event"] for e in store.events("m1")] == ["create"]


def test_format_1_ledger_is_read_and_a_newer_one_refused(store: SpaceState) -> None:
    store.add_finished([ended(0), ended(1)])
    size = store.finished_file.stat().st_size
    old = {"format": 1, "offset": size, "hours": {str(int(T0 // HOUR)): {"a": [2.0, 7200, 2, 0]}}}
    (store.path / LEDGER_FILE).write_text(json.dumps(old))
    store.add_finished([ended(2)])
    assert update_ledger(store).total == pytest.approx(3.0)
    (store.path / LEDGER_FILE).write_text(json.dumps({"format": 99, "hours": {}}))
    with pytest.raises(StateError, match="format 99"):
        fold(store)


def test_cursor_waits_for_a_first_line_to_be_complete(tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    journal.write_bytes(b'{"a": 1')  # a writer mid-line
    caught = read_since(journal, Cursor())
    assert caught.entries == [] and caught.cursor.fingerprint is None
    journal.write_bytes(b'{"a": 1}\n')
    caught = read_since(journal, caught.cursor)
    assert caught.entries == [{"a": 1}] and caught.cursor.fingerprint is not None


def test_a_repeated_finished_line_is_paid_once(store: SpaceState) -> None:
    """A pass appends a machine's finished line before the record that marks it finished,
    so a pass killed between the two repeats the line; the ledger drops the repeat."""
    counted(store, 0, 2)
    store.add_finished([ended(1)])  # m1 again, from the retried pass
    store.add_finished([ended(2)])
    assert update_ledger(store).total == pytest.approx(3.0)
