"""The state directory, shared by every host that runs vcyclectl (layout in docs/state.md).

    STATE_DIR/format.json                     format_version, this state directory's id
    STATE_DIR/spaces/SPACE/records.jsonl      machine records, a journal (put/del lines)
    STATE_DIR/spaces/SPACE/finished.jsonl     ended machines, for accounting (append only)
    STATE_DIR/spaces/SPACE/events.jsonl       what each pass did and why (append only)
    STATE_DIR/spaces/SPACE/backoff.json       machinetype -> last abort time and message
    STATE_DIR/spaces/SPACE/last_pass.json     summary of the last finished pass
    STATE_DIR/spaces/SPACE/lock, holder.json  the space's lock and who holds it (lock.py)
    STATE_DIR/spaces/SPACE/drains/*.json      drain marks: space, machinetype-MT, machine-NAME
    STATE_DIR/spaces/SPACE/joboutputs/NAME/   files a machine reported (vcyclectl serve)
    STATE_DIR/local/SPACE/                    the simulated local cloud (clouds/local.py)

Writers of records, backoff and last_pass hold the space's lock; drain marks and joboutputs
are single files written atomically by anyone. Nothing here decides anything.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

from vcyclectl import __version__
from vcyclectl.errors import StateDirUnusable, StateError
from vcyclectl.state.files import (ensure_dir, read_json, write_atomic)
from vcyclectl.state.space import JOB_OUTPUT_NAME, MACHINE_NAME, SpaceState, valid_machine_name

FORMAT_VERSION = 1

__all__ = ["FORMAT_VERSION", "JOB_OUTPUT_NAME", "MACHINE_NAME", "SpaceState", "StateDir",
           "valid_machine_name"]

class StateDir:
    """The root of the state directory: its format and id."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def format_file(self) -> Path:
        return self.root / "format.json"

    def exists(self) -> bool:
        return self.format_file.exists()

    def open(self, *, create: bool) -> str:
        """The state directory's id; created (once, race-free across hosts) when asked.

        Without `create` (every read-only command) a missing or uninitialised directory is
        an error naming the path: an unmounted share must not look like an empty fleet.
        """
        info = self._read_format()
        if info is None:
            self.refuse_new_identity_over_records()
            if not create:
                what = "does not exist" if not self.root.exists() else \
                    "is not initialised (no format.json; is the share mounted?)"
                raise StateDirUnusable(f"state directory {self.root} {what}; "
                                       "`vcyclectl reconcile` creates it on first use")
            self._create()
            info = self._read_format()
            if info is None:
                raise StateDirUnusable(f"cannot create {self.format_file}")
        if not isinstance(info, dict):
            raise StateDirUnusable(f"{self.format_file} is not a JSON object; restore it from "
                                   "a backup (docs/state.md, \"A lost format.json\")")
        version = info.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise StateDirUnusable(f"{self.format_file}: format_version must be a whole number, "
                                   f"got {version!r}")
        if version > FORMAT_VERSION:
            raise StateError(f"{self.format_file}: format_version {version} is newer than this "
                             f"vcyclectl understands ({FORMAT_VERSION}); upgrade vcyclectl")
        state_id = info.get("id")
        if not isinstance(state_id, str) or not state_id:
            raise StateDirUnusable(f"{self.format_file} has no state id (\"id\"); it is what "
                                   "every machine is tagged with: restore it from a backup or "
                                   "from the machines' vcyclectl-state-id tag")
        return state_id

    def _read_format(self) -> Any:
        """`format.json`, None when absent; an environment error (not a directory,
        permission denied) becomes one line naming the path, not a crash."""
        try:
            return read_json(self.format_file)
        except OSError as exc:
            raise StateDirUnusable(f"state directory {self.root}: cannot read "
                                   f"{exc.filename or self.format_file}: "
                                   f"{exc.strerror or exc}") from exc
    def spaces_with_records(self) -> list[str]:
        """Spaces whose records journal still names live machines."""
        try:
            entries = sorted(os.scandir(self.root / "spaces"), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [e.name for e in entries
                if e.is_dir() and self.space(e.name).records()]

    def recorded_id(self) -> tuple[str, str] | None:
        """(the state id, the file it was read from) as the last passes recorded it."""
        for name in self.spaces_with_records():
            last = self.space(name).last_pass() or {}
            if isinstance(last.get("state_id"), str):
                return last["state_id"], str(self.space(name).last_pass_file)
        return None

    def refuse_new_identity_over_records(self) -> None:
        """A missing or unreadable format.json next to machine records is a lost identity,
        not a fresh directory: a new id would make every machine tagged with the old one
        invisible to the listing, never deleted again, and the fleet would be created twice.
        """
        spaces = self.spaces_with_records()
        if not spaces:
            return
        found = self.recorded_id()
        if found is not None:
            old_id, source = found
            how = (f"the old id is {old_id} (from {source}); recreate it with: "
                   f"echo '{{\"format_version\": {FORMAT_VERSION}, \"id\": \"{old_id}\"}}' "
                   f"> {self.format_file}")
        else:
            how = (f"recreate it with {{\"format_version\": {FORMAT_VERSION}, \"id\": \"ID\"}} "
                   "where ID is the vcyclectl-state-id tag (label, metadata) the space's "
                   "machines carry on the cloud")
        raise StateError(
            f"{self.format_file} is missing or unreadable, but {self.root / 'spaces'} holds "
            f"machine records ({', '.join(spaces)}); refusing to make a new state id, which "
            "would orphan every machine tagged with the old one. Restore format.json from a "
            f"backup, or {how}")

    def _create(self) -> None:
        import uuid

        data = {"format_version": FORMAT_VERSION, "id": uuid.uuid4().hex[:12],
                "created_at": time.time(), "created_by": f"vcyclectl {__version__}"}
        tmp = self.root / f".format.{uuid.uuid4().hex}.tmp"
        try:
            ensure_dir(self.root)
            write_atomic(tmp, (__import__("json").dumps(data) + "\n").encode())
            try:
                os.link(tmp, self.format_file)  # link fails if another host won the race
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise StateDirUnusable(f"cannot create state directory {self.root}: "
                                   f"{exc.strerror or exc}") from exc

    def clock_skew(self, clock: Callable[[], float] = time.time) -> float:
        """Seconds this host's clock is ahead of the state directory's filesystem (negative:
        behind), 0 when they agree to within the probe's own duration.

        Hosts share times through this directory (heartbeat mtimes, records' created_at), so
        a host whose clock is off judges every machine's age wrongly. The probe creates a
        file and reads the mtime the filesystem stamped on it (on NFS the server's clock),
        then removes it; nothing is left behind.
        """
        import uuid

        probe = self.root / f".clock.{uuid.uuid4().hex}.tmp"
        before = clock()
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"clock probe\n")
        finally:
            os.close(fd)
        try:
            stamped = probe.stat().st_mtime
        finally:
            after = clock()
            probe.unlink(missing_ok=True)
        if stamped < before:
            return before - stamped
        if stamped > after:
            return after - stamped
        return 0.0

    def space(self, name: str) -> "SpaceState":
        return SpaceState(self.root / "spaces" / name, name)
