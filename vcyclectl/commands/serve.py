"""`vcyclectl serve`: the VM feedback channel (MJF, joboutputs, heartbeats); see docs/serve.md.

Everything heavy (gunicorn, the WSGI app) is imported inside the command, so `vcyclectl
list` never pays for the server.
"""

from __future__ import annotations

import os
from typing import Optional

import typer

from vcyclectl.commands.context import AppContext, app_context, info


def _listen(value: str) -> str:
    """HOST:PORT, [IPv6]:PORT or unix:/path; checked here so a typo is a usage error (2)."""
    if value.startswith("unix:"):
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise typer.BadParameter(f"{value!r} is not HOST:PORT")
    return value


def _initialise_state(app: AppContext) -> None:
    """Create the state directory on first use, as `reconcile` does, so a new host's
    systemd may start `serve` before the first pass. Only under an existing parent: a
    missing parent is a wrong path or a share not mounted yet (exit 2, nothing created).
    Read-only commands (`status`, `list`, `plan`) still refuse an uninitialised one."""
    from vcyclectl.errors import UsageError

    root = app.config().state_dir
    if not root.exists() and not root.parent.is_dir():
        raise UsageError(f"state directory {root}: its parent {root.parent} does not exist "
                         "(a wrong state_dir, or the share is not mounted yet); serve creates "
                         "the state directory only inside an existing folder")
    app.state(create=True)  # a file, a newer format or a lost id: refused here (exit 2)


def serve(
    ctx: typer.Context,
    listen: str = typer.Option("127.0.0.1:8080", "--listen", callback=_listen,
                               metavar="HOST:PORT",
                               help="HOST:PORT, [IPv6]:PORT or unix:/path to listen on."),
    tls_cert: Optional[str] = typer.Option(None, "--tls-cert", metavar="FILE",
                                           help="PEM certificate: serve HTTPS directly."),
    tls_key: Optional[str] = typer.Option(None, "--tls-key", metavar="FILE",
                                          help="PEM private key."),
    workers: int = typer.Option(min(4, max(2, os.cpu_count() or 1)), "--workers", min=1, max=64,
                                help="Worker processes."),
    threads: int = typer.Option(8, "--threads", min=1, max=256, help="Threads per worker."),
    max_upload_bytes: int = typer.Option(1024 * 1024, "--max-upload-bytes", min=1,
                                         help="Largest joboutputs file (413 above)."),
    max_machine_bytes: int = typer.Option(16 * 1024 * 1024, "--max-machine-bytes", min=1,
                                          help="Quota of all one machine's joboutputs."),
    max_machine_files: int = typer.Option(64, "--max-machine-files", min=1,
                                          help="Most joboutputs files per machine."),
    request_timeout: float = typer.Option(10.0, "--request-timeout", min=0.5,
                                          help="Seconds a client may take to send one "
                                               "request; slower ones are cut."),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log",
                                    help="Log each request on stderr (never its token)."),
) -> None:
    """Serve MJF and accept joboutputs (heartbeats, shutdown messages) from VMs over HTTP.

    \b
    Examples:
      vcyclectl serve
      vcyclectl serve --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem
      vcyclectl serve --listen unix:/run/vcyclectl/serve.sock --no-access-log
    """
    from vcyclectl import config as config_module
    from vcyclectl.errors import UsageError
    from vcyclectl.feedback.app import Limits
    from vcyclectl.feedback.server import ServeOptions, run

    if bool(tls_cert) != bool(tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    app = app_context(ctx)
    config = app.config()
    _initialise_state(app)
    if not config.feedback_url:
        info(app, "vcyclectl serve: note: feedback_url is not set, so VMs are not told where "
                  "this service is (see docs/serve.md)")
    run(config,
        ServeOptions(listen=listen, tls_cert=tls_cert, tls_key=tls_key, workers=workers,
                     threads=threads, access_log=access_log,
                     request_timeout=request_timeout),
        Limits(max_upload_bytes=max_upload_bytes, max_machine_bytes=max_machine_bytes,
               max_machine_files=max_machine_files),
        reload_config=lambda: config_module.load(app.config_path, state_dir=app.state_dir))
