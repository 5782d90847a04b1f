"""Reading an append-only journal exactly once, across rotation, truncation and loss.

The budget ledger (and anything else that folds `finished.jsonl` into totals) keeps a
`Cursor`: which journal file it has read (a fingerprint of that file's first line) and how
far (a byte offset). A byte offset alone cannot tell "the same file, grown" from "a new
file after `mv`, logrotate or a lost disk": the first made the ledger recount from a short
new file and *lower* recorded spend (issue 20). With the fingerprint:

- same file, grown: read from the offset;
- a different file (rotated by `mv`, logrotate's `create`, or `copytruncate` followed by
  new lines): the rest of the old file is read from its rotated copy beside it
  (`finished.jsonl.1`, `finished.jsonl-20261129`, … found by fingerprint), then the new file
  from its start. If the old copy is gone, what it held past the offset is lost to the
  ledger and that is said; nothing counted is ever uncounted;
- same file but shorter than the offset (lines cut out of it): said, and the cursor moves
  to its end, so nothing is counted twice;
- the file missing: said; the cursor stays until a new file appears.

Totals built this way only ever grow. Compressed rotated copies (`.gz`) are not read:
rotate with `delaycompress`, or let vcyclectl rotate (`rotate`), which keeps plain copies.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcyclectl.state.files import read_lines

#: The first line is identified by a hash of at most this many bytes of it.
_FINGERPRINT_BYTES = 4096


@dataclass(frozen=True)
class Cursor:
    """Where a reader of one journal stands: which file (fingerprint) and how far."""

    fingerprint: str | None = None
    offset: int = 0

    def to_record(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "offset": self.offset}

    @classmethod
    def from_record(cls, data: Any) -> "Cursor":
        if not isinstance(data, dict):
            return cls()
        fingerprint = data.get("fingerprint")
        return cls(fingerprint if isinstance(fingerprint, str) else None,
                   int(data.get("offset") or 0))


@dataclass
class Catchup:
    """What a read brought: the new entries, the cursor after them, and what went wrong."""

    entries: list[Any] = field(default_factory=list)
    cursor: Cursor = field(default_factory=Cursor)
    problems: list[str] = field(default_factory=list)


def fingerprint(path: Path) -> str | None:
    """A hash of the file's first complete line; None if it is missing or has none yet."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(_FINGERPRINT_BYTES)
    except (FileNotFoundError, IsADirectoryError):
        return None
    end = head.find(b"\n")
    if end < 0 and len(head) < _FINGERPRINT_BYTES:
        return None  # the first line is still being written
    return hashlib.sha256(head[:end if end >= 0 else len(head)]).hexdigest()[:32]


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def rotated_copies(path: Path) -> list[Path]:
    """Plain files beside the journal whose name starts with its name (`.1`, `-DATE`)."""
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return []
    return [path.parent / n for n in sorted(names)
            if n.startswith(path.name) and n != path.name and not n.endswith((".gz", ".xz",
                                                                                ".bz2", ".zst"))]


def read_since(path: Path, cursor: Cursor) -> Catchup:
    """Entries appended to the journal since `cursor`, across a rotation (see the module)."""
    out = Catchup(cursor=cursor)
    current = fingerprint(path)
    size = _size(path)
    if cursor.fingerprint is not None and current != cursor.fingerprint:
        _finish_rotated(path, cursor, out)
        if size is None:
            if out.cursor == cursor:
                out.problems.append(f"{path} is missing; what was counted from it is kept, "
                                    "and a new journal is counted from its start")
            return out
        out.cursor = Cursor(None, 0)
    elif cursor.fingerprint is not None and size is not None and size < cursor.offset:
        out.problems.append(
            f"{path} is shorter ({size} bytes) than what was already counted "
            f"({cursor.offset} bytes): lines were cut out of it. What was counted is kept; "
            "counting goes on from its present end, so nothing is counted twice")
        out.cursor = Cursor(current, size)
        return out
    if size is None:
        return out
    entries, offset = read_lines(path, out.cursor.offset)
    out.entries.extend(entries)
    out.cursor = Cursor(fingerprint(path) if offset else None, offset)
    return out


def _finish_rotated(path: Path, cursor: Cursor, out: Catchup) -> None:
    """Read the rest of the file the cursor was on, from its rotated copy beside `path`."""
    for copy in rotated_copies(path):
        if fingerprint(copy) != cursor.fingerprint:
            continue
        copy_size = _size(copy) or 0
        if copy_size < cursor.offset:
            out.problems.append(f"{copy} (the rotated journal) is shorter than what was "
                                "already counted; nothing more is read from it")
        else:
            entries, _ = read_lines(copy, cursor.offset)
            out.entries.extend(entries)
        out.cursor = Cursor(None, 0)
        return
    if _size(path) is not None:
        out.problems.append(
            f"{path} was replaced and the journal it replaced is not beside it (compressed, "
            "moved or deleted): whatever was appended to it after the last count is lost to "
            "this total. What was counted is kept")


def rotate(path: Path, keep: int) -> bool:
    """Rotate a journal vcyclectl's way: `path` → `path.1` → … → `path.KEEP` (the oldest
    goes). Only under the space's lock, after every reader that keeps totals has caught up
    (they find the rest in `path.1` anyway). Returns whether it rotated."""
    if _size(path) is None:
        return False
    oldest = path.with_name(f"{path.name}.{keep}")
    if keep < 1:
        path.unlink()
        return True
    if oldest.exists():
        oldest.unlink()
    for n in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{n}")
        if older.exists():
            older.rename(path.with_name(f"{path.name}.{n + 1}"))
    path.rename(path.with_name(f"{path.name}.1"))
    return True


def generations(path: Path) -> list[Path]:
    """The journal's vcyclectl-rotated copies, oldest first, then the journal itself."""
    numbered = []
    for copy in rotated_copies(path):
        suffix = copy.name[len(path.name):]
        if suffix.startswith(".") and suffix[1:].isdigit():
            numbered.append((int(suffix[1:]), copy))
    return [p for _, p in sorted(numbered, reverse=True)] + ([path] if path.exists() else [])
