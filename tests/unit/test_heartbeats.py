"""A heartbeat overwrites its file in place (vcyclectl.state.heartbeats): what every reader
of heartbeats (`SpaceState.reports`: reconcile, list -o wide, inspect, status) sees, the
files it makes, the folder mtime that joboutputs retention counts from."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from vcyclectl.core.model import MachineState
from vcyclectl.core.records import MachineRecord
from vcyclectl.state.files import write_atomic
from vcyclectl.state.heartbeats import (FOLDER_TOUCH_SECONDS, touch_folder_if_behind,
                                        write_heartbeat)
from vcyclectl.state.outputs import cleanup_outputs
from tests.unit.test_records_cache import space
from vcyclectl.state.store import SpaceState

NAME = "vcyclectl-s-a-0123456789"
#: The kernel stamps mtimes from a clock read at tick granularity, a few ms behind
#: `time.time()`.
SLACK = 1.0


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def store(tmp_path: Path) -> SpaceState:
    return space(tmp_path)


@pytest.mark.parametrize("as_text", [False, True])  # serve passes a plain string
def test_the_first_heartbeat_makes_a_private_folder_and_file(store: SpaceState,
                                                             as_text: bool) -> None:
    path = store.machine_outputs_dir(NAME) / "heartbeat"
    before = time.time()
    write_heartbeat(str(path) if as_text else path, b"1764400000\n")
    assert path.read_bytes() == b"1764400000\n"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    beat = store.reports({NAME: "heartbeat"})[NAME].heartbeat_at
    assert beat is not None and beat >= before - SLACK


def test_a_heartbeat_overwrites_in_place_and_moves_the_mtime(store: SpaceState) -> None:
    path = store.machine_outputs_dir(NAME) / "heartbeat"
    write_atomic(path, b"a longer value an older serve wrote by rename\n", durable=False)
    age(path, 3600)
    inode = path.stat().st_ino
    before = time.time()
    write_heartbeat(path, b"short\n")
    assert path.read_bytes() == b"short\n"  # the rest of the longer value is cut
    assert path.stat().st_ino == inode  # no new file: no rename, no new inode
    assert path.stat().st_mtime >= before - SLACK
    write_heartbeat(path, b"a value longer than the one before\n")
    assert path.read_bytes() == b"a value longer than the one before\n"
    assert [p.name for p in path.parent.iterdir()] == ["heartbeat"]  # no temporary files


def test_an_empty_heartbeat_still_moves_the_mtime(store: SpaceState) -> None:
    path = store.machine_outputs_dir(NAME) / "heartbeat"
    write_heartbeat(path, b"")
    age(path, 3600)
    before = time.time()
    write_heartbeat(path, b"")
    assert path.read_bytes() == b""
    beat = store.reports({NAME: "heartbeat"})[NAME].heartbeat_at
    assert beat is not None and beat >= before - SLACK


def test_a_symlink_in_place_of_the_file_is_never_followed(store: SpaceState,
                                                          tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep\n")
    path = store.machine_outputs_dir(NAME) / "heartbeat"
    path.parent.mkdir()
    path.symlink_to(target)
    with pytest.raises(OSError):
        write_heartbeat(path, b"1\n")
    assert target.read_bytes() == b"keep\n"


@pytest.mark.parametrize("as_text", [False, True])
def test_the_folder_mtime_follows_heartbeats_within_a_minute(store: SpaceState,
                                                             as_text: bool) -> None:
    path = store.machine_outputs_dir(NAME) / "heartbeat"
    given = str(path) if as_text else path
    write_heartbeat(given, b"1\n")
    folder = path.parent
    age(folder, FOLDER_TOUCH_SECONDS / 2)
    recent = folder.stat().st_mtime
    write_heartbeat(given, b"2\n")  # within the bound: the folder is left alone
    assert folder.stat().st_mtime == recent
    age(folder, FOLDER_TOUCH_SECONDS + 30)
    before = time.time()
    write_heartbeat(given, b"3\n")  # past it: moved to now
    assert folder.stat().st_mtime >= before - SLACK
    assert not touch_folder_if_behind(folder / "gone", time.time())


def test_retention_keeps_outputs_of_a_machine_that_heartbeated_lately(store: SpaceState) -> None:
    """An ended machine's outputs are kept `keep_seconds` after the last write, which the
    folder's mtime tells: an in-place heartbeat must keep moving it."""
    path = store.machine_outputs_dir(NAME) / "heartbeat"
    write_heartbeat(path, b"1\n")
    age(path.parent, 7200)  # the folder was made two hours ago
    write_heartbeat(path, b"2\n")  # the machine's last heartbeat, just now; then it ended
    assert cleanup_outputs(store, {}, time.time(), keep_seconds=3600) == []
    age(path.parent, 7200)  # nothing written for two hours
    assert cleanup_outputs(store, {}, time.time(), keep_seconds=3600) == [NAME]


def test_a_live_machines_heartbeat_is_what_reports_show(store: SpaceState) -> None:
    store.put_records([MachineRecord(name=NAME, space="s", machinetype="a", processors=1,
                                     state=MachineState.RUNNING, created_at=1.0)])
    path = store.machine_outputs_dir(NAME) / "beat"
    write_heartbeat(path, b"1\n")
    age(path, 120)
    seen = store.reports({NAME: "beat"})[NAME].heartbeat_at
    assert seen is not None and abs(seen - (time.time() - 120)) < SLACK
