"""Append-only JSON-lines files and atomic whole-file writes on a shared filesystem.

Why journals: writing one machine's record must cost O(1), and a pass must read a space's
records fast. One file per machine makes reads O(files) in metadata round trips (slow on
NFS); one JSON file per space makes every write a rewrite. A journal gives both: appends
are O(1), a read is one sequential file, and `compact()` rewrites it atomically now and then.
A torn last line (a writer killed mid-append) is ignored by readers and dropped at the next
compaction.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

FILE_MODE = 0o600
DIR_MODE = 0o700


def ensure_dir(path: Path) -> Path:
    """The folder and any missing parents, each 0700 (`mkdir(parents=True)` would give the
    parents the umask's 0755: `spaces/` and `local/` were world-readable)."""
    missing = []
    folder = path
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:  # another host made it meanwhile
            pass
    return path


def open_private(path: Path, mode: str = "a+") -> Any:
    """Open (creating it 0600, never world-readable) a file such as a lock."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | (os.O_APPEND if "a" in mode else 0),
                 FILE_MODE)
    return os.fdopen(fd, mode)


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Temporary file in the same folder, fsync, rename: readers see old or new, never half.

    `durable=False` skips the fsync for data whose loss in a crash does no harm (a heartbeat
    is only ever "recent enough"); the rename still makes it atomic."""
    import tempfile

    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_json(path: Path, value: Any) -> None:
    write_atomic(path, (json.dumps(value, indent=1, sort_keys=True) + "\n").encode())


def read_json(path: Path, default: Any = None) -> Any:
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read())
    except FileNotFoundError:
        return default
    except ValueError:
        return default


def dumps_line(value: Any) -> bytes:
    return (json.dumps(value, separators=(",", ":"), sort_keys=True) + "\n").encode()


def append_lines(path: Path, values: Iterable[Any], *, sync: bool = True) -> None:
    """Append whole lines in one write, so concurrent readers never see a mixed line."""
    data = b"".join(dumps_line(v) for v in values)
    if not data:
        return
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # a killed writer left a torn line: never glue onto it
        _write_all(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """Write all of `data` or raise. `os.write` may write only part of it (a filesystem
    that fills up mid-write writes what fits and returns the count; the next write raises
    ENOSPC): taking a short write for success once recorded a torn intent and let its
    create go ahead, leaving a machine without a record (found by benchmarks/chaos.py)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, "no room to append", "")
        view = view[written:]


def read_lines(path: Path, offset: int = 0) -> tuple[list[Any], int]:
    """Parsed complete lines from `offset`, and the offset just past the last complete line."""
    try:
        with open(path, "rb") as handle:
            return read_handle_lines(handle, offset)
    except FileNotFoundError:
        return [], 0


def read_handle_lines(handle: Any, offset: int = 0) -> tuple[list[Any], int]:
    """`read_lines` on an open file, so a caller can tie the offset to that file's inode."""
    if offset:
        handle.seek(offset)
    data = handle.read()
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    body = data[: end + 1]
    try:  # one parse of the whole journal is several times faster than one per line
        parsed = json.loads(b"[" + body.rstrip(b"\n").replace(b"\n", b",") + b"]")
        if isinstance(parsed, list):
            return parsed, offset + end + 1
    except ValueError:
        pass  # a torn or blank line somewhere: fall back to line by line
    out: list[Any] = []
    for raw in body.splitlines():
        if not raw:
            continue
        try:
            out.append(json.loads(raw))
        except ValueError:
            continue  # a torn line from a killed writer: skip it, compaction drops it
    return out, offset + end + 1


def iter_lines(path: Path) -> Iterator[Any]:
    lines, _ = read_lines(path)
    yield from lines


class JournalTail:
    """Follow a journal that is appended to and now and then replaced whole (compaction).

    Long-lived readers (`vcyclectl serve`, a driver shared by a pass's threads) read only what
    was appended since their last look. They keep the file they read open: comparing only
    inode numbers would be fooled when the file system reuses the number of a replaced
    journal for a later one, and an open file's number cannot be reused.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: Any = None
        self._offset = 0

    def read_new(self) -> tuple[bool, list[Any]]:
        """(started over, lines): when started over is true the lines are the whole journal
        (or none: it does not exist) and the caller must forget what it had."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self.close()
            return True, []
        restart = self._handle is None or os.fstat(self._handle.fileno()).st_ino != st.st_ino
        if restart:
            self.close()
            try:
                self._handle = open(self.path, "rb")
            except FileNotFoundError:
                return True, []
            self._offset = 0
        elif st.st_size == self._offset:
            return False, []  # nothing new: one stat, no read
        lines, self._offset = read_handle_lines(self._handle, self._offset)
        return restart, lines

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self._offset = 0
