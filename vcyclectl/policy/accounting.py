"""APEL accounting: every machine that ran becomes one job record, exactly once, and the
month summaries are re-issued complete from our own store (docs/accounting.md).

Where it runs: at the end of a pass, under the space's lock (`account_space`), so one host
at a time works on a space's accounting. What it reads: `finished.jsonl`, from a watermark.
What it keeps, in `STATE_DIR/spaces/SPACE/accounting/`:

    state.json              the watermark (byte offset and the journal's first line), the
                            months with a hand-off to finish, the months whose summary is due
    jobs-YYYY-MM.jsonl      per month of EndTime: one {"job": …} line per machine that ended
                            (fizzles too, with "ran": false, for billed hours), and one
                            {"queued": BATCH} line when a batch's message reached the queue
    staging/BATCH.msg       an individual job message waiting to be moved into the queue

Exactly once, step by step (a pass may die between any two):
1. read `finished.jsonl` from the watermark; drop machines already in their month's file
   (by name, the LocalJobId), so re-reading lines never makes a second record;
2. write the batch's message to `staging/BATCH.msg` (BATCH is a hash of its job names, so a
   retry over the same lines writes the same file);
3. append the jobs, each naming its batch, to their month's file (one write per month);
4. save the watermark, marking the months unsettled;
5. move each batch with no `queued` line into the queue with dirq's `add_path` (a link into
   the queue, then an unlink of the staging name), append `queued`, settle the months.
A retry of step 5 finds the staging file gone (moved: just append `queued`), still linked
twice (moved but not unlinked: unlink it), or there alone (not moved: move it; a retry
first checks the queue for a message with the same bytes). The one window left is a pass
killed between dirq's link() and unlink() *and* `ssmsend` sending that message before the
next pass: then it is sent twice. Summaries need none of this: APEL replaces a month's
summary with the latest one, so they are simply re-issued.

The journal may be rotated (made shorter, or replaced): when it is shorter than the
watermark or its first line changed, it is read again from its start; step 1 drops every
machine already accounted, so nothing is emitted twice, and a warning says so.
"""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path
from typing import Any, Iterable, Mapping

from vcyclectl import log
from vcyclectl.config import Config, Space
from vcyclectl.config.accounting import AccountingSettings
from vcyclectl.policy import apel
from vcyclectl.policy.apel import Job, month_bounds
from vcyclectl.state.files import (ensure_dir, read_lines, write_atomic)
from vcyclectl.state.store import SpaceState
from vcyclectl.policy.accountbook import Book, Entry, Month

HEAD_BYTES = 4096


# -- reading the finished journal ---------------------------------------------------------
def journal_head(path: Path) -> str:
    """A fingerprint of the journal's first line: a rotated (replaced) journal has another."""
    try:
        with open(path, "rb") as handle:
            first = handle.read(HEAD_BYTES).split(b"\n", 1)[0]
    except FileNotFoundError:
        return ""
    return hashlib.sha256(first).hexdigest()[:16]


def read_finished(store: SpaceState, state: dict[str, Any]) -> tuple[list[dict[str, Any]], int,
                                                                      str]:
    """Lines of `finished.jsonl` past the watermark, the new offset and the journal's head.

    A journal shorter than the watermark, or with another first line, was rotated: it is
    read from its start, and the month files drop every machine already accounted."""
    path = store.finished_file
    head = journal_head(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        size = 0
    offset = int(state.get("offset") or 0)
    if offset and (size < offset or head != state.get("head")):
        log.warning("finished journal was rotated: reading it again from its start; machines "
                    "already accounted are not emitted again", space=store.name,
                    watermark=offset, size=size)
        offset = 0
    lines, new_offset = read_lines(path, offset)
    return [x for x in lines if isinstance(x, dict)], new_offset, head


# -- from finished lines to entries --------------------------------------------------------
def entry_of(line: Mapping[str, Any], space: Space, settings: AccountingSettings,
             state_dir: Path) -> Entry | None:
    """The accounting entry of one `finished.jsonl` line; None if it is not accountable.

    A machine ran when it started and lived at least its machinetype's `fizzle_seconds`
    (Vac's rule): shorter lives are fizzles, kept for billed hours but never published."""
    name, created = line.get("name"), line.get("created_at")
    if not isinstance(name, str) or not isinstance(created, (int, float)):
        return None
    started, stopped = line.get("started_at"), line.get("stopped_at")
    finished = float(line.get("finished_at") or stopped or created)
    mt_name = str(line.get("machinetype", ""))
    mt = space.machinetypes.get(mt_name)
    fizzle = mt.fizzle_seconds if mt is not None else 600.0
    processors = int(line.get("processors") or 1)
    hs06 = float(line.get("hs06") or 0.0)
    start = int(started) if isinstance(started, (int, float)) else int(finished)
    end = int(stopped) if isinstance(stopped, (int, float)) else int(finished)
    end = max(end, start)
    ran = isinstance(started, (int, float)) and (end - start) >= fizzle and end > start
    per_processor = hs06 / processors if hs06 else (mt.hs06_per_processor if mt else 1.0)
    job = Job(name=name, space=space.name, machinetype=mt_name,
              site=str(settings.gocdb_sitename), start=start, end=end, processors=processors,
              hs06_per_processor=round(per_processor, 6), cpu=(end - start) * processors,
              vo=mt.accounting_vo if mt else None, fqan=mt.accounting_fqan if mt else None)
    price = line.get("price_per_hour")
    return Entry(job, ran, float(created), finished,
                 float(price) if isinstance(price, (int, float)) else None,
                 str(settings.outgoing_dir(state_dir)))


def batch_id(month: str, outgoing: str, names: Iterable[str]) -> str:
    digest = hashlib.sha256("\n".join([month, outgoing, *sorted(names)]).encode())
    return digest.hexdigest()[:20]


# -- the queue ---------------------------------------------------------------------------
def queue(path: str | Path) -> Any:
    """The dirq QueueSimple directory `ssmsend` reads (its `path` with `path_type: dirq`)."""
    from dirq.QueueSimple import QueueSimple

    ensure_dir(Path(path))
    return QueueSimple(str(path))


def queued_already(q: Any, data: bytes) -> bool:
    """Is a message with exactly these bytes waiting in the queue (a retried hand-off)?"""
    for name in q:
        try:
            if Path(q.path, name).read_bytes() == data:
                return True
        except FileNotFoundError:
            continue
    return False


def hand_off(q: Any, staging: Path, *, retry: bool) -> None:
    """Move a staged message into the queue, once (see the module's docstring)."""
    try:
        links = staging.stat().st_nlink
    except FileNotFoundError:
        return  # moved by an earlier attempt
    if links > 1:  # linked into the queue, the staging name not yet removed
        staging.unlink()
        return
    data = staging.read_bytes()
    if retry and queued_already(q, data):
        staging.unlink()
        return
    try:
        q.add_path(str(staging))
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        q.add(data.decode())  # the queue is on another file system: copy, then forget it
        staging.unlink()


# -- the pass's step -----------------------------------------------------------------------
def account_space(config: Config, space: Space, store: SpaceState, now: float) -> None:
    """Record what finished, queue what is due; lock held. Never emits a job twice."""
    acc = config.accounting
    if acc is None or not acc.enabled_in(space.name):
        return
    book = Book(store)
    state = book.state()
    lines, offset, head = read_finished(store, state)
    months: dict[str, Month] = {}
    fresh: dict[str, list[Entry]] = {}
    for line in lines:
        settings = acc.settings(space.name, str(line.get("machinetype", "")))
        entry = entry_of(line, space, settings, config.state_dir) if settings else None
        if entry is None:
            continue
        month = entry.job.month
        if month not in months:
            months[month] = book.month(month)
        if entry.job.name in months[month].entries:
            continue  # already accounted: a re-read after a crash or a rotation
        months[month].entries[entry.job.name] = entry
        fresh.setdefault(month, []).append(entry)
    created: set[str] = set()
    for month, entries in fresh.items():
        created |= stage_batches(book, month, entries, acc, space.name)
        book.append(month, [e.to_record() for e in entries])
    # every month read, not only those with new jobs: a retry after a pass died between
    # appending and saving the watermark finds its batches here, still to be handed off
    unsettled = sorted(set(state["unsettled"]) | set(months))
    for month, data in months.items():  # re-read months too: their summary may be owed
        if any(e.ran for e in data.entries.values()):
            state["summaries"].setdefault(month, {})["dirty"] = True
    state.update(offset=offset, head=head, unsettled=unsettled)
    book.save_state(state)
    settle(book, unsettled, created, months, now)
    state["unsettled"] = []
    queue_due_summaries(config, space, book, state, now)
    book.save_state(state)


def stage_batches(book: Book, month: str, entries: list[Entry], acc: Any,
                  space: str) -> set[str]:
    """Write the individual job messages of a month's new jobs (one per queue directory) to
    staging files, and name the batch in each entry. Returns the batch ids."""
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        settings = acc.settings(space, entry.job.machinetype)
        if entry.ran and settings is not None and settings.individual:
            groups.setdefault(entry.outgoing, []).append(entry)
    out: set[str] = set()
    for outgoing, group in groups.items():
        batch = batch_id(month, outgoing, (e.job.name for e in group))
        write_atomic(book.staging / f"{batch}.msg",
                     apel.individual_message(e.job for e in group).encode())
        for entry in group:
            entry.batch = batch
        out.add(batch)
    return out


def settle(book: Book, unsettled: list[str], created: set[str], months: dict[str, Month],
           now: float) -> None:
    """Hand every batch of the unsettled months to its queue; drop orphaned staging files
    (written by a pass that died before it recorded their jobs)."""
    wanted: set[str] = set()
    for month in unsettled:
        data = months.get(month) or book.month(month)
        done: list[dict[str, Any]] = []
        for batch, entries in data.pending().items():
            wanted.add(batch)
            hand_off(queue(entries[0].outgoing), book.staging / f"{batch}.msg",
                     retry=batch not in created)
            done.append({"queued": batch, "at": round(now, 3)})
            data.queued.add(batch)
        book.append(month, done)
    try:
        staged = list(book.staging.iterdir())
    except FileNotFoundError:
        return
    for path in staged:
        if path.suffix == ".msg" and path.stem not in wanted and not path.name.startswith("."):
            path.unlink(missing_ok=True)


def month_over(month: str, now: float) -> bool:
    return now >= month_bounds(month)[1]


def queue_due_summaries(config: Config, space: Space, book: Book, state: dict[str, Any],
                        now: float) -> None:
    """Re-issue each changed month's summary (and sync) when due: every
    `summaries_every_seconds` while jobs end in it, and once more when it is over."""
    acc = config.accounting
    if acc is None:
        return
    for month, info in sorted(state["summaries"].items()):
        if not info.get("dirty"):
            continue
        every = min((s.summaries_every_seconds for (sp, _), s in acc.machinetypes.items()
                     if sp == space.name and s.enabled), default=86400.0)
        last = float(info.get("queued_at") or 0)
        if now - last < every and not month_over(month, now):
            continue
        publish_month(config, space, book.month(month).jobs(), month)
        info.update(dirty=False, queued_at=now)


def publish_month(config: Config, space: Space, jobs: list[Job], month: str) -> int:
    """Queue a month's complete summary (and sync) messages; how many messages."""
    acc = config.accounting
    summaries: dict[str, list[Job]] = {}
    individual: dict[str, list[Job]] = {}
    for job in jobs:
        settings = acc.settings(space.name, job.machinetype) if acc else None
        if settings is None:
            continue
        outgoing = str(settings.outgoing_dir(config.state_dir))
        if settings.summaries:
            summaries.setdefault(outgoing, []).append(job)
        if settings.individual:
            individual.setdefault(outgoing, []).append(job)
    count = 0
    for outgoing, group in sorted(summaries.items()):
        queue(outgoing).add(apel.summary_message(apel.summarise(group)))
        count += 1
    for outgoing, group in sorted(individual.items()):
        counts: dict[tuple[str, str, str], int] = {}
        for job in group:
            key = (job.site, job.space, month)
            counts[key] = counts.get(key, 0) + 1
        queue(outgoing).add(apel.sync_message(counts))
        count += 1
    return count
