"""A small Neutron API responder for the OpenStack test control plane.

Nova talks to Neutron for every server, even one booted with ``networks="none"`` (it lists
ports to build and tear down the instance's network info), and resolves security group
names through it. Running real Neutron would need OVS/OVN agents; this answers the handful
of calls Nova and openstacksdk make, with one network ``vcyclectl-test-net`` and one
security group ``default``, and keeps ports in memory so a server can be booted on the
network too. Standard library only: it runs under Debian's /usr/bin/python3.
"""

from __future__ import annotations

import argparse
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

NETWORK_ID = "5b8a2a1c-6d1e-4b0f-9c43-000000000001"
SUBNET_ID = "5b8a2a1c-6d1e-4b0f-9c43-000000000002"
SECGROUP_ID = "5b8a2a1c-6d1e-4b0f-9c43-000000000003"


class Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.collections: dict[str, dict[str, dict]] = {
            "networks": {NETWORK_ID: {
                "id": NETWORK_ID, "name": "vcyclectl-test-net", "status": "ACTIVE",
                "admin_state_up": True, "shared": True, "subnets": [SUBNET_ID],
                "router:external": False, "mtu": 1500, "tenant_id": "", "project_id": "",
                "port_security_enabled": True, "tags": []}},
            "subnets": {SUBNET_ID: {
                "id": SUBNET_ID, "name": "vcyclectl-test-subnet", "network_id": NETWORK_ID,
                "ip_version": 4, "cidr": "10.99.0.0/16", "gateway_ip": "10.99.0.1",
                "enable_dhcp": True, "dns_nameservers": [], "host_routes": [],
                "allocation_pools": [{"start": "10.99.0.2", "end": "10.99.255.254"}],
                "tenant_id": "", "project_id": ""}},
            "security-groups": {SECGROUP_ID: {
                "id": SECGROUP_ID, "name": "default", "description": "default",
                "security_group_rules": [], "tenant_id": "", "project_id": ""}},
            "ports": {},
            "floatingips": {},
        }
        self.next_ip = 2


STORE = Store()
SINGULAR = {"networks": "network", "subnets": "subnet", "security-groups": "security_group",
            "ports": "port", "floatingips": "floatingip"}
IGNORED_FILTERS = {"fields", "tenant_id", "project_id", "limit", "marker", "sort_key",
                   "sort_dir", "shared", "router:external"}


def matches(item: dict, query: dict[str, list[str]]) -> bool:
    for key, values in query.items():
        if key in IGNORED_FILTERS:
            continue
        if str(item.get(key)) not in values and item.get(key) not in values:
            return False
    return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: object | None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}") if length else {}

    def _route(self) -> tuple[str | None, str | None, dict[str, list[str]]]:
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        if parts and parts[0] == "v2.0":
            parts = parts[1:]
        collection = parts[0].removesuffix(".json") if parts else None
        item = parts[1].removesuffix(".json") if len(parts) > 1 else None
        return collection, item, parse_qs(url.query)

    def do_GET(self) -> None:
        collection, item, query = self._route()
        if collection is None:
            base = f"http://{self.headers.get('Host')}"
            self._send(200, {"versions": [{"id": "v2.0", "status": "CURRENT",
                                           "links": [{"rel": "self", "href": base + "/v2.0/"}]}]})
            return
        if collection == "extensions":
            self._send(200, {"extensions": []})
            return
        if collection == "quotas":
            self._send(200, {"quota": {"port": -1, "network": -1, "security_group": -1}})
            return
        if collection not in STORE.collections:
            self._send(404, {"NeutronError": {"message": f"unknown {collection}"}})
            return
        with STORE.lock:
            items = STORE.collections[collection]
            if item is not None:
                if item not in items:
                    self._send(404, {"NeutronError": {"type": "NotFound", "message": "not found"}})
                else:
                    self._send(200, {SINGULAR[collection]: items[item]})
                return
            self._send(200, {collection.replace("-", "_"):
                             [i for i in items.values() if matches(i, query)]})

    def do_POST(self) -> None:
        collection, _, _ = self._route()
        if collection != "ports":
            self._send(400, {"NeutronError": {"message": f"cannot create {collection}"}})
            return
        port = self._body().get("port", {})
        with STORE.lock:
            ip = STORE.next_ip
            STORE.next_ip += 1
            port_id = str(uuid.uuid4())
            port.update({
                "id": port_id, "status": "ACTIVE", "admin_state_up": True,
                "mac_address": "fa:16:3e:%02x:%02x:%02x" % (ip >> 16 & 255, ip >> 8 & 255, ip & 255),
                "fixed_ips": [{"subnet_id": SUBNET_ID,
                               "ip_address": f"10.99.{ip >> 8 & 255}.{ip & 255}"}],
                "binding:vif_type": "ovs", "binding:vnic_type": "normal",
                "binding:vif_details": {}, "binding:profile": {},
                "security_groups": port.get("security_groups", [SECGROUP_ID]),
                "device_id": port.get("device_id", ""), "device_owner": port.get("device_owner", ""),
                "tenant_id": port.get("tenant_id", ""), "project_id": port.get("tenant_id", ""),
                "tags": [], "dns_name": "", "allowed_address_pairs": [], "extra_dhcp_opts": []})
            STORE.collections["ports"][port_id] = port
        self._send(201, {"port": port})

    def do_PUT(self) -> None:
        collection, item, _ = self._route()
        with STORE.lock:
            items = STORE.collections.get(collection or "", {})
            if item not in items:
                self._send(404, {"NeutronError": {"type": "NotFound", "message": "not found"}})
                return
            items[item].update(self._body().get(SINGULAR[collection], {}))
            self._send(200, {SINGULAR[collection]: items[item]})

    def do_DELETE(self) -> None:
        collection, item, _ = self._route()
        with STORE.lock:
            STORE.collections.get(collection or "", {}).pop(item or "", None)
        self._send(204, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
