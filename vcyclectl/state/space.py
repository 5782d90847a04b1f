"""One space's folder in the state directory (docs/state.md): its records journal, the
finished and event journals, backoff, the last pass, drain marks and what its machines
reported. Writers of records, backoff and last_pass hold the space's lock; drain marks and
joboutputs are single files written atomically by anyone. Nothing here decides anything."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from vcyclectl.errors import StateError, UsageError
from vcyclectl.state.cursor import generations, rotate
from vcyclectl.state.files import (append_lines, ensure_dir, iter_lines, read_json,
                               write_atomic, write_json)
from vcyclectl.core import collector
from vcyclectl.core.records import (NO_EXTRA, DrainMark, Drains, JournalLine, MachineRecord,
                                    Report, decode_journal, decode_journal_line)

#: Machine names from the cloud are data, never paths: this is checked before any use.
MACHINE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")
JOB_OUTPUT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def valid_machine_name(name: str) -> bool:
    return bool(MACHINE_NAME.fullmatch(name))


_MACHINE_NAME_LINES = re.compile(r"(?:[a-z0-9][a-z0-9-]{0,127}\n)*")


def _all_machine_names(names: Sequence[str]) -> bool:
    """`valid_machine_name` of every name, in one regex pass over them all; counting the
    newlines keeps a name that holds one from passing as two."""
    text = "".join(f"{n}\n" for n in names)
    return text.count("\n") == len(names) and bool(_MACHINE_NAME_LINES.fullmatch(text))


def journal_change(line: Any) -> tuple[str, Mapping[str, Any] | None] | None:
    """What one parsed records-journal line says: (name, record data) for a `put`, (name,
    None) for a `del`, None for a line that says nothing readable (the one home of the
    journal's rule, for `SpaceState` and `serve`'s records cache)."""
    if not isinstance(line, dict):
        return None
    if "put" in line:
        rec = line["put"]
        if isinstance(rec, dict) and isinstance(rec.get("name"), str):
            return rec["name"], rec
        return None
    if "del" in line:
        return str(line["del"]), None
    return None


class SpaceState:
    """One space's files. Thread-safe appends: a pass's worker threads share one instance."""

    COMPACT_MIN_LINES = 2000

    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name
        self._append_lock = threading.Lock()
        self._journal_lines = 0

    # -- layout -------------------------------------------------------------------------
    @property
    def records_file(self) -> Path:
        return self.path / "records.jsonl"

    @property
    def finished_file(self) -> Path:
        return self.path / "finished.jsonl"

    @property
    def events_file(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def backoff_file(self) -> Path:
        return self.path / "backoff.json"

    @property
    def last_pass_file(self) -> Path:
        return self.path / "last_pass.json"

    @property
    def drains_dir(self) -> Path:
        return self.path / "drains"

    @property
    def joboutputs_dir(self) -> Path:
        return self.path / "joboutputs"

    def ensure(self) -> None:
        ensure_dir(self.path)
        ensure_dir(self.drains_dir)
        ensure_dir(self.joboutputs_dir)

    # -- machine records ----------------------------------------------------------------
    def records(self) -> dict[str, MachineRecord]:
        """Replay the journal: the last `put` of a name wins, a `del` removes it.

        Hot: a pass reads every record of its space (issue 17), so the whole journal is
        decoded in one msgspec call straight into records, with the cyclic collector held
        off (it would only rescan the new records as they are made); any line that is not
        a plain current-version line sends the journal down `_replay`, line by line."""
        try:
            data = self.records_file.read_bytes()
        except FileNotFoundError:
            self._journal_lines = 0
            return {}
        body = data[: data.rfind(b"\n") + 1]
        with collector.paused():
            lines = decode_journal(body)
            fast = self._replay_decoded(lines) if lines is not None else None
            return fast if fast is not None else self._replay(body)

    def _replay_decoded(self, lines: list[JournalLine]) -> dict[str, MachineRecord] | None:
        """The records of a journal decoded whole, or None if a line needs `_replay`."""
        records: dict[str, MachineRecord] = {}
        for line in lines:
            put, gone = line.put, line.gone
            if put is not None and gone is None and put.extra is NO_EXTRA:
                records[put.name] = put
            elif gone is not None and put is None:
                records.pop(gone, None)
            else:
                return None
        if not _all_machine_names(list(records)):
            return None
        self._journal_lines = len(lines)
        return records

    def _replay(self, body: bytes) -> dict[str, MachineRecord]:
        """Line by line: torn lines skipped, fields from a newer version kept in `extra`,
        names that are not machine names ignored, unreadable records said (`_record`)."""
        raw: dict[str, tuple[int, MachineRecord | Mapping[str, Any]]] = {}
        number = 0
        for number, text in enumerate(body.splitlines(), 1):
            plain = decode_journal_line(text)
            if plain is not None and (plain.put is None) != (plain.gone is None) and \
                    (plain.put is None or plain.put.extra is NO_EXTRA):
                if plain.put is not None:
                    raw[plain.put.name] = (number, plain.put)
                else:
                    raw.pop(str(plain.gone), None)
                continue
            try:
                line = json.loads(text)
            except ValueError:
                continue  # a torn line from a killed writer: skipped, compaction drops it
            change = journal_change(line)
            if change is None:
                continue
            name, data = change
            if data is None:
                raw.pop(name, None)
            else:
                raw[name] = (number, data)
        self._journal_lines = number
        records: dict[str, MachineRecord] = {}
        for name, (where, rec) in raw.items():
            if not valid_machine_name(name):
                continue
            record = rec if isinstance(rec, MachineRecord) else self._record(rec, where)
            if record is not None:
                records[name] = record
        return records

    def _record(self, data: Mapping[str, Any], number: int) -> MachineRecord | None:
        """One record, or None (said on stderr with the file and line) when it cannot be
        read: a hand edit, a torn disk block, a field a newer vcyclectl wrote differently.
        Skipping it never deletes anything: a machine without a record is adopted."""
        try:
            record = MachineRecord.from_record(data)
            if not isinstance(record.created_at, (int, float)) or \
                    not isinstance(record.processors, int) or \
                    not isinstance(record.machinetype, str):
                raise TypeError("created_at, processors or machinetype of the wrong type")
            return record
        except (TypeError, ValueError, KeyError) as exc:
            from vcyclectl import log

            log.warning("machine record unreadable, skipped", file=str(self.records_file),
                        line=number, name=str(data.get("name")), error=str(exc))
            return None

    def put_records(self, records: Iterable[MachineRecord]) -> None:
        """Write (or overwrite) records: one append and one fsync however many."""
        lines = [{"put": r.to_record()} for r in records]
        self._append(self.records_file, lines)

    def delete_records(self, names: Iterable[str]) -> None:
        self._append(self.records_file, [{"del": n} for n in names])

    def _append(self, path: Path, lines: list[dict[str, Any]]) -> None:
        if not lines:
            return
        with self._append_lock:
            append_lines(path, lines)
            if path == self.records_file:
                self._journal_lines += len(lines)

    def compact(self, records: Mapping[str, MachineRecord]) -> bool:
        """Rewrite the journal as one `put` per live record when it has grown; lock held."""
        if self._journal_lines < max(self.COMPACT_MIN_LINES, 2 * len(records)):
            return False
        from vcyclectl.state.files import dumps_line

        with self._append_lock:
            data = b"".join(dumps_line({"put": r.to_record()}) for r in records.values())
            write_atomic(self.records_file, data)
            self._journal_lines = len(records)
        return True

    # -- accounting and events ----------------------------------------------------------
    def add_finished(self, entries: Iterable[Mapping[str, Any]]) -> None:
        self._append(self.finished_file, [dict(e) for e in entries])

    def finished(self) -> list[dict[str, Any]]:
        """Every ended machine still on disk, oldest first (rotated copies too)."""
        return [e for path in generations(self.finished_file) for e in iter_lines(path)]

    def add_events(self, events: Iterable[Mapping[str, Any]]) -> None:
        self._append(self.events_file, [dict(e) for e in events])

    def events(self, machine: str | None = None) -> list[dict[str, Any]]:
        """The event log, oldest first (rotated copies too), of one machine or all."""
        return [e for path in generations(self.events_file) for e in iter_lines(path)
                if machine is None or e.get("machine") == machine]

    def rotate_journals(self, max_bytes: int, keep: int) -> list[str]:
        """Rotate `finished.jsonl` and `events.jsonl` once over `max_bytes` (docs/state.md),
        keeping `keep` plain copies. Under the space's lock, after the ledger has caught up;
        a reader that has not finds the rest in the `.1` copy by its cursor."""
        rotated = []
        for path in (self.finished_file, self.events_file):
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if size > max_bytes and rotate(path, keep):
                rotated.append(path.name)
        return rotated

    # -- backoff ------------------------------------------------------------------------
    def backoff(self) -> dict[str, float]:
        data = read_json(self.backoff_file, {})
        out: dict[str, float] = {}
        if isinstance(data, dict):
            for mt, value in data.items():
                if isinstance(value, dict) and isinstance(value.get("last_abort_at"), (int, float)):
                    out[mt] = float(value["last_abort_at"])
        return out

    def record_aborts(self, aborts: Mapping[str, float], messages: Mapping[str, str]) -> None:
        if not aborts:
            return
        data = read_json(self.backoff_file, {})
        if not isinstance(data, dict):
            data = {}
        for mt, when in aborts.items():
            old = data.get(mt, {})
            if not isinstance(old, dict) or old.get("last_abort_at", 0) < when:
                data[mt] = {"last_abort_at": when, "message": messages.get(mt, "")}
        write_json(self.backoff_file, data)

    # -- last pass ----------------------------------------------------------------------
    def write_last_pass(self, summary: Mapping[str, Any]) -> None:
        write_json(self.last_pass_file, dict(summary))

    def last_pass(self) -> dict[str, Any] | None:
        value = read_json(self.last_pass_file)
        return value if isinstance(value, dict) else None

    # -- drains -------------------------------------------------------------------------
    @staticmethod
    def drain_file_name(machinetype: str | None, machine: str | None) -> str:
        if machine:
            return f"machine-{machine}.json"
        if machinetype:
            return f"machinetype-{machinetype}.json"
        return "space.json"

    def set_drain(self, mark: DrainMark, *, machinetype: str | None = None,
                  machine: str | None = None) -> None:
        if machine and not valid_machine_name(machine):
            raise UsageError(f"not a machine name: {machine!r}")
        ensure_dir(self.drains_dir)
        write_json(self.drains_dir / self.drain_file_name(machinetype, machine), mark.to_record())

    def clear_drain(self, *, machinetype: str | None = None, machine: str | None = None) -> bool:
        try:
            (self.drains_dir / self.drain_file_name(machinetype, machine)).unlink()
            return True
        except FileNotFoundError:
            return False

    def drains(self) -> Drains:
        space = None
        machinetypes: dict[str, DrainMark] = {}
        machines: dict[str, DrainMark] = {}
        try:
            entries = list(os.scandir(self.drains_dir))
        except FileNotFoundError:
            return Drains()
        for entry in entries:
            if not entry.name.endswith(".json"):
                continue
            try:
                data = read_json(Path(entry.path))
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")
                mark = DrainMark.from_record(data)
            except (ValueError, TypeError) as exc:  # one bad mark never stops the space
                from vcyclectl import log

                log.warning("drain mark unreadable, ignored", file=entry.path, error=str(exc))
                continue
            stem = entry.name[: -len(".json")]
            if stem == "space":
                space = mark
            elif stem.startswith("machinetype-"):
                machinetypes[stem[len("machinetype-"):]] = mark
            elif stem.startswith("machine-"):
                machines[stem[len("machine-"):]] = mark
        return Drains(space=space, machinetypes=machinetypes, machines=machines)

    # -- joboutputs (what machines reported through `vcyclectl serve`) -------------------
    def machine_outputs_dir(self, name: str) -> Path:
        if not valid_machine_name(name):
            raise StateError(f"refusing unsafe machine name {name!r}")
        return self.joboutputs_dir / name

    def reports(self, heartbeat_files: Mapping[str, str]) -> dict[str, Report]:
        """Reports of every machine that has a joboutputs folder: one scandir, then per
        reporting machine a stat of its heartbeat file and a read of `shutdown_message`.

        `heartbeat_files` maps machine name -> the heartbeat file name of its machinetype.
        """
        out: dict[str, Report] = {}
        try:
            entries = list(os.scandir(self.joboutputs_dir))
        except FileNotFoundError:
            return out
        for entry in entries:
            name = entry.name
            if not valid_machine_name(name) or not entry.is_dir():
                continue
            out[name] = self._report(Path(entry.path), heartbeat_files.get(name, "heartbeat"))
        return out

    @staticmethod
    def _report(folder: Path, heartbeat_file: str) -> Report:
        heartbeat_at = None
        message = None
        try:
            heartbeat_at = (folder / heartbeat_file).stat().st_mtime
        except FileNotFoundError:
            pass
        try:
            raw = (folder / "shutdown_message").read_bytes()[:1024]
            text = raw.decode("utf-8", "replace").strip()
            message = text.splitlines()[0] if text else None
        except FileNotFoundError:
            pass
        return Report(heartbeat_at=heartbeat_at, shutdown_message=message)
