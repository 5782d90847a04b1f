"""Writing a machine's heartbeat file in place: the one write `serve` makes per heartbeat.

A heartbeat is the file `spaces/SPACE/joboutputs/NAME/HEARTBEAT_FILE`; what every reader
uses is its modification time (`SpaceState.reports`: reconcile, `list -o wide`,
`inspect`, `status`), never its content. It used to be replaced like every other output
(temporary file, rename), which on ext4 costs a new inode, two directory entries, a freed
inode and ext4's replace-by-rename flush (`auto_da_alloc`) per heartbeat: ~0.4 ms and
several ms at the tail on a local disk, serialised in the filesystem journal, against
~0.04 ms for a plain overwrite (`benchmarks/bench_serve.py`, benchmarks/README.md). So the
file is overwritten in place: open (created only the first time), one `pwrite` at offset 0,
a truncate only when the new value is shorter. No new inode, no directory change, no
rename: the layout and `format_version` stay as they were, so older and newer readers and
writers (an older `serve` still renames) share the same files.

Durability: the write has reached the kernel (page cache) before `serve` answers, so a
heartbeat answered 2xx survives a crash or SIGKILL of `serve` (every reader on the host,
and on NFS the close flushes it to the server). It is not fsynced: a power loss or kernel
crash of the host holding the disk can lose the last seconds of heartbeats, which only
makes a machine look staler (never a wrong shutdown reason: `shutdown_message` is still
written atomically and fsynced). A reader may see a half-written value; no reader reads it.

The folder's own modification time is what joboutputs retention counts from
(`state/outputs.py`: kept `joboutputs_keep_seconds` after the last write). An overwrite
does not move it, so it is moved by hand when it lags the heartbeat by more than
`FOLDER_TOUCH_SECONDS`: one more small write per machine per minute, not per heartbeat.
Both times are the filesystem's (the file's mtime as stamped, compared with the folder's),
so a serve host whose clock is off cannot skip or overdo it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from vcyclectl.state.files import FILE_MODE, ensure_dir

#: How far the folder's mtime may lag its heartbeat file's before it is moved: retention
#: counts in hours (`joboutputs_keep_seconds`, default 24 h), so a minute is precise enough.
FOLDER_TOUCH_SECONDS = 60.0

_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


def write_heartbeat(path: str | Path, data: bytes) -> None:
    """Overwrite the heartbeat file at `path` with `data` in place (see the module): its
    mtime becomes now, whatever `data` is (an empty body too). Creates the folder, 0700,
    and the file, 0600, on first use. `path` may be a plain string: `serve` makes one per
    heartbeat, and a `Path` costs more to build than the write itself."""
    folder = os.path.dirname(path)
    try:
        fd = os.open(path, _OPEN_FLAGS, FILE_MODE)
    except FileNotFoundError:
        ensure_dir(Path(folder))
        fd = os.open(path, _OPEN_FLAGS, FILE_MODE)
    try:
        _pwrite_all(fd, data)
        st = os.fstat(fd)
        if st.st_size > len(data):
            os.ftruncate(fd, len(data))
        if not data:
            os.utime(fd)  # a write of nothing moves no mtime: the heartbeat is the mtime
            st = os.fstat(fd)
    finally:
        os.close(fd)
    touch_folder_if_behind(folder, st.st_mtime)


def touch_folder_if_behind(folder: str | Path, written_at: float) -> bool:
    """Move the folder's mtime to now when it is more than `FOLDER_TOUCH_SECONDS` older than
    `written_at` (a file's mtime in it), so retention counts from the last write. Returns
    whether it moved it."""
    try:
        folder_mtime = os.stat(folder).st_mtime
    except FileNotFoundError:  # removed meanwhile (retention of an ended machine)
        return False
    if written_at - folder_mtime <= FOLDER_TOUCH_SECONDS:
        return False
    try:
        os.utime(folder)
    except FileNotFoundError:
        return False
    return True


def _pwrite_all(fd: int, data: bytes) -> None:
    """All of `data` at offset 0, or raise (a full filesystem writes part, then fails)."""
    view = memoryview(data)
    offset = 0
    while offset < len(data):
        written = os.pwrite(fd, view[offset:], offset)
        if written <= 0:
            raise OSError(errno.ENOSPC, "no room to write the heartbeat", "")
        offset += written
