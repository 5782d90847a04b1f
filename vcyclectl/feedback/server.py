"""Serving the feedback app: gunicorn (imported only here, only by `serve`) with threaded
workers guarded against slow clients, settings that never log a token, and a configuration
reloaded by each new worker."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

from vcyclectl import log


from vcyclectl.config import Config
from vcyclectl.errors import VcyclectlError
from vcyclectl.state.store import StateDir

from vcyclectl.feedback.app import FeedbackApp, Limits
from vcyclectl.feedback.slowclients import bounded_worker_class

#: The request line without its query string (`%(U)s`, not `%(r)s`): a token sent in a
#: query string must never reach the log.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'


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
    #: The longest a client may take to send one request (line, headers and body); a
    #: heartbeat takes milliseconds. See `SlowClientGuard`.
    request_timeout: float = 10.0
    #: A request still being sent after this long is slow; at most half of a worker's
    #: threads may be held by slow ones.
    slow_request_seconds: float = 1.0


def gunicorn_settings(options: ServeOptions) -> dict[str, Any]:
    """Gunicorn settings; the access log format carries no header, so never a token."""
    settings: dict[str, Any] = {
        "bind": [options.listen],
        "workers": options.workers,
        "threads": options.threads,
        "worker_class": bounded_worker_class(options),
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
        # Both logs on stderr, in vcyclectl's own format (text, json or journal fields).
        "logger_class": vcyclectl_logger_class(),
        "proc_name": "vcyclectl-serve",
        "forwarded_allow_ips": options.forwarded_allow_ips,
        # No `gunicornc` socket in $HOME: several serve instances may share a host.
        "control_socket_disable": True,
        "worker_tmp_dir": liveness_tmp_dir(),
    }
    if options.tls_cert or options.tls_key:
        settings["certfile"] = options.tls_cert
        settings["keyfile"] = options.tls_key
    return settings


def liveness_tmp_dir(candidate: str = "/dev/shm") -> str | None:
    """Where gunicorn's workers keep the file they touch to tell the master they are alive:
    tmpfs (`/dev/shm`) when there is a writable one, else gunicorn's default, the temp dir.

    A worker touches it (`utime`) on every turn of its event loop, about once per request;
    on a disk-backed temp dir each touch is a metadata update in the filesystem's journal,
    which can stall the worker, and every request it holds, while the journal commits
    (gunicorn's documentation, "Blocking os.fchmod"). Only the touch's timing matters, not
    the file, so memory is the right place for it."""
    if os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
        return candidate
    return None


def vcyclectl_logger_class() -> type:
    """Gunicorn's logger, writing its error log and its access log through `vcyclectl.log`:
    on stderr (gunicorn's `-` is stdout for the access log), in the `--log-format` every
    other line uses, each request as `request client=… method=… path=… status=… bytes=…
    ms=…` (the path without its query string: a token there never reaches the log)."""
    import logging

    from gunicorn.glogging import Logger  # type: ignore[import-untyped]

    class VcyclectlLogger(Logger):  # type: ignore[misc]
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            handler = log.make_handler()
            for logger in (self.error_log, self.access_log):
                logger.handlers[:] = [handler]
                logger.propagate = False
            self.access_log.setLevel(logging.INFO)

        def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
            if not self.cfg.accesslog:
                return
            values = access_fields(resp, environ, request_time)
            self.access_log.info("%s %s", "request", log.fields(**values),
                                 extra={"vc_message": "request", "vc_fields": values})

    return VcyclectlLogger


def access_fields(resp: Any, environ: Any, request_time: Any) -> dict[str, Any]:
    """The access log's fields, as gunicorn's atoms `h m U s b M` give them, computed alone:
    `Logger.atoms` builds some fifty (every header and environ key, a formatted date) per
    request to log six: 16 µs against 1.6 µs on an idle core, per request (issue 17)."""
    status = resp.status
    if isinstance(status, str):
        status = status.split(None, 1)[0]
    sent = getattr(resp, "sent", None)
    values: dict[str, Any] = {"client": environ.get("REMOTE_ADDR", "-"),
                              "method": environ.get("REQUEST_METHOD"),
                              "path": environ.get("PATH_INFO")}
    ms = request_time.seconds * 1000 + int(request_time.microseconds / 1000)
    for key, value in (("status", status), ("bytes", str(sent) if sent is not None else "-"),
                       ("ms", ms)):
        text = str(value)
        values[key] = int(text) if text.isdigit() else text  # numbers in JSON
    return values


class MissingExtra(VcyclectlError):
    """A part of vcyclectl whose optional dependency is not installed (exit 1)."""


def require_gunicorn() -> None:
    """`serve` needs gunicorn, which the core install leaves out: say which extra adds it."""
    try:
        import gunicorn  # type: ignore[import-untyped]  # noqa: F401
    except ModuleNotFoundError:
        raise MissingExtra("serve needs the gunicorn package, which is not installed: "
                           "pip install 'vcyclectl[serve]'") from None


def run(config: Config, options: ServeOptions, limits: Limits,
        reload_config: Callable[[], Config] | None = None) -> None:
    """Serve until SIGTERM/SIGINT (gunicorn's master handles signals and worker restarts).

    Each worker builds its app after the fork from `reload_config()`, so `kill -HUP` (new
    workers) picks up an edited configuration; a configuration that no longer loads is
    reported and the last good one kept, so a typo never takes the service down.
    """
    require_gunicorn()
    from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

    StateDir(config.state_dir).open(create=False)  # refuse, before binding, a bad one
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
