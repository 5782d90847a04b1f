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
over the upload limit or the machine's quota 413 (never for the heartbeat file and
`shutdown_message`, which are always accepted, bounded to `REPORT_BYTES`). Records come
from a per-space cache (`feedback.records`) that re-reads only the bytes appended to the
journal since the last request (one `stat`, no lock, per request when nothing changed),
the way the local cloud tails its journal.

Served by gunicorn (imported only inside `run`): a pre-fork server with threaded workers
(`gthread`) that keeps connections alive, terminates TLS itself when given a certificate,
bounds request lines and headers, and drains at most 64 KiB of an unread body before it
drops a connection, so an endless upload costs one bounded read. Its worker is wrapped
(`bounded_worker_class`) so that slow clients cannot hold every thread (`SlowClientGuard`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from vcyclectl import log
from vcyclectl.feedback.slowclients import request_read

from vcyclectl.vm import mjf

from vcyclectl.vm import tokens
from vcyclectl.config import SPACE_NAME, Config
from vcyclectl.errors import StateError
from vcyclectl.feedback.records import RecordsCache
from vcyclectl.state.files import ensure_dir, read_json, write_atomic
from vcyclectl.state.heartbeats import write_heartbeat
from vcyclectl.core.records import DrainMark, Drains, MachineRecord
from vcyclectl.state.store import JOB_OUTPUT_NAME, SpaceState, StateDir, valid_machine_name

MIB = 1024 * 1024
DEFAULT_MAX_UPLOAD_BYTES = MIB
DEFAULT_MAX_MACHINE_BYTES = 16 * MIB
DEFAULT_MAX_MACHINE_FILES = 64
_READ_CHUNK = 64 * 1024
#: The file whose first line is a machine's shutdown message (Vac convention).
SHUTDOWN_MESSAGE = "shutdown_message"
#: What is kept of a heartbeat or shutdown message: always accepted, so always small.
REPORT_BYTES = 4096
_SPACE = re.compile(SPACE_NAME)
_TOKEN = re.compile(r"[0-9a-f]{64}")

StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class Limits:
    """What one machine may store: per file, in total, and how many files."""

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_machine_bytes: int = DEFAULT_MAX_MACHINE_BYTES
    max_machine_files: int = DEFAULT_MAX_MACHINE_FILES


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


_REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed", 411: "Length Required",
            413: "Content Too Large", 500: "Internal Server Error",
            503: "Service Unavailable"}
_STATUS_LINES = {code: f"{code} {reason}" for code, reason in _REASONS.items()}
_PLAIN_TEXT = ("Content-Type", "text/plain; charset=utf-8")
_NO_STORE = ("Cache-Control", "no-store")


def _text(status: int, message: str, *headers: tuple[str, str]) -> Reply:
    return Reply(status, (message + "\n").encode(), headers)


class FeedbackApp:
    """The WSGI application; one per worker process, shared by its threads."""

    def __init__(self, config: Config, limits: Limits = Limits()) -> None:
        self.config = config
        self.limits = limits
        self.root = StateDir(config.state_dir)
        #: The state directory's id when this worker started: `/healthz` answers 503 when it
        #: cannot read it any more, or reads another id (a different share mounted there).
        self.state_id: str | None = None
        self._key: bytes | None = None
        self._tokens: tokens.TokenCheck | None = None
        try:
            self.state_id = self.root.open(create=False)
            self._key = tokens.secret(config.state_dir)
        except StateError as exc:  # `serve` refused at start; a worker keeps running, 503
            log.error("serve: state directory unavailable", error=str(exc))
        self._caches: dict[str, RecordsCache] = {}
        self._stores: dict[str, SpaceState] = {}
        #: Each space's joboutputs folder as a string: a heartbeat's path is joined from
        #: it and two names already checked, cheaper than three `Path` joins per request.
        self._outputs: dict[str, str] = {}
        for name in config.spaces:
            store = self.root.space(name)
            self._stores[name] = store
            self._caches[name] = RecordsCache(store.records_file)
            self._outputs[name] = str(store.joboutputs_dir)

    def warm(self) -> None:
        """Read every space's records now, not on the first request: a worker calls it
        once before serving (and before `gc.freeze`). A state directory that cannot be
        read is left for the requests to report."""
        for name, cache in self._caches.items():
            try:
                cache.get("")
            except (OSError, StateError) as exc:
                log.warning("serve: cannot read the machine records yet", space=name,
                            error=str(exc))

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            reply = self.handle(environ)
        except OSError as exc:
            log.warning("serve: state directory error", error=exc.strerror or str(exc))
            reply = _text(503, "state directory unavailable")
        except StateError as exc:
            log.error("serve: state directory unavailable", error=str(exc))
            reply = _text(503, f"state directory unavailable: {exc}")
        request_read()
        length = ("Content-Length", str(len(reply.body)))
        if not reply.headers:  # every heartbeat: no scan, no unpacking
            headers = [_PLAIN_TEXT, length, _NO_STORE]
        else:
            typed = any(k == "Content-Type" for k, _ in reply.headers)  # pages.py: its own
            headers = [*([] if typed else [_PLAIN_TEXT]), length, _NO_STORE, *reply.headers]
        status = _STATUS_LINES.get(reply.status) or f"{reply.status} Error"
        start_response(status, headers)
        return [reply.body]

    # -- routing and checks, in the documented order ------------------------------------------
    def handle(self, environ: Mapping[str, Any]) -> Reply:
        method = str(environ.get("REQUEST_METHOD", "GET"))
        path = str(environ.get("PATH_INFO", ""))
        if path == "/healthz":
            return self.health() if method in ("GET", "HEAD") else \
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

    def health(self) -> Reply:
        """200 only while the state directory this worker serves can be read: a load
        balancer must stop sending VMs to a host whose share is gone (unmounted, stale)."""
        current = self.root.open(create=False)  # StateError: 503 (in __call__)
        if self.state_id is None:
            self.state_id = current
        elif current != self.state_id:
            raise StateError(f"{self.root} is now state directory {current}, "
                             f"not {self.state_id}")
        return _text(200, "ok")

    def token_key(self) -> bytes:
        """The token key, read only from a state directory that opens: never created in
        the bare mountpoint of an unmounted share."""
        if self._key is None:
            self.root.open(create=False)
            self._key = tokens.secret(self.config.state_dir)
        return self._key

    def authorised(self, environ: Mapping[str, Any], name: str) -> bool:
        header = str(environ.get("HTTP_AUTHORIZATION", ""))
        scheme, _, presented = header.partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not _TOKEN.fullmatch(presented):
            return False
        check = self._tokens
        if check is None:
            check = self._tokens = tokens.TokenCheck(self.token_key())
        return check.matches(name, presented)

    # -- MJF ---------------------------------------------------------------------------
    def get_feature(self, store: SpaceState, rec: MachineRecord, section: str, key: str) -> Reply:
        mt = self.config.spaces[store.name].machinetypes.get(rec.machinetype)
        if mt is None:
            return _text(404, "machinetype no longer configured")
        drain = machine_drains(store, rec.name, rec.machinetype).for_machine(
            rec.name, rec.machinetype, mt.drain_grace_seconds)
        value = mjf.feature(section, key, rec, mt, drain)
        if value is None:
            return _text(404, f"no {section} key {key!r} for this machine")
        return Reply(200, value.encode())

    # -- joboutputs --------------------------------------------------------------------
    def put_output(self, environ: Mapping[str, Any], store: SpaceState, rec: MachineRecord,
                   filename: str) -> Reply:
        name = rec.name
        mt = self.config.spaces[store.name].machinetypes.get(rec.machinetype)
        heartbeat = mt is not None and filename == mt.heartbeat_name
        if heartbeat or filename == SHUTDOWN_MESSAGE:
            return self.put_report(environ, store, name, filename, heartbeat=heartbeat)
        limit = self.limits.max_upload_bytes
        declared = str(environ.get("CONTENT_LENGTH") or "")
        if declared:
            if not declared.isdigit():
                return _text(400, "bad Content-Length")
            if int(declared) > limit:
                return _text(413, f"upload over {limit} bytes")
        body = read_bounded(environ["wsgi.input"], limit + 1)
        request_read()
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
        write_atomic(folder / filename, body)
        return Reply(204)

    def put_report(self, environ: Mapping[str, Any], store: SpaceState, name: str,
                   filename: str, *, heartbeat: bool) -> Reply:
        """The heartbeat and `shutdown_message` are always accepted, whatever the machine's
        quota and whatever length is declared: refusing them once got a VM that had filled
        its quota killed for a "missing" heartbeat, with its real shutdown reason lost. They
        are small and bounded (the first `REPORT_BYTES` are kept; only the heartbeat's mtime
        and the message's first line are ever read) and replace the previous value, so a
        machine can exceed its quota by at most two such files."""
        body = read_bounded(environ["wsgi.input"], REPORT_BYTES)
        request_read()
        if heartbeat:  # overwritten in place, no fsync: vcyclectl.state.heartbeats says why
            # `handle` checked both names (a machine name, a plain file name): no `/`,
            # no leading dot, so the joined path stays inside this machine's folder.
            write_heartbeat(f"{self._outputs[store.name]}/{name}/{filename}", body)
        else:  # a shutdown message is kept atomically and durably
            write_atomic(store.machine_outputs_dir(name) / filename, body)
        return Reply(204)


def machine_drains(store: SpaceState, name: str, machinetype: str) -> Drains:
    """Only the drain marks that can apply to one machine: the space's, its machinetype's
    and its own, three small reads whatever the size of `drains/` (a request used to read
    every mark in the space, so a space with thousands of drained machines paid for all of
    them on every MJF request). An unreadable mark is ignored and logged, as `drains()`
    does, so one bad file never fails a VM's request."""
    found: dict[str, DrainMark] = {}
    for kind, file_name in (("space", store.drain_file_name(None, None)),
                            ("machinetype", store.drain_file_name(machinetype, None)),
                            ("machine", store.drain_file_name(None, name))):
        path = store.drains_dir / file_name
        try:
            data = read_json(path)
            if data is None:
                continue
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            found[kind] = DrainMark.from_record(data)
        except (ValueError, TypeError, IsADirectoryError) as exc:
            log.warning("drain mark unreadable, ignored", file=str(path), error=str(exc))
    return Drains(space=found.get("space"),
                  machinetypes={machinetype: found["machinetype"]} if "machinetype" in found
                  else {},
                  machines={name: found["machine"]} if "machine" in found else {})


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
