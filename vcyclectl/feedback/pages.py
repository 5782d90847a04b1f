"""`serve`'s public, read-only pages: `/` (the status page) and `/metrics` (Prometheus).
No token: they show nothing secret (vcyclectl.monitoring.page says what they show). Both
are built afresh from the state directory on each request, like everything `serve` does,
without probing the spaces' locks (a scrape must never make a pass skip a space)."""

from __future__ import annotations

from vcyclectl.config import Config
from vcyclectl.feedback.app import Reply, _text
from vcyclectl.monitoring.fleet import hostname, snapshot

PATHS = ("/", "/metrics")
HISTORY_SECONDS = 7 * 86400.0


def public_page(config: Config, path: str, method: str) -> Reply:
    if path not in PATHS:
        return _text(404, "not found")
    if method not in ("GET", "HEAD"):
        return _text(405, "method not allowed", ("Allow", "GET, HEAD"))
    if path == "/metrics":
        from vcyclectl.monitoring.metrics import CONTENT_TYPE, exposition

        body = exposition(snapshot(config, probe_locks=False))
        return Reply(200, body, (("Content-Type", CONTENT_TYPE),))
    from vcyclectl.monitoring.page import render

    fleet = snapshot(config, probe_locks=False, history_seconds=HISTORY_SECONDS)
    return Reply(200, render(fleet, host=hostname()).encode(),
                 (("Content-Type", "text/html; charset=utf-8"),))
