"""Read an APEL outgoing queue back the way `ssmsend` does: dirq QueueSimple, lock, get."""

from __future__ import annotations

from pathlib import Path

from vcyclectl.policy.apel import parse_message


def read_queue(path: Path, *, consume: bool = False) -> list[tuple[str, list[dict[str, str]]]]:
    """Every message in the queue, oldest first, parsed: (header, records)."""
    from dirq.QueueSimple import QueueSimple

    if not path.exists():
        return []
    q = QueueSimple(str(path))
    out = []
    for name in q:
        if not q.lock(name):
            continue
        out.append(parse_message(q.get(name)))
        if consume:
            q.remove(name)
        else:
            q.unlock(name)
    return out


def jobs_in(messages: list[tuple[str, list[dict[str, str]]]]) -> list[dict[str, str]]:
    return [r for h, recs in messages if h.startswith("APEL-individual-job-message") for r in recs]


def latest(messages: list[tuple[str, list[dict[str, str]]]], header: str) -> list[dict[str, str]]:
    """The records of the last message with this header (APEL keeps the latest summary)."""
    found: list[dict[str, str]] = []
    for h, recs in messages:
        if h.startswith(header):
            found = recs
    return found
