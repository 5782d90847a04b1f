"""Benchmark the OpenStack driver against the real loopback control plane.

Prints:
1. the HTTP requests of a no-op listing over 200 servers by a fresh driver (what one
   reconcile pass costs the cloud when there is nothing to do), with the cloud's default page
   size and with `page_size: 50`; the aim is auth + pages, independent of the server count;
2. the wall time to create 100 servers through the driver with ThreadPoolExecutor(16) (as
   the reconciler does), and with a serial openstacksdk loop in the same run, and the ratio.

Needs the packages of tests/clouds/openstack/install.sh. Starts its own control plane (about
a minute), or uses a running one: VCYCLECTL_OS_CONTROL_PLANE=BASE/control-plane.json.

    .venv/bin/python benchmarks/bench_openstack.py
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests/clouds/openstack"))
sys.path.insert(0, str(ROOT))

import os_controlplane  # noqa: E402
from os_controlplane import ControlPlane  # noqa: E402
from os_fixtures import new_tenant, spec  # noqa: E402

from vcyclectl.clouds.openstack.driver import OpenStackCloud  # noqa: E402

warnings.simplefilter("ignore", DeprecationWarning)  # openstacksdk-internal deprecations
warnings.simplefilter("ignore", PendingDeprecationWarning)

LISTED = 200
CREATED = 100
WORKERS = 16


@contextmanager
def counting_requests() -> Iterator[list[tuple[str, str]]]:
    """Every HTTP request any requests/keystoneauth session sends, auth included."""
    import requests.adapters

    seen: list[tuple[str, str]] = []
    original = requests.adapters.HTTPAdapter.send

    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append((request.method, urlsplit(request.url).path))
        return original(self, request, *args, **kwargs)

    requests.adapters.HTTPAdapter.send = send  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        requests.adapters.HTTPAdapter.send = original  # type: ignore[method-assign]


def describe(seen: list[tuple[str, str]]) -> str:
    kinds = Counter()
    for method, path in seen:
        if path.endswith("/auth/tokens"):
            kinds["auth"] += 1
        elif path.endswith("/servers/detail"):
            kinds["server pages"] += 1
        elif path.rstrip("/").endswith("/v2.1") or path in ("", "/"):
            kinds["version discovery"] += 1
        else:
            kinds[f"{method} {path}"] += 1
    return ", ".join(f"{n} {k}" for k, n in kinds.items())


def bench_listing(cloud: ControlPlane, admin: Any) -> None:
    tenant = new_tenant(cloud, admin, "bench-list")
    driver = OpenStackCloud(tenant.context())
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda _: driver.create(spec(tenant)), range(LISTED)))
    for label, options in (("default page size", tenant.options()),
                           ("page_size 50", tenant.options(page_size=50))):
        fresh = OpenStackCloud(tenant.context(options))
        with counting_requests() as seen:
            began = time.perf_counter()
            machines = fresh.list_machines()
            elapsed = time.perf_counter() - began
        assert len(machines) == LISTED, len(machines)
        print(f"no-op listing of {len(machines)} servers, {label}: {len(seen)} HTTP requests "
              f"({describe(seen)}) in {elapsed:.2f} s")


def bench_create(cloud: ControlPlane, admin: Any) -> None:
    tenant = new_tenant(cloud, admin, "bench-driver")
    driver = OpenStackCloud(tenant.context())
    driver.flavors()  # warm the connection like a pass does before it creates
    specs = [spec(tenant) for _ in range(CREATED)]
    began = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        created = list(pool.map(driver.create, specs))
    driver_seconds = time.perf_counter() - began
    assert len({m.id for m in created}) == CREATED

    serial_seconds = serial_creates(new_tenant(cloud, admin, "bench-serial").connection(),
                                    cloud.image_id, CREATED)
    print(f"create {CREATED} servers: driver with ThreadPoolExecutor({WORKERS}) "
          f"{driver_seconds:.1f} s ({driver_seconds / CREATED * 1000:.0f} ms each, one POST "
          f"per server); serial openstacksdk loop {serial_seconds:.1f} s; "
          f"ratio serial/driver {serial_seconds / driver_seconds:.2f}x")


def serial_creates(conn: Any, image_id: str, creates: int) -> float:
    """Seconds a script takes to create `creates` m1.tiny servers one after another with
    openstacksdk (authenticated and discovered before the clock starts)."""
    flavor = conn.compute.find_flavor("m1.tiny")
    conn.compute.get_flavor(flavor.id)
    began = time.perf_counter()
    for n in range(creates):
        conn.compute.create_server(name=f"serial-{n}", image_id=image_id,
                                   flavor_id=flavor.id, networks="none")
    return time.perf_counter() - began


def main() -> None:
    attach = os.environ.get("VCYCLECTL_OS_CONTROL_PLANE")
    began = time.perf_counter()
    cloud = (ControlPlane.attach(json.loads(Path(attach).read_text())) if attach
             else os_controlplane.start())
    print(f"control plane ready in {time.perf_counter() - began:.1f} s"
          + (" (attached)" if attach else ""))
    try:
        admin = cloud.admin_connection()
        bench_listing(cloud, admin)
        bench_create(cloud, admin)
    finally:
        if not attach:
            cloud.stop()


if __name__ == "__main__":
    main()
