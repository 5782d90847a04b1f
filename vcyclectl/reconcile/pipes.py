"""Vacuum Pipes, the reconciler's side: fetch a space's pipes once its lock is held and
keep the last good copy in `STATE_DIR/pipes/`, from which the config expands them
(`vcyclectl.config.pipes`, which only reads that copy).

A pipe that cannot be fetched or does not parse is logged and the last good copy kept, so
a broken pipe never stops a space's deletions (Vcycle's fault was to halt every space).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vcyclectl import log
from vcyclectl.config.pipeexpand import Cached, cache_file, read_cache, user_data_cache_file
from vcyclectl.config.pipes import (DEFAULT_CACHE_SECONDS, FETCH_TIMEOUT_SECONDS, MAX_PIPE_BYTES,
                                    MAX_USER_DATA_BYTES, RETRY_SECONDS, PipeError, PipeSource,
                                    check_url, is_url, parse, read_local)
from vcyclectl.state.files import write_atomic, write_json

if TYPE_CHECKING:
    from vcyclectl.config import Config, Space

__all__ = ["fetch", "is_due", "refresh", "refresh_space", "Refreshed"]


def fetch(location: str, *, limit: int = MAX_PIPE_BYTES,
          timeout: float = FETCH_TIMEOUT_SECONDS) -> bytes:
    """The bytes at a URL or path, bounded in size and time; any failure is a `PipeError`."""
    if not is_url(location):
        return read_local(location, limit=limit)
    else:
        check_url(location)
        import urllib.error
        import urllib.request
        from vcyclectl import __version__

        request = urllib.request.Request(location, headers={
            "User-Agent": f"vcyclectl/{__version__}", "Accept": "application/json, */*"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                data: bytes = response.read(limit + 1)
        except urllib.error.HTTPError as exc:
            raise PipeError(f"{location}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PipeError(f"{location}: {reason}") from None
    if len(data) > limit:
        raise PipeError(f"{location}: larger than {limit} bytes")
    return data


def _write_cache(state_dir: Path, location: str, body: str | None, fetched_at: float,
                 checked_at: float, error: str | None) -> None:
    write_json(cache_file(state_dir, location), {
        "location": location, "body": body, "fetched_at": fetched_at,
        "checked_at": checked_at, "error": error})


@dataclass(frozen=True)
class Refreshed:
    """What one refresh did: `changed` means the config should be expanded again."""

    location: str
    fetched: bool
    changed: bool
    error: str | None = None


def is_due(cached: Cached | None, now: float) -> bool:
    if cached is None:
        return True
    cache_seconds = cached.pipe.cache_seconds if cached.pipe else DEFAULT_CACHE_SECONDS
    if cached.error:
        return now - cached.checked_at >= min(cache_seconds, RETRY_SECONDS)
    return now - cached.checked_at >= cache_seconds


def refresh(state_dir: Path, location: str, *, now: float | None = None,
            force: bool = False) -> Refreshed:
    """Fetch a pipe (and its user_data URLs) if its cache is due; never raises for the pipe.

    A pipe replaces the cached copy only when it and every user_data it names were fetched
    and validated, so the cache always holds a consistent, usable pipe.
    """
    now = time.time() if now is None else now
    cached = read_cache(state_dir, location)
    if not force and not is_due(cached, now):
        return Refreshed(location, fetched=False, changed=False)
    old_body = cached.body if cached else None
    try:
        data = fetch(location)
        pipe = parse(data, location)
        texts = {m.user_data_url: fetch(m.user_data_url, limit=MAX_USER_DATA_BYTES)
                 for m in pipe.machinetypes if m.user_data_url}
        for url, text in texts.items():
            assert url is not None
            write_atomic(user_data_cache_file(state_dir, url), text)
        body = data.decode("utf-8")
    except (PipeError, UnicodeDecodeError) as exc:
        error = str(exc)
        log.warning("vacuum pipe unusable, keeping the last good copy", pipe=location,
                    error=error, last_good=("never" if not cached or not cached.pipe else
                                            time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                          time.gmtime(cached.fetched_at))))
        _write_cache(state_dir, location, old_body, cached.fetched_at if cached else 0.0,
                     now, error)
        return Refreshed(location, fetched=False, changed=False, error=error)
    for note in pipe.notes:
        log.info("vacuum pipe option", note=note)
    _write_cache(state_dir, location, body, now, now, None)
    return Refreshed(location, fetched=True, changed=body != old_body)


def refresh_space(config: "Config", space: "Space", *, now: float | None = None) -> "Space":
    """Refresh the space's pipes that are due; if any changed, the space as expanded anew.

    Called with the space's lock held, so hosts sharing the state directory take turns.
    Never raises: a failure keeps the space as it was loaded (and its deletions going).
    """
    sources: tuple[PipeSource, ...] = getattr(space, "pipes", ())
    changed = False
    for source in sources:
        try:
            if not source.is_url:
                # Read afresh at every load anyway: only keep the last good copy for when
                # the file breaks, without expanding the config again.
                refresh(config.state_dir, source.location, now=now, force=True)
                continue
            changed = refresh(config.state_dir, source.location, now=now).changed or changed
        except OSError as exc:  # the state directory itself: keep going with what we have
            log.warning("vacuum pipe cache not writable", pipe=source.location, error=str(exc))
    if not changed or not config.files:
        return space
    from vcyclectl import config as config_module
    from vcyclectl.errors import ConfigError

    try:
        fresh = config_module.load(Path(config.files[0]), state_dir=config.state_dir)
    except ConfigError as exc:
        log.warning("config no longer loads after a pipe refresh; keeping this pass's copy",
                    space=space.name, error=str(exc))
        return space
    return fresh.spaces.get(space.name, space)
