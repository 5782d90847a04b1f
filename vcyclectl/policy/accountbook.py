"""The accounting store of one space (`spaces/SPACE/accounting/`): per month, one line per
ended machine and one per batch that reached the APEL queue, so a retried pass knows what
it already emitted (docs/accounting.md)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from vcyclectl.policy.apel import Job
from vcyclectl.state.files import (append_lines, ensure_dir, read_json, read_lines, write_json)
from vcyclectl.state.store import SpaceState


#: The accounting store's own state file format.
STATE_FORMAT = 1


@dataclass
class Entry:
    """One ended machine in a month's file: the APEL job, and what `budget` bills."""

    job: Job
    ran: bool
    created_at: float
    finished_at: float
    price_per_hour: float | None = None
    outgoing: str = ""
    batch: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {"job": {**asdict(self.job), "ran": self.ran, "created_at": self.created_at,
                        "finished_at": self.finished_at, "price_per_hour": self.price_per_hour,
                        "outgoing": self.outgoing, "batch": self.batch}}

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> "Entry":
        job = Job(**{k: data[k] for k in Job.__dataclass_fields__ if k in data})
        return cls(job, bool(data.get("ran")), float(data.get("created_at") or 0),
                   float(data.get("finished_at") or 0), data.get("price_per_hour"),
                   str(data.get("outgoing") or ""), data.get("batch"))


@dataclass
class Month:
    """What a month's file holds: entries by machine name, and the batches queued."""

    entries: dict[str, Entry] = field(default_factory=dict)
    queued: set[str] = field(default_factory=set)

    def pending(self) -> dict[str, list[Entry]]:
        out: dict[str, list[Entry]] = {}
        for entry in self.entries.values():
            if entry.batch and entry.batch not in self.queued:
                out.setdefault(entry.batch, []).append(entry)
        return out

    def jobs(self) -> list[Job]:
        return [e.job for e in self.entries.values() if e.ran]


class Book:
    """One space's accounting folder."""

    def __init__(self, store: SpaceState) -> None:
        self.store = store
        self.path = store.path / "accounting"
        self.staging = self.path / "staging"

    def month_file(self, month: str) -> Path:
        return self.path / f"jobs-{month}.jsonl"

    def month(self, month: str) -> Month:
        out = Month()
        lines, _ = read_lines(self.month_file(month))
        for line in lines:
            if not isinstance(line, dict):
                continue
            if isinstance(line.get("job"), dict):
                try:
                    entry = Entry.from_record(line["job"])
                except (TypeError, ValueError):
                    continue
                out.entries.setdefault(entry.job.name, entry)  # the first line wins
            elif isinstance(line.get("queued"), str):
                out.queued.add(line["queued"])
        return out

    def months(self) -> list[str]:
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return []
        return sorted(n[len("jobs-"):-len(".jsonl")] for n in names
                      if n.startswith("jobs-") and n.endswith(".jsonl"))

    def append(self, month: str, lines: list[dict[str, Any]]) -> None:
        if lines:
            ensure_dir(self.path)
            append_lines(self.month_file(month), lines)

    def state(self) -> dict[str, Any]:
        data = read_json(self.path / "state.json", {})
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
            data = {"format": STATE_FORMAT}
        data.setdefault("offset", 0)
        data.setdefault("head", "")
        data.setdefault("unsettled", [])
        data.setdefault("summaries", {})
        return data

    def save_state(self, data: Mapping[str, Any]) -> None:
        ensure_dir(self.path)
        write_json(self.path / "state.json", dict(data))


