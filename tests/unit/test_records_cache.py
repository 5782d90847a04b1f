"""`serve`'s per-space records cache (vcyclectl.feedback.records): current after every
append, delete and compaction, with the journal read only when it changed."""

from __future__ import annotations

from pathlib import Path

from vcyclectl.core.model import MachineState
from tests.unit.test_state import rec
from vcyclectl.feedback.records import RecordsCache
from vcyclectl.state.store import SpaceState, StateDir


def space(tmp_path: Path) -> SpaceState:
    """Space `s` of a fresh state directory under `tmp_path`, its folders made."""
    root = StateDir(tmp_path / "state")
    root.open(create=True)
    store = root.space("s")
    store.ensure()
    return store


def test_appends_deletes_and_compaction_are_seen(tmp_path: Path) -> None:
    store = space(tmp_path)
    cache = RecordsCache(store.records_file)
    assert cache.get("m-1") is None  # no journal yet
    store.put_records([rec("m-1"), rec("m-2")])
    got = cache.get("m-1")
    assert got is not None and got.state is MachineState.RUNNING
    store.put_records([rec("m-1", deleting_at=5.0)])
    got = cache.get("m-1")
    assert got is not None and got.deleting_at == 5.0
    store.delete_records(["m-2"])
    assert cache.get("m-2") is None
    replays = cache.replays
    store._journal_lines = 10_000  # let compact() run now
    assert store.compact({"m-1": rec("m-1", deleting_at=5.0), "m-3": rec("m-3")})
    assert cache.get("m-3") is not None  # a new file: replayed once
    assert cache.replays == replays + 1


def test_an_unchanged_journal_is_not_read_again(tmp_path: Path) -> None:
    store = space(tmp_path)
    store.put_records([rec("m-1")])
    cache = RecordsCache(store.records_file)
    assert cache.get("m-1") is not None
    reads = cache.reads
    for _ in range(50):
        assert cache.get("m-1") is not None and cache.get("m-9") is None
    assert cache.reads == reads  # one stat each, no read, no lock
    store.put_records([rec("m-9")])
    assert cache.get("m-9") is not None
    assert cache.reads == reads + 1
