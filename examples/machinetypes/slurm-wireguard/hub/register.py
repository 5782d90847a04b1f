#!/usr/bin/env python3
"""WireGuard registration for worker VMs: the community's side of slurm-wireguard.

Each worker VM makes its own WireGuard key at boot and POSTs the public half (and its
hostname) here with the site's bearer token. This service gives the VM a free tunnel
address, adds it as a peer of the hub's interface, and answers with what the VM needs:

    address=10.77.0.5/24
    hub_public_key=...
    hub_endpoint=hub.example.org:51820
    allowed_ips=10.77.0.0/24

Why per-VM keys rather than a pool handed to the site: WireGuard knows a peer by its key,
so two VMs sharing one would steal each other's tunnel; and a key that never leaves the
VM cannot leak from the site. A VM that registers again under the same hostname gets its
old address back; addresses whose peer has not shaken hands for --reclaim-seconds are
reused when the range runs out.

Run it next to the hub's WireGuard interface, behind TLS (--tls-cert/--tls-key or a
reverse proxy): the token is a bearer secret. Standard library only, on purpose.
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import json
import re
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

KEY = re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=")
HOSTNAME = re.compile(r"[a-z0-9]([a-z0-9.-]{0,252})")


class Registry:
    """Hostname -> address, kept in a JSON file so a restart keeps every VM's address."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.network = ipaddress.ip_network(args.network)
        self.hub_address = next(self.network.hosts())
        self.path = Path(args.state)
        self.lock = threading.Lock()
        self.entries: dict[str, dict[str, Any]] = (
            json.loads(self.path.read_text()) if self.path.exists() else {})

    def wg(self, *words: str) -> str:
        return subprocess.run(["wg", *words], check=True, capture_output=True, text=True,
                              timeout=30).stdout

    def handshakes(self) -> dict[str, int]:
        out = self.wg("show", self.args.interface, "latest-handshakes")
        return {k: int(v) for k, v in (line.split() for line in out.splitlines() if line)}

    def register(self, key: str, host: str) -> str:
        with self.lock:
            old = self.entries.get(host)
            if old is not None and old["key"] != key:
                self.wg("set", self.args.interface, "peer", str(old["key"]), "remove")
            address = str(old["address"]) if old else self._free_address()
            self.wg("set", self.args.interface, "peer", key, "allowed-ips", f"{address}/32")
            self.entries[host] = {"key": key, "address": address, "since": time.time()}
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.entries, indent=1))
            tmp.replace(self.path)
            hub_key = self.wg("show", self.args.interface, "public-key").strip()
        return (f"address={address}/{self.network.prefixlen}\nhub_public_key={hub_key}\n"
                f"hub_endpoint={self.args.endpoint}\nallowed_ips={self.network}\n")

    def _free_address(self) -> str:
        used = {str(e["address"]) for e in self.entries.values()}
        for candidate in self.network.hosts():
            if candidate != self.hub_address and str(candidate) not in used:
                return str(candidate)
        seen = self.handshakes()
        cutoff = time.time() - self.args.reclaim_seconds
        for host, entry in sorted(self.entries.items(), key=lambda kv: float(kv[1]["since"])):
            last = seen.get(str(entry["key"]), 0)
            if max(last, float(entry["since"])) < cutoff:
                self.wg("set", self.args.interface, "peer", str(entry["key"]), "remove")
                del self.entries[host]
                return str(entry["address"])
        raise RuntimeError("no free tunnel address")


def handler(registry: Registry, token: bytes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            given = self.headers.get("Authorization", "").removeprefix("Bearer ").encode()
            if not hmac.compare_digest(given, token):
                return self._answer(403, "forbidden\n")
            length = int(self.headers.get("Content-Length") or 0)
            if length > 1024:
                return self._answer(413, "too large\n")
            lines = self.rfile.read(length).decode("ascii", "replace").split()
            if len(lines) != 2 or not KEY.fullmatch(lines[0]) or \
                    not HOSTNAME.fullmatch(lines[1]):
                return self._answer(400, "expected a WireGuard public key and a hostname\n")
            try:
                answer = registry.register(lines[0], lines[1])
            except (RuntimeError, subprocess.SubprocessError) as exc:
                return self._answer(503, f"{exc}\n")
            self._answer(200, answer)

        def _answer(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="0.0.0.0:8443")
    parser.add_argument("--interface", default="wg0")
    parser.add_argument("--network", default="10.77.0.0/24",
                        help="tunnel range; its first address is the hub's")
    parser.add_argument("--endpoint", required=True, help="public HOST:PORT of the hub")
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--state", default="/var/lib/wg-register/peers.json")
    parser.add_argument("--reclaim-seconds", type=float, default=3600.0)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    token = Path(args.token_file).read_text().strip().encode()
    host, port = args.listen.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), handler(Registry(args), token))
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
