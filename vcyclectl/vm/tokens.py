"""Per-machine feedback tokens: an HMAC of the machine's name under one secret.

Why an HMAC rather than a stored token per machine: every host that runs `serve` or
`reconcile` derives the same token from the name alone, so nothing per machine has to be
written, shared or cleaned up, and a token cannot be guessed for another machine. The
secret lives in the state directory (`STATE_DIR/feedback.key`, mode 0600) and is created
race-free across hosts the way `format.json` is: each writer makes its own temporary file
and `link`s it into place; the first link wins and everyone reads the winner.

Deleting the key rotates every token at once (running VMs then get 403 until replaced).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from pathlib import Path

from vcyclectl.errors import StateError
from vcyclectl.state.files import FILE_MODE, ensure_dir

KEY_FILE = "feedback.key"
KEY_BYTES = 32
#: Domain separation: the key may one day sign other things; a token is only ever this.
_CONTEXT = b"vcyclectl machine token v1\0"

_cache: dict[Path, bytes] = {}
_cache_lock = threading.Lock()


def key_path(state_dir: Path) -> Path:
    return Path(state_dir) / KEY_FILE


def secret(state_dir: Path) -> bytes:
    """The state directory's token key, created on first use (race-free across hosts)."""
    path = key_path(state_dir)
    with _cache_lock:
        key = _cache.get(path)
        if key is None:
            key = _read_key(path)
            if key is None:
                _create_key(path)
                key = _read_key(path)
                if key is None:
                    raise StateError(f"cannot create the feedback token key {path}")
            _cache[path] = key
        return key


def _read_key(path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read the feedback token key {path}: {exc.strerror}") from None
    if len(data) < KEY_BYTES:
        raise StateError(f"{path} is shorter than {KEY_BYTES} bytes; remove it to make a new "
                         "key (every machine token changes)")
    return data


def _create_key(path: Path) -> None:
    ensure_dir(path.parent)
    tmp = path.parent / f".{KEY_FILE}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.write(fd, secrets.token_bytes(KEY_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another host or process won the race: use theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def machine_token(state_dir: Path, name: str) -> str:
    """The bearer token machine `name` gets in its user_data (`##user_data_machine_token##`)."""
    return token_for(secret(state_dir), name)


def token_for(key: bytes, name: str) -> str:
    return hmac.new(key, _CONTEXT + name.encode("utf-8"), hashlib.sha256).hexdigest()


def token_matches(key: bytes, name: str, presented: str) -> bool:
    """Constant-time comparison, so response timing tells nothing about a wrong token."""
    return hmac.compare_digest(token_for(key, name).encode(), presented.encode("utf-8", "replace"))


class TokenCheck:
    """`token_matches` for one key, with each machine's token derived once, not per request.

    `serve` checks a token on every heartbeat, and the same few thousand machines call
    again and again: the HMAC is computed on a machine's first request and kept (at most
    `most` names, then forgotten all at once, so names made up by a caller cannot grow it
    without bound). The comparison is still constant-time, and a process keeps its key
    for its life either way (`secret` caches it), so the cache changes no answer.
    Thread-safe: a lost race computes the same token twice.
    """

    def __init__(self, key: bytes, most: int = 200_000) -> None:
        self._key = key
        self._most = most
        self._tokens: dict[str, bytes] = {}

    def matches(self, name: str, presented: str) -> bool:
        expected = self._tokens.get(name)
        if expected is None:
            if len(self._tokens) >= self._most:
                self._tokens.clear()
            expected = self._tokens[name] = token_for(self._key, name).encode()
        return hmac.compare_digest(expected, presented.encode("utf-8", "replace"))
