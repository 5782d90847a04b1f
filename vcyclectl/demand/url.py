"""The `url` source: the demand object of `payload` over HTTPS, with a bearer token read
from `token_file` at each read (so rotating the file rotates the token). The token never
reaches a message or a log."""

from __future__ import annotations

import socket
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

from vcyclectl.config.demand import DemandSource
from vcyclectl.demand.payload import MAX_BYTES, Counts, Unavailable, parse


def _token(source: DemandSource) -> str:
    path = Path(source.token_file or "")
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise Unavailable(f"cannot read token_file {path}: {exc.strerror or exc}") from None
    if not token:
        raise Unavailable(f"token_file {path} is empty")
    return token


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would send the Authorization header on to wherever a redirect points."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        raise urllib.error.HTTPError(req.full_url, code, f"{msg} (redirects are not followed)",
                                     headers, fp)


def read(source: DemandSource) -> Counts:
    """GET the URL within `timeout_seconds` (connect and the whole body)."""
    token = _token(source)
    request = urllib.request.Request(source.url or "", headers={
        "Authorization": f"Bearer {token}", "Accept": "application/json",
        "User-Agent": "vcyclectl-demand"})
    context = ssl.create_default_context(cafile=source.ca_file) \
        if (source.url or "").startswith("https://") else None
    deadline = time.monotonic() + source.timeout_seconds
    handlers: list[urllib.request.BaseHandler] = [_NoRedirects()]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=source.timeout_seconds) as response:
            body = b""
            while len(body) <= MAX_BYTES:
                if time.monotonic() > deadline:
                    raise TimeoutError
                chunk = response.read(8192)
                if not chunk:
                    break
                body += chunk
    except urllib.error.HTTPError as exc:
        raise Unavailable(f"HTTP {exc.code} {exc.reason}") from None
    except (TimeoutError, socket.timeout):
        raise Unavailable(f"timed out after {source.timeout_seconds:g}s") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (TimeoutError, socket.timeout)):
            raise Unavailable(f"timed out after {source.timeout_seconds:g}s") from None
        raise Unavailable(f"cannot reach it: {exc.reason}") from None
    except (OSError, ssl.SSLError) as exc:
        raise Unavailable(f"cannot reach it: {exc}") from None
    return parse(body)
