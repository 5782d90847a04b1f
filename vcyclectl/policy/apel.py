"""APEL message texts: the individual job message (v0.3), the summary message (v0.2) and
the sync message (v0.1), as the APEL server's record classes read them
(`apel/db/records/job.py`, `summary.py`, `sync.py`; `apel/db/loader/record_factory.py`).

Pure: text in, text out. A message is a header line, then records of `Key: value` lines,
each record ended by a `%%` line. Times are whole seconds since the epoch (UTC), durations
whole seconds, as the server parses them.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from typing import Iterable, Mapping

JOB_HEADER = "APEL-individual-job-message: v0.3"
SUMMARY_HEADER = "APEL-summary-job-message: v0.2"
SYNC_HEADER = "APEL-sync-message: v0.1"
INFRASTRUCTURE_DESCRIPTION = "APEL-VCYCLECTL"
INFRASTRUCTURE_TYPE = "grid"
SERVICE_LEVEL_TYPE = "HEPSPEC"


@dataclass(frozen=True)
class Job:
    """One machine that ran, as accounting keeps it (one line in a month's job file)."""

    name: str
    space: str
    machinetype: str
    site: str
    start: int
    end: int
    processors: int
    hs06_per_processor: float
    cpu: int
    vo: str | None = None
    fqan: str | None = None
    memory_kb: int | None = None

    @property
    def wall(self) -> int:
        return max(0, self.end - self.start)

    @property
    def month(self) -> str:
        return month_of(self.end)

    @property
    def hs06_seconds(self) -> float:
        return self.wall * self.processors * self.hs06_per_processor


def month_of(when: float) -> str:
    return time.strftime("%Y-%m", time.gmtime(when))


def month_bounds(month: str) -> tuple[int, int]:
    """[start, end) of a `YYYY-MM` month, in epoch seconds (UTC)."""
    year, mon = (int(x) for x in month.split("-"))
    start = calendar.timegm((year, mon, 1, 0, 0, 0))
    end = calendar.timegm((year + mon // 12, mon % 12 + 1, 1, 0, 0, 0))
    return start, end


def submit_host(space: str) -> str:
    """One SubmitHost per space, the same from every host, so a re-issued summary replaces
    the last one (Vcycle added the host name; several hosts share a space here)."""
    return f"{space}/vcyclectl"


def global_user_name(space: str) -> str:
    """The DN Vac and Vcycle put in their records: the space's name as DC components."""
    return "".join(f"/DC={part}" for part in reversed(space.split(".")))


def vo_of(vo: str | None, fqan: str | None) -> str | None:
    """`accounting_vo`, else the VO an FQAN names (`/lhcb/Role=pilot` -> `lhcb`)."""
    if vo:
        return vo
    if fqan and fqan.startswith("/"):
        return fqan[1:].split("/")[0] or None
    return None


def _number(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def _record(fields: Iterable[tuple[str, object]]) -> str:
    return "".join(f"{k}: {v}\n" for k, v in fields if v is not None) + "%%\n"


def job_record(job: Job) -> str:
    return _record([
        ("Site", job.site), ("SubmitHost", submit_host(job.space)),
        ("LocalJobId", job.name), ("LocalUserId", job.name), ("Queue", job.machinetype),
        ("GlobalUserName", global_user_name(job.space)), ("FQAN", job.fqan),
        ("VO", vo_of(job.vo, job.fqan)), ("WallDuration", job.wall), ("CpuDuration", job.cpu),
        ("Processors", job.processors), ("NodeCount", 1),
        ("InfrastructureDescription", INFRASTRUCTURE_DESCRIPTION),
        ("InfrastructureType", INFRASTRUCTURE_TYPE), ("StartTime", job.start),
        ("EndTime", job.end), ("MemoryReal", job.memory_kb), ("MemoryVirtual", job.memory_kb),
        ("ServiceLevelType", SERVICE_LEVEL_TYPE),
        ("ServiceLevel", _number(job.hs06_per_processor))])


def individual_message(jobs: Iterable[Job]) -> str:
    return JOB_HEADER + "\n" + "".join(job_record(j) for j in jobs)


@dataclass
class SummaryRow:
    """One summary record: jobs of one site, month, VO, SubmitHost, Processors, HS06."""

    site: str
    month: str
    space: str
    vo: str | None
    fqan: str | None
    processors: int
    hs06_per_processor: float
    jobs: int = 0
    wall: int = 0
    cpu: int = 0
    earliest_end: int = 0
    latest_end: int = 0

    def add(self, job: Job) -> None:
        self.jobs += 1
        self.wall += job.wall
        self.cpu += job.cpu
        self.earliest_end = min(self.earliest_end, job.end) if self.earliest_end else job.end
        self.latest_end = max(self.latest_end, job.end)

    def record(self) -> str:
        year, month = self.month.split("-")
        group, role = _group_and_role(self.fqan)
        return _record([
            ("Site", self.site), ("Month", int(month)), ("Year", int(year)),
            ("GlobalUserName", global_user_name(self.space)),
            ("VO", vo_of(self.vo, self.fqan)), ("VOGroup", group), ("VORole", role),
            ("SubmitHost", submit_host(self.space)), ("InfrastructureType", INFRASTRUCTURE_TYPE),
            ("ServiceLevelType", SERVICE_LEVEL_TYPE),
            ("ServiceLevel", _number(self.hs06_per_processor)), ("NodeCount", 1),
            ("Processors", self.processors), ("EarliestEndTime", self.earliest_end),
            ("LatestEndTime", self.latest_end), ("WallDuration", self.wall),
            ("CpuDuration", self.cpu), ("NumberOfJobs", self.jobs)])


def _group_and_role(fqan: str | None) -> tuple[str | None, str | None]:
    """VOGroup and VORole of an FQAN (`/lhcb/prod/Role=pilot/Capability=NULL`)."""
    if not fqan or not fqan.startswith("/"):
        return None, None
    parts = [p for p in fqan.split("/") if p]
    groups = [p for p in parts if "=" not in p]
    roles = [p.split("=", 1)[1] for p in parts if p.startswith("Role=")]
    return "/" + "/".join(groups) if groups else None, roles[0] if roles else None


def summarise(jobs: Iterable[Job]) -> list[SummaryRow]:
    """Summary rows of jobs, one per site/month/VO/SubmitHost/Processors/ServiceLevel."""
    rows: dict[tuple[object, ...], SummaryRow] = {}
    for job in jobs:
        key = (job.site, job.month, job.space, vo_of(job.vo, job.fqan), job.fqan,
               job.processors, job.hs06_per_processor)
        row = rows.get(key)
        if row is None:
            row = rows[key] = SummaryRow(job.site, job.month, job.space, job.vo, job.fqan,
                                         job.processors, job.hs06_per_processor)
        row.add(job)
    return [rows[k] for k in sorted(rows, key=str)]


def summary_message(rows: Iterable[SummaryRow]) -> str:
    return SUMMARY_HEADER + "\n" + "".join(r.record() for r in rows)


def sync_message(counts: Mapping[tuple[str, str, str], int]) -> str:
    """(site, space, month) -> number of jobs the repository should hold for it."""
    out = []
    for (site, space, month), jobs in sorted(counts.items()):
        year, mon = month.split("-")
        out.append(_record([("Site", site), ("SubmitHost", submit_host(space)),
                            ("NumberOfJobs", jobs), ("Month", int(mon)), ("Year", int(year))]))
    return SYNC_HEADER + "\n" + "".join(out)


def parse_message(text: str | bytes) -> tuple[str, list[dict[str, str]]]:
    """(header, records) of an APEL message, the way the server's record factory splits it
    (dirq's `QueueSimple.get`, which `ssmsend` uses, returns bytes)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    lines = text.strip().splitlines()
    header = lines.pop(0).strip() if lines else ""
    records: list[dict[str, str]] = []
    for chunk in "\n".join(lines).split("%%"):
        if not chunk.strip():
            continue
        fields: dict[str, str] = {}
        for line in chunk.strip().splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        records.append(fields)
    return header, records
