"""Serve one OpenStack WSGI application (Keystone, Placement) on 127.0.0.1.

The packaged ``*-wsgi`` scripts use ``wsgiref``'s single-threaded server, which serialises
every request (Nova's token checks and placement calls would queue behind each other). This
runs the same application object in a threaded ``wsgiref`` server. Standard library only:
it runs under Debian's /usr/bin/python3 next to the packaged OpenStack modules.

Usage: python3 wsgi_serve.py PORT MODULE:FACTORY
"""

from __future__ import annotations

import importlib
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    port, ref = int(sys.argv[1]), sys.argv[2]
    module_name, _, factory = ref.partition(":")
    sys.argv = sys.argv[:1]  # the applications parse sys.argv as oslo.config options
    app = getattr(importlib.import_module(module_name), factory)()
    server = make_server("127.0.0.1", port, app, server_class=ThreadingWSGIServer,
                         handler_class=QuietHandler)
    server.serve_forever()


if __name__ == "__main__":
    main()
