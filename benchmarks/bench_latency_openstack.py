"""Creates under realistic latency on OpenStack (issue 17): one reconcile pass that creates
100 servers against a serial openstacksdk loop, in the same run, both through a proxy that
waits before forwarding each request to the real nova-api of the loopback control plane
(tests/clouds/openstack; LossyRegion's compute endpoint is that proxy): by default 300 ms
for a create (`POST /servers`) and 100 ms for everything else.

The pass is `reconcile_space` itself (bench_latency.py's `one_pass`), twice: with the
client-side rate limit off (`api_requests_per_second: 0`) and with vcyclectl's default
(10 a second after a burst of 50; OpenStack documents no default, a site sets its own).

The control plane runs on this machine's cores, so unlike a real cloud it is also CPU-bound:
nova-api's own time per create is in both figures, and it is what the pass cannot overlap
on 2 cores. The script prints the control plane's CPU per create (every service, workers
included), so that share can be read off: N creates cannot take less than N times that
CPU divided by the cores, however parallel the pass.

    .venv/bin/python benchmarks/bench_latency_openstack.py [--creates 100] [--create-ms 300]
        [--read-ms 100] [--concurrency 16]

Needs the packages of tests/clouds/openstack/install.sh. Starts its own control plane (about
a minute), or uses a running one: VCYCLECTL_OS_CONTROL_PLANE=BASE/control-plane.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks"), str(REPO / "tests" / "clouds" / "openstack")]

import os_controlplane  # noqa: E402
from bench_latency import add_latency_arguments, one_pass  # noqa: E402
from bench_openstack import serial_creates  # noqa: E402
from os_controlplane import ControlPlane  # noqa: E402
from os_fixtures import new_tenant  # noqa: E402

warnings.simplefilter("ignore", DeprecationWarning)  # openstacksdk-internal deprecations
warnings.simplefilter("ignore", PendingDeprecationWarning)


def control_plane_cpu(cloud: ControlPlane) -> float:
    """CPU seconds used so far by every process of the control plane (MariaDB, RabbitMQ,
    Keystone, Glance, Placement, every Nova service and their workers): each service is
    started in its own session, so this sums the processes of those sessions. 0 when
    attached to a control plane another process started."""
    sessions = {p.pid for p in cloud.processes.values()}
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[3]) in sessions:  # state, ppid, pgrp, session, ...
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_latency_arguments(parser)
    args = parser.parse_args()
    attach = os.environ.get("VCYCLECTL_OS_CONTROL_PLANE")
    cloud = (ControlPlane.attach(json.loads(Path(attach).read_text())) if attach
             else os_controlplane.start())
    try:
        admin = cloud.admin_connection()
        cloud.set_latency(args.create_ms, args.read_ms)
        cpu = control_plane_cpu(cloud)
        serial = serial_creates(new_tenant(cloud, admin, "bench-serial").connection(
            os_controlplane.LOSSY_REGION), cloud.image_id, args.creates)
        serial_cpu = control_plane_cpu(cloud) - cpu
        runs: dict[str, Any] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for label, limit in (("off", ", api_requests_per_second: 0"), ("default", "")):
                tenant = new_tenant(cloud, admin, f"bench-{label}")
                secret = Path(tmp) / f"{label}.password"
                secret.write_text(tenant.password + "\n")
                block = (f'auth_url: "{cloud.auth_url}", region: {os_controlplane.LOSSY_REGION}, '
                         f"username: {tenant.username}, password_file: {secret}, "
                         f"project_name: {tenant.project_name}, network: none" + limit)
                cpu = control_plane_cpu(cloud)
                runs[label] = (one_pass(Path(tmp), f"os-{label}", "openstack", block, args,
                                        {}, f"image: {os_controlplane.IMAGE_NAME}, "
                                            "flavors: [m1.tiny]"),
                               control_plane_cpu(cloud) - cpu)
    finally:
        cloud.set_latency(0, 0)
        if not attach:
            cloud.stop()
    print(f"OpenStack (real nova-api behind the proxy): {args.create_ms:.0f} ms per create, "
          f"{args.read_ms:.0f} ms per other request; {args.creates} creates, concurrency "
          f"{args.concurrency}")
    per_create = serial_cpu / args.creates
    cores = os.cpu_count() or 1
    print(f"  serial openstacksdk loop: {serial:.2f}s; the control plane's CPU "
          f"{per_create * 1000:.0f} ms per create, so {args.creates} creates need at least "
          f"{per_create * args.creates / cores:.1f}s on {cores} cores "
          f"({per_create * args.creates / cores / serial:.3f} of the serial loop)")
    for label, what in (("off", "client-side limit off (api_requests_per_second: 0)"),
                        ("default", "vcyclectl's default limit (10/s after a burst of 50)")):
        run, used = runs[label]
        print(f"  pass, {what}: {run.seconds:.2f}s; pass / serial {run.seconds / serial:.3f} "
              f"(aim <= 0.15); the control plane used {used:.1f} CPU s, at least "
              f"{used / cores:.1f}s on {cores} cores: pass / that floor "
              f"{run.seconds / (used / cores):.2f}")


if __name__ == "__main__":
    main()
