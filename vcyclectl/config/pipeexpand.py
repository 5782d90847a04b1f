"""Vacuum Pipes, expanded: each `vacuum_pipe:` entry of a space becomes the pipe's
machinetypes (`pipes` says how), from a local pipe file as it is now or from the last good
copy of a fetched pipe that a reconcile pass left in `STATE_DIR/pipes/` (read only here;
`vcyclectl.reconcile.pipes` fetches and writes it)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from vcyclectl import log
from vcyclectl.config.pipes import (Pipe, PipeError, PipeSource, check_url, is_url, parse,
                                    read_local)
from vcyclectl.config.yamlsource import Located, Origin, deep_merge


def cache_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "pipes"


def _key(location: str) -> str:
    return hashlib.sha256(location.encode()).hexdigest()[:32]


def cache_file(state_dir: Path, location: str) -> Path:
    """Keyed by a hash of the location: a name from outside never becomes a path."""
    return cache_dir(state_dir) / f"{_key(location)}.json"


def user_data_cache_file(state_dir: Path, url: str) -> Path:
    return cache_dir(state_dir) / f"{_key(url)}.user_data"


@dataclass(frozen=True)
class Cached:
    pipe: Pipe | None
    body: str | None
    fetched_at: float
    checked_at: float
    error: str | None


def read_cache(state_dir: Path, location: str) -> Cached | None:
    """The last good copy the reconciler wrote (read-only here; missing or torn: None)."""
    try:
        entry = json.loads(cache_file(state_dir, location).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("location") != location:
        return None
    body = entry.get("body")
    pipe = None
    if isinstance(body, str):
        try:
            pipe = parse(body, location)
        except PipeError:
            pipe = None
    return Cached(pipe=pipe, body=body if pipe else None,
                  fetched_at=float(entry.get("fetched_at") or 0.0),
                  checked_at=float(entry.get("checked_at") or 0.0), error=entry.get("error"))


def current(state_dir: Path | None, source: PipeSource) -> Pipe | None:
    """The pipe to expand now: a local file as it is (else its last good copy), a URL's cache."""
    if not source.is_url:
        try:
            return parse(read_local(source.location), source.location)
        except PipeError as exc:
            log.warning("vacuum pipe file unusable, using the last good copy", pipe=source.location,
                        error=str(exc))
    if state_dir is None:
        return None
    cached = read_cache(state_dir, source.location)
    if cached is None or cached.pipe is None:
        if source.is_url:
            log.info("vacuum pipe not fetched yet; the next reconcile pass fetches it",
                     pipe=source.location)
        return None
    return cached.pipe


# -- expansion (called by `load` while it parses a space's machinetypes) ------------------
def expand_entries(machinetypes: Located, *, state_dir: Path | None,
                   key_prefix: str) -> tuple[Located, tuple[PipeSource, ...]]:
    """Replace every `vacuum_pipe:` entry by the machinetypes its pipe defines.

    Returns the new mapping (plain entries untouched, in order) and the pipes found, which
    the reconciler refreshes. Errors in the entry itself are config errors at its line.
    """
    from vcyclectl.errors import ConfigError

    entries = {name: node for name, node in machinetypes.items()
               if isinstance(node, Located) and "vacuum_pipe" in node}
    if not entries:
        return machinetypes, ()
    out = Located(machinetypes.origin)
    sources: list[PipeSource] = []
    expanded: dict[str, tuple[Located, Origin]] = {}
    for name, node in entries.items():
        where = node.where("vacuum_pipe")
        location = node["vacuum_pipe"]
        if not isinstance(location, str) or not location:
            raise ConfigError("must be an https:// URL or a file path", file=where.file,
                              line=where.line, key=f"{key_prefix}{name}.vacuum_pipe")
        base_dir = str(Path(where.file).parent)
        if is_url(location):
            try:
                check_url(location)
            except PipeError as exc:
                raise ConfigError(str(exc), file=where.file, line=where.line,
                                  key=f"{key_prefix}{name}.vacuum_pipe") from None
        else:
            path = Path(location)
            location = str(path if path.is_absolute() else Path(base_dir) / path)
            base_dir = str(Path(location).parent)
        source = PipeSource(prefix=name, location=location, base_dir=base_dir, origin=where)
        sources.append(source)
        pipe = current(state_dir, source)
        if pipe is None:
            continue
        for name_, settings in _expanded(source, pipe, node, state_dir).items():
            expanded[name_] = (settings, where)
    for name, node in machinetypes.items():
        if name in entries:
            continue
        if name in expanded:
            settings, _ = expanded.pop(name)
            if isinstance(node, Located):  # an explicit PREFIX-SUFFIX entry: local settings win
                node = deep_merge(settings, node)
            out[name] = node
            out.key_origins[name] = machinetypes.where(name)
        else:
            out[name] = node
            out.key_origins[name] = machinetypes.where(name)
    for name, (settings, where) in expanded.items():
        out[name] = settings
        out.key_origins[name] = where
    return out, tuple(sources)


def _expanded(source: PipeSource, pipe: Pipe, entry: Located,
              state_dir: Path | None) -> dict[str, Located]:
    local = Located(entry.origin)
    for key, value in entry.items():
        if key not in ("vacuum_pipe", "target_share"):
            local[key] = value
            local.key_origins[key] = entry.where(key)
    total = entry.get("target_share", 1.0)
    total = float(total) if isinstance(total, (int, float)) and not isinstance(total, bool) \
        else 1.0
    pipe_total = pipe.total_share
    out: dict[str, Located] = {}
    where = entry.where("vacuum_pipe")
    for m in pipe.machinetypes:
        node = Located(where)
        for key, value in m.settings.items():
            if key in ("user_data_options", "user_data_files"):
                sub = Located(where)
                for k, v in value.items():
                    sub[k] = (str(Path(source.base_dir) / v) if key == "user_data_files"
                              and not Path(v).is_absolute() else v)
                    sub.key_origins[k] = where
                value = sub
            elif key == "user_data":
                value = str(Path(source.base_dir) / value)
            node[key] = value
            node.key_origins[key] = where
        if m.user_data_url and state_dir is not None:
            node["user_data"] = str(user_data_cache_file(state_dir, m.user_data_url))
            node.key_origins["user_data"] = where
        node["target_share"] = total * m.share / pipe_total if pipe_total > 0 else 0.0
        node.key_origins["target_share"] = where
        out[f"{source.prefix}-{m.suffix}"] = deep_merge(node, local)
    return out
