"""A community's `demand:` block: where to read how much of its work is waiting
(docs/demand.md). Pure dataclass; `vcyclectl.demand` reads the sources."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Literal

SourceKind = Literal["slurm", "htcondor", "command", "url"]

#: Keys each source needs (one of each tuple), and the keys only that source understands.
_NEEDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "slurm": (), "htcondor": (), "command": (("argv",),), "url": (("url",), ("token_file",)),
}
_OWN: dict[str, frozenset[str]] = {
    "slurm": frozenset({"partition", "account", "slurm_conf", "squeue"}),
    "htcondor": frozenset({"schedd", "collector", "constraint"}),
    "command": frozenset({"argv"}),
    "url": frozenset({"url", "token_file", "ca_file"}),
}


@dataclass(frozen=True)
class DemandSource:
    """Where a community's waiting work is read, and how far a reading is trusted.

    `timeout_seconds` bounds one read; a reading is reused (by every space and host, from
    the state directory) for `max_age_seconds` and not trusted beyond it, when the planner
    falls back to probing. `headroom` (a fraction of the waiting processors) and
    `headroom_processors` let a community be given a little more than is waiting, for work
    that arrives while machines boot. A machine counts as on its way to the waiting work
    (so it is not asked for again) until it has been running `join_seconds` when the source
    is read: the time it takes to join the batch system and start a job.
    """

    source: SourceKind
    # slurm: `squeue --json` (optionally with its own slurm.conf)
    partition: str | None = None
    account: str | None = None
    slurm_conf: str | None = field(default=None, metadata={"path": True})
    squeue: str = "squeue"
    # htcondor: a schedd located through a collector (or the local one)
    schedd: str | None = None
    collector: str | None = None
    constraint: str = "true"
    # command: an executable printing the JSON object of docs/demand.md
    argv: tuple[str, ...] = ()
    # url: the same JSON over HTTPS with a bearer token read from a file
    url: str | None = None
    token_file: str | None = field(default=None, metadata={"path": True})
    ca_file: str | None = field(default=None, metadata={"path": True})
    timeout_seconds: float = field(default=10.0, metadata={"min": 0.1, "max": 300})
    max_age_seconds: float = field(default=300.0, metadata={"min": 0})
    headroom: float = field(default=0.0, metadata={"min": 0})
    headroom_processors: int = field(default=0, metadata={"min": 0})
    join_seconds: float = field(default=300.0, metadata={"min": 0})

    def problems(self) -> list[tuple[str, str]]:
        for needed in _NEEDS[self.source]:
            if not any(getattr(self, k) for k in needed):
                return [(needed[0], f"a {self.source} demand source needs {needed[0]}")]
        for kind, own in _OWN.items():
            if kind == self.source:
                continue
            for key in sorted(own - _OWN[self.source]):
                default = next(f.default for f in fields(self) if f.name == key)
                if getattr(self, key) != default:
                    return [(key, f"{key} is for a {kind} source, not {self.source}")]
        if self.url is not None and not self.url.startswith(("https://", "http://")):
            return [("url", "must be an https:// URL")]
        if self.url is not None and self.url.startswith("http://") and not _loopback(self.url):
            return [("url", "a bearer token is sent only over https:// (http:// only to "
                            "localhost)")]
        return []

    @property
    def key(self) -> str:
        """The cache key: the same source (whatever community or space names it) is read
        once per interval by all of them."""
        what = {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("max_age_seconds", "headroom", "headroom_processors",
                                  "join_seconds")}
        digest = hashlib.sha256(json.dumps(what, sort_keys=True, default=list).encode())
        return f"{self.source}-{digest.hexdigest()[:16]}"

    @property
    def description(self) -> str:
        """What plan reasons call the signal: "slurm partition euclid"."""
        if self.source == "slurm":
            parts = [f"partition {self.partition}" if self.partition else "",
                     f"account {self.account}" if self.account else ""]
            return " ".join(["slurm", *[p for p in parts if p]]) if any(parts) else "slurm"
        if self.source == "htcondor":
            where = self.schedd or "local schedd"
            return f"htcondor {where}" + (f" ({self.constraint})"
                                          if self.constraint != "true" else "")
        if self.source == "command":
            return f"command {self.argv[0] if self.argv else ''}".strip()
        return f"url {self.url}"


def _loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname in ("localhost", "127.0.0.1", "::1")
