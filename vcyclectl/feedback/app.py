"""`vcyclectl serve`: the VM feedback channel, a WSGI app over the shared state directory.

A VM on a real cloud can only tell us it is alive, why it stopped and what it produced by
calling home. Under `FEEDBACK_URL/machines/SPACE/NAME/` (the URLs its user_data names) it
    GET machinefeatures/KEY, jobfeatures/KEY   MJF values (vcyclectl.vm.mjf), plain text
    PUT joboutputs/FILE                        stored at STATE/spaces/SPACE/joboutputs/NAME/FILE
with `Authorization: Bearer TOKEN` (vcyclectl.vm.tokens). The next reconcile pass reads the
heartbeat file's mtime and `shutdown_message` from there (SpaceState.reports).

Stateless like reconcile: the app reads and writes only the state directory, so any number
of hosts can serve behind a load balancer. Checks run in a fixed order, each answered
before anything is read or written: malformed path or file name 400, wrong method 405, no
or wrong token 403, unknown space or unknown/ended machine 404, unknown MJF key 404, body
over the upload limit or the machine's quota 413. Records come from a per-space cache that
re-reads only the bytes appended to the journal since the last request (one `stat` per
request when nothing changed), the way clouds/local.py tails its journal.

Served by gunicorn (imported only inside `run`): a pre-fork server with threaded workers
(`gthread`) that keeps connections alive, terminates TLS itself when given a certificate,
bounds request lines and headers, and drains at most 64 KiB of an unread body before it
drops a connection, so an endless upload costs one bounded read.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from vcyclectl import log

from vcyclectl.vm import mjf

from vcyclectl.vm import tokens
from vcyclectl.config import SPACE_NAME, Config
from vcyclectl.errors import VcyclectlError
from vcyclectl.state.files import JournalTail, ensure_dir, write_atomic
from vcyclectl.core.records import MachineRecord
from vcyclectl.state.store import JOB_OUTPUT_NAME, SpaceState, StateDir, valid_machine_name

MIB = 1024 * 1024
DEFAULT_MAX_UPLOAD_BYTES = MIB
DEFAULT_MAX_MACHINE_BYTES = 16 * MIB
DEFAULT_MAX_MACHINE_FILES = 64
_READ_CHUNK = 64 * 1024
_SPACE = re.compile(SPACE_NAME)
_TOKEN = re.compile(r"[0-9a-f]{64}")

StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class Limits:
    """What one machine may store: per file, in total, and how many files."""

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_machine_bytes: int = DEFAULT_MAX_MACHINE_BYTES
    max_machine_files: int = DEFAULT_MAX_MACHINE_FILES


class RecordsCache:
    """One space's machine records, kept current by reading only what was appended.

    A compaction replaces the journal: the next look-up replays the new file once
    (`JournalTail`). Thread-safe: a gthread worker shares one per space.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._raw: dict[str, Mapping[str, Any]] = {}
        self._tail = JournalTail(path)
        self._lock = threading.Lock()
        self.replays = 0  # full re-reads, for tests and the benchmark

    def get(self, name: str) -> MachineRecord | None:
        with self._lock:
            self._refresh()
            raw = self._raw.get(name)
        return MachineRecord.from_record(raw) if raw is not None else None

    def _refresh(self) -> None:
        restart, lines = self._tail.read_new()
        if restart:
            self._raw = {}
            self.replays += 1
        for line in lines:
            if not isinstance(line, dict):
                continue
            if "put" in line:
                rec = line["put"]
                if isinstance(rec, dict) and isinstance(rec.get("name"), str):
                    self._raw[rec["name"]] = rec
            elif "del" in line:
                self._raw.pop(str(line["del"]), None)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


_REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed", 411: "Length Required",
            413: "Content Too Large", 500: "Internal Server Error",
            503: "Service Unavailable"}


def _text(status: int, message: str, *headers: tuple[str, str]) -> Reply:
    return Reply(status, (message + "\n").encode(), headers)


class FeedbackApp:
    """The WSGI application; one per worker process, shared by its threads."""

    def __init__(self, config: Config, limits: Limits = Limits()) -> None:
        self.config = config
        self.limits = limits
        self.root = StateDir(config.state_dir)
        self.key = tokens.secret(config.state_dir)
        self._caches: dict[str, RecordsCache] = {}
        self._stores: dict[str, SpaceState] = {}
        for name in config.spaces:
            store = self.root.space(name)
            self._stores[name] = store
            self._caches[name] = RecordsCache(store.records_file)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            reply = self.handle(environ)
        except OSError as exc:
            log.warning("serve: state directory error", error=exc.strerror or str(exc))
            reply = _text(503, "state directory unavailable")
        typed = any(k == "Content-Type" for k, _ in reply.headers)  # pages.py sets its own
        headers = [*([] if typed else [("Content-Type", "text/plain; charset=utf-8")]),
                   ("Content-Length", str(len(reply.body))), ("Cache-Control", "no-store"),
                   *reply.headers]
        start_response(f"{reply.status} {_REASONS.get(reply.status, 'Error')}", headers)
        return [reply.body]

    # -- routing and checks, in the documented order ------------------------------------------
    def handle(self, environ: Mapping[str, Any]) -> Reply:
        method = str(environ.get("REQUEST_METHOD", "GET"))
        path = str(environ.get("PATH_INFO", ""))
        if path == "/healthz":
            return _text(200, "ok") if method in ("GET", "HEAD") else \
                _text(405, "method not allowed", ("Allow", "GET, HEAD"))
        if not path.isprintable() or "\\" in path:
            return _text(400, "malformed path")
        parts = path.split("/")
        if len(parts) < 2 or parts[1] != "machines":  # `/`, `/metrics` (pages.py), or 404
            from vcyclectl.feedback.pages import public_page

            return public_page(self.config, path, method)
        if len(parts) < 6 or parts[5] == "":
            return _text(400, "malformed path: expected /machines/SPACE/NAME/SECTION/KEY")
        _, _, space, name, section, *rest = parts
        if not _SPACE.fullmatch(space) or not valid_machine_name(name):
            return _text(400, "malformed space or machine name")
        if section not in ("joboutputs", *mjf.SECTIONS):
            return _text(404, "no such section")
        leaf = rest[0] if len(rest) == 1 else ""
        if section == "joboutputs":
            if not JOB_OUTPUT_NAME.fullmatch(leaf):
                return _text(400, "not a plain file name")
            if method != "PUT":
                return _text(405, "method not allowed", ("Allow", "PUT"))
        else:
            if len(rest) != 1 or not leaf.replace("_", "a").isalnum():
                return _text(400, "malformed key")
            if method not in ("GET", "HEAD"):
                return _text(405, "method not allowed", ("Allow", "GET, HEAD"))
        if not self.authorised(environ, name):
            return _text(403, "missing or wrong token")
        store = self._stores.get(space)
        rec = self._caches[space].get(name) if space in self._caches else None
        if store is None or rec is None or rec.finished or rec.deleting_at is not None:
            return _text(404, "no such machine, or it has ended")
        if section == "joboutputs":
            return self.put_output(environ, store, rec, leaf)
        return self.get_feature(store, rec, section, leaf)

    def authorised(self, environ: Mapping[str, Any], name: str) -> bool:
        header = str(environ.get("HTTP_AUTHORIZATION", ""))
        scheme, _, presented = header.partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not _TOKEN.fullmatch(presented):
            return False
        return tokens.token_matches(self.key, name, presented)

    # -- MJF ---------------------------------------------------------------------------
    def get_feature(self, store: SpaceState, rec: MachineRecord, section: str, key: str) -> Reply:
        mt = self.config.spaces[store.name].machinetypes.get(rec.machinetype)
        if mt is None:
            return _text(404, "machinetype no longer configured")
        drain = store.drains().for_machine(rec.name, rec.machinetype)
        value = mjf.feature(section, key, rec, mt, drain)
        if value is None:
            return _text(404, f"no {section} key {key!r} for this machine")
        return Reply(200, value.encode())

    # -- joboutputs --------------------------------------------------------------------
    def put_output(self, environ: Mapping[str, Any], store: SpaceState, rec: MachineRecord,
                   filename: str) -> Reply:
        name = rec.name
        limit = self.limits.max_upload_bytes
        declared = str(environ.get("CONTENT_LENGTH") or "")
        if declared:
            if not declared.isdigit():
                return _text(400, "bad Content-Length")
            if int(declared) > limit:
                return _text(413, f"upload over {limit} bytes")
        body = read_bounded(environ["wsgi.input"], limit + 1)
        if len(body) > limit:
            return _text(413, f"upload over {limit} bytes")
        folder = store.machine_outputs_dir(name)
        used, files = folder_usage(folder, except_name=filename)
        if used + len(body) > self.limits.max_machine_bytes:
            return _text(413, f"over this machine's quota of {self.limits.max_machine_bytes} "
                              "bytes")
        if files >= self.limits.max_machine_files:
            return _text(413, f"over this machine's quota of {self.limits.max_machine_files} "
                              "files")
        ensure_dir(folder)
        # A heartbeat lost in a crash only looks stale; an fsync per heartbeat would set the
        # service's tail latency. Everything else a VM sends is kept durably.
        mt = self.config.spaces[store.name].machinetypes.get(rec.machinetype)
        heartbeat = mt is not None and filename == mt.heartbeat_name
        write_atomic(folder / filename, body, durable=not heartbeat)
        return Reply(204)


def read_bounded(stream: Any, most: int) -> bytes:
    """At most `most` bytes of a request body, whether it has a length or is chunked: an
    endless body costs one bounded read, never a server that waits for its end."""
    chunks: list[bytes] = []
    got = 0
    while got < most:
        chunk = stream.read(min(_READ_CHUNK, most - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def folder_usage(folder: Path, *, except_name: str = "") -> tuple[int, int]:
    """Bytes and files a machine already stores, not counting the one being replaced."""
    used = files = 0
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0, 0
    for entry in entries:
        if entry.name == except_name or entry.name.startswith("."):
            continue
        try:
            used += entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:
            continue
        files += 1
    return used, files


# -- the server ---------------------------------------------------------------------------
ACCESS_LOG_FORMAT = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'


@dataclass(frozen=True)
class ServeOptions:
    """How `serve` listens: address, TLS, worker processes and threads, access log."""

    listen: str = "127.0.0.1:8080"
    tls_cert: str | None = None
    tls_key: str | None = None
    workers: int = 2
    threads: int = 8
    access_log: bool = True
    forwarded_allow_ips: str = "127.0.0.1,::1"


def gunicorn_settings(options: ServeOptions) -> dict[str, Any]:
    """Gunicorn settings; the access log format carries no header, so never a token."""
    settings: dict[str, Any] = {
        "bind": [options.listen],
        "workers": options.workers,
        "threads": options.threads,
        "worker_class": "gthread",
        "keepalive": 5,
        "timeout": 30,
        "graceful_timeout": 10,
        "limit_request_line": 2048,
        "limit_request_fields": 50,
        "limit_request_field_size": 4096,
        "accesslog": "-" if options.access_log else None,
        "access_log_format": ACCESS_LOG_FORMAT,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "vcyclectl-serve",
        "forwarded_allow_ips": options.forwarded_allow_ips,
        # No `gunicornc` socket in $HOME: several serve instances may share a host.
        "control_socket_disable": True,
    }
    if options.tls_cert or options.tls_key:
        settings["certfile"] = options.tls_cert
        settings["keyfile"] = options.tls_key
    return settings


def run(config: Config, options: ServeOptions, limits: Limits,
        reload_config: Callable[[], Config] | None = None) -> None:
    """Serve until SIGTERM/SIGINT (gunicorn's master handles signals and worker restarts).

    Each worker builds its app after the fork from `reload_config()`, so `kill -HUP` (new
    workers) picks up an edited configuration; a configuration that no longer loads is
    reported and the last good one kept, so a typo never takes the service down.
    """
    from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

    FeedbackApp(config, limits)  # fails here, before binding, on a bad state directory
    settings = gunicorn_settings(options)

    def fresh_app() -> FeedbackApp:
        current = config
        if reload_config is not None:
            try:
                current = reload_config()
            except VcyclectlError as exc:
                log.warning("serve: configuration does not load, keeping the last good one",
                            error=str(exc))
        return FeedbackApp(current, limits)

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in settings.items():
                if key in self.cfg.settings:  # an older gunicorn lacks the newest keys
                    self.cfg.set(key, value)

        def load(self) -> FeedbackApp:
            return fresh_app()

    _Server().run()
