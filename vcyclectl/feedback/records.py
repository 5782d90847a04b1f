"""The machine records `serve` checks every request against, kept current cheaply.

Every request names a machine that must have a live record. Re-reading the space's
journal per request would cost O(machines); a `RecordsCache` reads only what was appended
since its last look (`JournalTail`), and a compaction (a new file) is replayed once.

Most requests find the journal unchanged. They learn that from one `stat` taken without
the lock: the file's identity (inode, size, mtime) is the one the last read started from,
so the records in memory are current. Only when it differs does a thread take the lock
and read what was appended; a gthread worker's threads then no longer queue on one lock
(held across a `stat`) for every heartbeat.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Mapping

from vcyclectl.core.records import MachineRecord
from vcyclectl.state.files import JournalTail
from vcyclectl.state.space import journal_change


def _identity(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class RecordsCache:
    """One space's machine records, kept current by reading only what was appended.

    Thread-safe: a gthread worker shares one per space. Readers without the lock see
    either the previous or the new mapping (a replay builds a new one and swaps it in),
    never one half filled.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._path = str(path)  # stat'ed per request: no `Path.__fspath__` each time
        self._raw: dict[str, Mapping[str, Any]] = {}
        self._tail = JournalTail(path)
        self._lock = threading.Lock()
        #: The journal's identity when the last read began: unchanged means nothing to read.
        self._read_from: tuple[int, int, int] | None = None
        self._read_once = False
        self.replays = 0  # full re-reads, for tests and the benchmark
        self.reads = 0  # reads of appended lines (or replays), for tests

    def get(self, name: str) -> MachineRecord | None:
        seen = _identity(self._path)
        if not self._read_once or seen is None or seen != self._read_from:
            with self._lock:
                self._refresh(seen)
        raw = self._raw.get(name)
        return MachineRecord.from_record(raw) if raw is not None else None

    def _refresh(self, seen: tuple[int, int, int] | None) -> None:
        """Read what was appended; `seen` is the identity stat'ed before it, so a line
        appended during the read makes the next look-up read again (never the reverse)."""
        if self._read_once and seen is not None and seen == self._read_from:
            return  # another thread read it while this one waited for the lock
        restart, lines = self._tail.read_new()
        self.reads += 1
        raw = {} if restart else self._raw
        if restart:
            self.replays += 1
        for line in lines:
            change = journal_change(line)
            if change is None:
                continue
            name, data = change
            if data is None:
                raw.pop(name, None)
            else:
                raw[name] = data
        self._raw = raw
        self._read_from = seen
        self._read_once = True
