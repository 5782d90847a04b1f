"""Vacuum Pipes: a community publishes its machinetypes as JSON; a site points at it.

A machinetype entry with `vacuum_pipe: URL-or-path` is not a machinetype itself: it expands
into one machinetype per object of the pipe's `machinetypes` list, named `PREFIX-SUFFIX`
(PREFIX is the entry's name), with the entry's `target_share` split in proportion to the
pipe's shares. Settings merge in layers, the later winning: the pipe's values → the entry's
own settings → an explicit `PREFIX-SUFFIX:` machinetype in the same space ("local settings
win", as in Vcycle).

Why a cache, and why the config never fetches: loading the config must stay cheap and must
not depend on the network (`config check`, `list`, `serve` all load it). A reconcile pass
refreshes a space's pipes once its lock is held (`vcyclectl.reconcile.pipes`), writing the
last good copy to `STATE_DIR/pipes/`; the config expands from that copy, which it only
reads. This module parses and expands; the fetching and the cache writes are the
reconciler's. A pipe that cannot be
fetched, does not parse, or names a file with `/` or `..` is logged and the last good copy
kept, so a broken pipe never stops a space's deletions (Vcycle's fault was to halt every
space). A local path is read directly at load time, falling back to the cache likewise.

HTTPS only, except plain http to a loopback address (tests, and a pipe served on the host).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from vcyclectl.config.yamlsource import Origin

DEFAULT_CACHE_SECONDS = 3600.0
#: After a failed fetch, try again no sooner than this (or cache_seconds, if shorter).
RETRY_SECONDS = 300.0
FETCH_TIMEOUT_SECONDS = 15.0
MAX_PIPE_BYTES = 1024 * 1024
MAX_USER_DATA_BYTES = 1024 * 1024

SUFFIX = re.compile(r"[a-z0-9]([a-z0-9-]{0,37}[a-z0-9])?")
PLAIN_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
OPTION_NAME = re.compile(r"[a-z0-9_]+")

#: Pipe keys carried over, and the type each must have.
_NUMBERS: dict[str, type] = {
    "backoff_seconds": float, "fizzle_seconds": float, "max_wallclock_seconds": float,
    "heartbeat_seconds": float, "min_processors": int, "max_processors": int,
}
#: Keys Vcycle accepts from a pipe that have no vcyclectl meaning, with the reason.
_NOT_CARRIED = {
    "accounting_fqan": "accounting is by space and machinetype",
    "cvmfs_repositories": "vcyclectl does not manage CVMFS on the host",
    "image_signing_dn": "images are named in the site's cloud block",
    "legacy_proxy": "proxies are RFC 3820 (x509_cert/x509_key in user_data_files)",
    "machine_model": "every vcyclectl machine is a cloud VM",
    "min_wallclock_seconds": "no vcyclectl equivalent",
    "root_device": "the cloud's flavor decides the disks",
    "root_image": "images are named in the site's cloud block (image:)",
    "scratch_device": "the cloud's flavor decides the disks",
    "user_data_proxy": "set x509_cert and x509_key in the entry's user_data_files",
    "cache_seconds": "only meaningful at the top of the pipe",
}


class PipeError(Exception):
    """A pipe that must not be used: unreadable, not JSON, or asking for something refused."""


@dataclass(frozen=True)
class PipeSource:
    """One `vacuum_pipe:` entry of a space, as the config found it."""

    prefix: str
    location: str
    base_dir: str
    origin: Origin | None = field(default=None, compare=False)

    @property
    def is_url(self) -> bool:
        return is_url(self.location)


@dataclass(frozen=True)
class PipeMachinetype:
    """One machinetype a pipe defines, already mapped to vcyclectl machinetype keys."""

    suffix: str
    share: float
    settings: dict[str, Any]
    user_data_url: str | None = None


@dataclass(frozen=True)
class Pipe:
    cache_seconds: float
    machinetypes: tuple[PipeMachinetype, ...]
    notes: tuple[str, ...] = ()

    @property
    def total_share(self) -> float:
        return sum(m.share for m in self.machinetypes)


def is_url(location: str) -> bool:
    return location.startswith(("https://", "http://"))


# -- parsing --------------------------------------------------------------------------------
def parse(data: bytes | str, source: str) -> Pipe:
    """Validate a pipe document; any refusal rejects the whole pipe (the last good copy stays)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PipeError(f"{source}: not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PipeError(f"{source}: the top level must be a JSON object")
    cache_seconds = _number(doc.get("cache_seconds", DEFAULT_CACHE_SECONDS), float,
                            "cache_seconds", source)
    if cache_seconds < 0:
        raise PipeError(f"{source}: cache_seconds must not be negative")
    items = doc.get("machinetypes")
    if not isinstance(items, list):
        raise PipeError(f"{source}: 'machinetypes' must be a list")
    notes: list[str] = []
    out: list[PipeMachinetype] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"{source}: machinetypes[{i}]"
        if not isinstance(item, dict):
            raise PipeError(f"{where}: must be an object")
        suffix = item.get("suffix")
        if not isinstance(suffix, str) or not SUFFIX.fullmatch(suffix):
            raise PipeError(f"{where}: 'suffix' is required: lowercase letters, digits and "
                            f"'-', at most 39 (got {suffix!r})")
        if suffix in seen:
            raise PipeError(f"{where}: suffix {suffix!r} appears twice")
        seen.add(suffix)
        out.append(_machinetype(item, suffix, f"{source}: {suffix}", notes))
    return Pipe(cache_seconds=cache_seconds, machinetypes=tuple(out), notes=tuple(notes))


def _machinetype(item: dict[str, Any], suffix: str, where: str,
                 notes: list[str]) -> PipeMachinetype:
    settings: dict[str, Any] = {}
    options: dict[str, str] = {}
    files: dict[str, str] = {}
    share = 0.0
    user_data_url = None
    for key, value in item.items():
        if key == "suffix":
            continue
        if key == "target_share":
            share = _number(value, float, key, where)
            if share < 0:
                raise PipeError(f"{where}: target_share must not be negative")
        elif key in _NUMBERS:
            settings[key] = _number(value, _NUMBERS[key], key, where)
        elif key == "heartbeat_file":
            settings[key] = _plain_file(value, key, where)
        elif key == "user_data":
            text = _string(value, key, where)
            if is_url(text):
                check_url(text)
                user_data_url = text
            else:
                settings[key] = _plain_file(text, key, where)
        elif key.startswith("user_data_option_"):
            options[_option(key[len("user_data_option_"):], key, where)] = _string(value, key,
                                                                                   where)
        elif key.startswith("user_data_file_"):
            files[_option(key[len("user_data_file_"):], key, where)] = _plain_file(value, key,
                                                                                   where)
        elif key in _NOT_CARRIED:
            notes.append(f"{where}: {key} not carried over ({_NOT_CARRIED[key]})")
        else:
            notes.append(f"{where}: unknown option {key} ignored")
    both = set(options) & set(files)
    if both:
        raise PipeError(f"{where}: {sorted(both)[0]!r} is both a user_data_option and a "
                        "user_data_file")
    if options:
        settings["user_data_options"] = options
    if files:
        settings["user_data_files"] = files
    return PipeMachinetype(suffix=suffix, share=share, settings=settings,
                           user_data_url=user_data_url)


def _number(value: Any, kind: type, key: str, where: str) -> Any:
    """Vcycle reads every pipe value as a string, so "3600" and 3600 are both accepted."""
    if isinstance(value, bool):
        raise PipeError(f"{where}: {key} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PipeError(f"{where}: {key} must be a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise PipeError(f"{where}: {key} must be a finite number")
    if kind is int:
        if number != int(number):
            raise PipeError(f"{where}: {key} must be a whole number, got {value!r}")
        return int(number)
    return number


def _string(value: Any, key: str, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise PipeError(f"{where}: {key} must be a string, got {value!r}")
    return str(value)


def _option(name: str, key: str, where: str) -> str:
    if not OPTION_NAME.fullmatch(name):
        raise PipeError(f"{where}: {key}: option names are a-z, 0-9 and '_'")
    return name


def _plain_file(value: Any, key: str, where: str) -> str:
    """A file name the pipe may name: no folders, no `..`, so it stays in the site's folder."""
    text = _string(value, key, where)
    if "/" in text or "\\" in text or ".." in text or not PLAIN_FILE.fullmatch(text):
        raise PipeError(f"{where}: {key} {text!r} refused: a pipe may name only plain file "
                        "names (no '/', no '..')")
    return text


# -- fetching and the cache ---------------------------------------------------------------
def check_url(url: str) -> None:
    """HTTPS, or http to loopback: a pipe decides what runs on the site's cloud."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return
    raise PipeError(f"{url}: pipes are fetched over https:// (plain http only from a "
                    "loopback address)")


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_local(location: str, *, limit: int = MAX_PIPE_BYTES) -> bytes:
    """A pipe (or its user_data) from a local path, bounded in size; failure is a PipeError."""
    try:
        with open(location, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise PipeError(f"{location}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise PipeError(f"{location}: larger than {limit} bytes")
    return data
