"""Per-space locks on the shared filesystem, so several hosts cooperate without a database.

`portalocker` (flock/fcntl underneath) works across hosts on NFSv4 and CephFS, and the kernel
drops a dead process's lock, so a crashed host leaves no stale lock and another host takes
the space over on its next pass. portalocker is imported here, lazily, because importing it
costs ~60 ms (`importlib.metadata`) that read-only commands should not pay.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from vcyclectl import __version__
from vcyclectl.errors import LockTimeout
from vcyclectl.state.files import FILE_MODE, ensure_dir, read_json, write_json


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) a space's lock, for `status`."""

    host: str
    pid: int
    since: float
    version: str
    pass_id: str = ""

    def to_record(self) -> dict[str, Any]:
        return {"host": self.host, "pid": self.pid, "since": self.since,
                "version": self.version, "pass_id": self.pass_id}


class Busy(Exception):
    """The lock is held elsewhere (only raised by `SpaceLock.acquire` without waiting)."""


class SpaceLock:
    """An exclusive lock on one space's `lock` file, with a `holder.json` beside it."""

    def __init__(self, space_dir: Path, pass_id: str = "") -> None:
        self.path = space_dir / "lock"
        self.holder_path = holder_path(space_dir)
        self.pass_id = pass_id
        self._handle: IO[str] | None = None

    def acquire(self, wait: float | None = None) -> None:
        """Take the lock now, or within `wait` seconds; `Busy` or `LockTimeout` otherwise."""
        import portalocker

        ensure_dir(self.path.parent)
        deadline = None if wait is None else time.monotonic() + wait
        handle = open(self.path, "a+")
        os.chmod(self.path, FILE_MODE)
        delay = 0.05
        while True:
            try:
                portalocker.lock(handle, portalocker.LOCK_EX | portalocker.LOCK_NB)
                break
            except portalocker.exceptions.LockException:
                if deadline is None:
                    handle.close()
                    raise Busy(self.path.parent.name) from None
                if time.monotonic() >= deadline:
                    handle.close()
                    raise LockTimeout(f"space {self.path.parent.name}: lock still held after "
                                      f"{wait:g}s by {describe_holder(self.holder())}") from None
                time.sleep(delay)
                delay = min(delay * 1.5, 1.0)
        self._handle = handle
        import socket

        write_json(self.holder_path, Holder(socket.gethostname(), os.getpid(), time.time(),
                                            __version__, self.pass_id).to_record())

    def release(self) -> None:
        if self._handle is None:
            return
        import portalocker

        try:
            portalocker.unlock(self._handle)
        finally:
            self._handle.close()
            self._handle = None

    def holder(self) -> Holder | None:
        return read_holder(self.holder_path)

    def __enter__(self) -> "SpaceLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder_path(space_dir: Path) -> Path:
    """Where a space's lock holder says who it is (host, pid, since)."""
    return space_dir / "holder.json"


def read_holder(path: Path) -> Holder | None:
    data = read_json(path)
    if not isinstance(data, dict):
        return None
    try:
        return Holder(str(data["host"]), int(data["pid"]), float(data["since"]),
                      str(data.get("version", "")), str(data.get("pass_id", "")))
    except (KeyError, TypeError, ValueError):
        return None


def is_locked(space_dir: Path) -> bool:
    """Whether some process holds the space's lock right now (probe: take and drop it)."""
    import portalocker

    path = space_dir / "lock"
    if not path.exists():
        return False
    try:
        handle = open(path, "a+")
    except OSError:  # a read-only state directory (a monitoring host): flock needs no write
        handle = open(path, "r")
    with handle:
        try:
            portalocker.lock(handle, portalocker.LOCK_EX | portalocker.LOCK_NB)
        except portalocker.exceptions.LockException:
            return True
        portalocker.unlock(handle)
        return False


def describe_holder(holder: Holder | None) -> str:
    if holder is None:
        return "an unknown process"
    return f"{holder.host} pid {holder.pid} (vcyclectl {holder.version})"
