"""Found by the chaos campaign (seed 163889581, a nearly full state filesystem): an append
that the filesystem cut short was taken for a recorded intent, its create went ahead, and
the machine was on the cloud without a record until a later pass adopted it. An append is
now all of its lines or an error, and a pass whose intents cannot be written creates
nothing."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import Run
from tests.e2e.fleet import cloud_view
from vcyclectl.state import files
from vcyclectl.state.files import append_lines, read_lines
from vcyclectl.state.store import StateDir


def filling_disk(room: int, only: str = "") -> Callable[[int, bytes], int]:
    """`os.write` on a filesystem with `room` bytes left: a short write, then ENOSPC (for
    files whose name ends with `only`; others are written as usual)."""
    real_write = os.write
    left = [room]

    def write(fd: int, data: bytes) -> int:
        if not os.readlink(f"/proc/self/fd/{fd}").endswith(only):
            return real_write(fd, data)
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        part = bytes(data[:left[0]])
        left[0] -= len(part)
        return real_write(fd, part)

    return write


def test_a_short_append_raises_and_leaves_only_a_torn_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = tmp_path / "records.jsonl"
    append_lines(journal, [{"put": {"name": "kept"}}])
    monkeypatch.setattr(files.os, "write", filling_disk(25))
    with pytest.raises(OSError) as raised:
        append_lines(journal, [{"put": {"name": f"intent-{i}"}} for i in range(3)])
    assert raised.value.errno == errno.ENOSPC
    monkeypatch.undo()
    lines, _ = read_lines(journal)
    assert lines == [{"put": {"name": "kept"}}]  # the torn rest is ignored by readers
    append_lines(journal, [{"put": {"name": "later"}}])  # never glued onto the torn line
    assert [line["put"]["name"] for line in read_lines(journal)[0]] == ["kept", "later"]


def test_a_pass_whose_intents_do_not_fit_creates_nothing(
        vc: Callable[..., Run], write_config: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_config("""\
        state_dir: state
        spaces:
          a.local:
            cloud: local
            processors_limit: 6
            local: {processors: 100, boot_seconds: 0, job_seconds: 1000}
            machinetypes:
              m: {target_share: 1}
        """)
    state = cfg.parent / "state"
    StateDir(state).open(create=True)
    monkeypatch.setattr(files.os, "write", filling_disk(40, "records.jsonl"))  # intents torn
    run = vc("--config", cfg, "reconcile")
    monkeypatch.undo()
    assert run.code == 1 and "FAILED: [Errno 28]" in run.err and "created 0" in run.err, run.err
    assert cloud_view(state, "a.local").list_machines() == []
