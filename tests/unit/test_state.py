"""The state directory: journal semantics, torn lines, compaction, permissions, formats."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from vcyclectl.errors import StateError
from vcyclectl.state.lock import Busy, SpaceLock, is_locked
from vcyclectl.core.model import MachineState
from vcyclectl.core.records import DrainMark, MachineRecord
from vcyclectl.state.store import FORMAT_VERSION, StateDir


def rec(name: str, **kw: object) -> MachineRecord:
    fields: dict[str, object] = {"space": "s", "machinetype": "a", "processors": 1,
                                 "state": MachineState.RUNNING, "created_at": 1.0, **kw}
    return MachineRecord(name=name, **fields)  # type: ignore[arg-type]


def test_state_dir_is_created_once_with_an_id(tmp_path: Path) -> None:
    root = StateDir(tmp_path / "st")
    with pytest.raises(StateError, match=f"state directory {root.root} does not exist"):
        root.open(create=False)
    first = root.open(create=True)
    assert root.open(create=True) == first
    info = json.loads((tmp_path / "st" / "format.json").read_text())
    assert info["format_version"] == FORMAT_VERSION
    assert stat.S_IMODE((tmp_path / "st").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "st" / "format.json").stat().st_mode) == 0o600


def test_newer_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / "format.json").write_text(json.dumps({"format_version": 99, "id": "x"}))
    with pytest.raises(StateError, match="newer"):
        StateDir(tmp_path).open(create=False)


def test_journal_put_overwrite_delete(tmp_path: Path) -> None:
    store = StateDir(tmp_path).space("s")
    store.ensure()
    store.put_records([rec("a"), rec("b")])
    store.put_records([rec("a", cloud_id="x")])
    store.delete_records(["b"])
    records = store.records()
    assert set(records) == {"a"} and records["a"].cloud_id == "x"
    assert stat.S_IMODE(store.records_file.stat().st_mode) == 0o600


def test_one_record_write_is_one_appended_line(tmp_path: Path) -> None:
    store = StateDir(tmp_path).space("s")
    store.ensure()
    store.put_records([rec(f"m{i}") for i in range(1000)])
    size = store.records_file.stat().st_size
    store.put_records([rec("m5", cloud_id="y")])
    grown = store.records_file.stat().st_size - size
    assert 0 < grown < 400  # O(1): one line, not a rewrite of the space


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    store = StateDir(tmp_path).space("s")
    store.ensure()
    store.put_records([rec("a")])
    with open(store.records_file, "ab") as handle:
        handle.write(b'{"put": {"name": "b", "spa')  # a writer killed mid-line
    assert set(store.records()) == {"a"}
    store.put_records([rec("c")])  # the next append must not be glued onto the torn line
    assert set(store.records()) == {"a", "c"}


def test_unsafe_names_from_the_journal_are_dropped(tmp_path: Path) -> None:
    store = StateDir(tmp_path).space("s")
    store.ensure()
    store.put_records([rec("../../etc"), rec("ok-name")])
    assert set(store.records()) == {"ok-name"}


def test_compaction_keeps_live_records(tmp_path: Path) -> None:
    store = StateDir(tmp_path).space("s")
    store.ensure()
    for i in range(3000):
        store.put_records([rec(f"m{i % 10}", processors=i + 1)])
    records = store.records()
    assert store.compact(records)
    assert len(store.records_file.read_text().splitlines()) == 10
    assert store.records() == records


def test_unknown_fields_from_a_newer_version_survive(tmp_path: Path) -> None:
    store = StateDir(tmp_path).space("s")
    store.ensure()
    with open(store.records_file, "w") as handle:
        handle.write(json.dumps({"put": {**rec("a").to_record(), "future": 1}}) + "\n")
    again = store.records()["a"]
    store.put_records([again.with_changes(cloud_id="z")])
    assert store.records()["a"].extra == {"future": 1}


def test_drain_marks(tmp_path: Path) -> None:
    store = StateDir(tmp_path).space("s")
    store.set_drain(DrainMark("s", 5.0, "maintenance"))
    store.set_drain(DrainMark("s/a", 6.0), machinetype="a")
    store.set_drain(DrainMark("m-1", 7.0), machine="m-1")
    drains = store.drains()
    assert drains.space and drains.space.reason == "maintenance"
    assert drains.for_machine("m-1", "b") == drains.space  # the earliest mark wins
    assert store.clear_drain() and not store.clear_drain()
    assert store.drains().for_machine("m-1", "b").since == 7.0  # type: ignore[union-attr]


def test_reports_read_heartbeat_and_message(tmp_path: Path) -> None:
    store = StateDir(tmp_path).space("s")
    store.ensure()
    folder = store.joboutputs_dir / "m-1"
    folder.mkdir()
    (folder / "beat").write_text("")
    os.utime(folder / "beat", (123.0, 123.0))
    (folder / "shutdown_message").write_text("300 No more work available\nextra\n")
    (store.joboutputs_dir / "..bad").mkdir()
    reports = store.reports({"m-1": "beat"})
    assert set(reports) == {"m-1"}
    assert reports["m-1"].heartbeat_at == 123.0
    assert reports["m-1"].shutdown_message == "300 No more work available"


def test_lock_is_exclusive_and_reports_holder(tmp_path: Path) -> None:
    first = SpaceLock(tmp_path / "s", "p1")
    first.acquire()
    try:
        assert is_locked(tmp_path / "s")
        with pytest.raises(Busy):
            SpaceLock(tmp_path / "s", "p2").acquire()
        holder = first.holder()
        assert holder is not None and holder.pid == os.getpid() and holder.pass_id == "p1"
    finally:
        first.release()
    assert not is_locked(tmp_path / "s")


def test_journal_tail_follows_replacements_even_when_inode_numbers_are_reused(
        tmp_path: Path) -> None:
    """A long-lived reader must notice every compaction, including one whose new file gets
    the inode number of a journal it had read before (file systems reuse freed numbers)."""
    from vcyclectl.state.files import JournalTail, append_lines, write_atomic

    path = tmp_path / "j.jsonl"
    append_lines(path, [{"n": i} for i in range(50)])
    tail = JournalTail(path)
    restart, lines = tail.read_new()
    assert restart and len(lines) == 50
    append_lines(path, [{"n": 50}])
    assert tail.read_new() == (False, [{"n": 50}])
    for generation in range(20):  # many replacements between two looks
        write_atomic(path, b'{"gen": %d}\n' % generation)
    restart, lines = tail.read_new()
    assert restart and lines == [{"gen": 19}]
    assert tail.read_new() == (False, [])


def test_folders_are_0700_and_locks_0600_all_the_way_down(tmp_path: Path) -> None:
    """Issue 22: `spaces/` and `local/` were made 0755 (mkdir's parents ignore the mode)
    and the local cloud's lock 0644; docs/state.md says 0700 and 0600."""
    import stat

    from vcyclectl.clouds.contract import CloudContext
    from vcyclectl.clouds.local.options import LocalOptions
    from vcyclectl.clouds.registry import load_driver
    from vcyclectl.state.store import StateDir

    root = StateDir(tmp_path / "state")
    root.open(create=True)
    root.space("s").ensure()
    cloud = load_driver(CloudContext(space="s", state_id="id", state_dir=tmp_path / "state",
                                     options=LocalOptions()), "local")
    cloud.list_machines()
    with cloud._file_lock():  # type: ignore[attr-defined]
        pass
    for folder in ("state/spaces", "state/spaces/s", "state/local", "state/local/s"):
        assert stat.S_IMODE((tmp_path / folder).stat().st_mode) == 0o700, folder
    assert stat.S_IMODE((tmp_path / "state/local/s/lock").stat().st_mode) == 0o600
