"""Creates under realistic latency (issue 17): one reconcile pass that creates 100 machines
against a serial SDK loop, in the same run, both through a proxy that adds per-request
latency in front of the test clouds: a real moto server (EC2) and the fake Compute API
(GCE, tests/clouds/gce_fake.py). OpenStack is measured by bench_latency_openstack.py, against
the real control plane (it takes a minute to start).

On 2 cores moto is CPU-bound, so threads cannot show against it directly (bench_ec2.py says
so); real clouds are latency-bound. The proxy sleeps before forwarding each request: by
default 300 ms for a create (`RunInstances`, `instances.insert`) and 100 ms for everything
else (listings, look-ups, `zoneOperations.wait`), so what is measured is how the pass
overlaps waiting.

The pass is `reconcile_space` itself (lock, listing, plan, intents, creates from the
reconciler's bounded pool of `concurrency` threads, records), not the driver alone. Each
cloud's pass runs twice: with client-side rate limits off, and with the cloud's documented
limits (docs/clouds/ec2.md, gce.md "Rate limits"), fresh buckets each time. EC2 documents
5 `RunInstances` at once and 2 a second after that, so 100 creates cannot take less than
(100 - 5) / 2 = 47.5 s however parallel; the script prints that floor, and the serial loop
run through the same buckets, next to the plain ratio. The GCE serial loop does what the
driver does per create: `instances.insert`, then `zoneOperations.wait`.

Run: `.venv/bin/python benchmarks/bench_latency.py [--creates 100] [--create-ms 300]
[--read-ms 100] [--concurrency 16] [--clouds ec2,gce]`. Aim: pass / serial <= 0.15.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests" / "clouds")]

from moto_server import DUMMY_AWS_ENV, REMOVED_AWS_ENV, moto_server, register_image, reset  # noqa: E402
from vcyclectl import config as config_module  # noqa: E402
from vcyclectl.clouds.ratelimit import REGISTRY  # noqa: E402
from vcyclectl.reconcile import reconcile_space  # noqa: E402
from vcyclectl.state.store import StateDir  # noqa: E402

SPACE = "bench.example.org"
REGION = "us-east-1"
GCE_IMAGE = "projects/cos-cloud/global/images/family/cos-stable"
GCE_TYPE = "e2-standard-2"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authenticate", "proxy-authorization"}
#: (method, path, body) -> whether the request is a create (the slow kind).
IsCreate = Callable[[str, str, bytes], bool]


def ec2_create(method: str, path: str, body: bytes) -> bool:
    return b"Action=RunInstances" in body


def gce_create(method: str, path: str, body: bytes) -> bool:
    return method == "POST" and urlsplit(path).path.endswith("/instances")


def latency_proxy(upstream: str, create_s: float, read_s: float, is_create: IsCreate
                  ) -> tuple[ThreadingHTTPServer, dict[str, int]]:
    """A threaded reverse proxy on a free loopback port: sleep, then forward to `upstream`."""
    target = urlsplit(upstream)
    counts = {"create": 0, "other": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            creating = is_create(self.command, self.path, body)
            with lock:
                counts["create" if creating else "other"] += 1
            time.sleep(create_s if creating else read_s)
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            conn.request(self.command, self.path, body=body, headers=headers)
            reply = conn.getresponse()
            data = reply.read()
            self.send_response(reply.status)
            for key, value in reply.getheaders():
                if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()

        do_GET = do_POST = do_DELETE = do_PATCH = _forward

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, counts


def config_text(state_dir: Path, cloud: str, block: str, creates: int, concurrency: int,
                machinetype: str = "target_share: 1") -> str:
    return f"""\
state_dir: {state_dir}
defaults: {{backoff_seconds: 0, fizzle_seconds: 0, min_pass_interval_seconds: 0,
            max_wallclock_seconds: 3600}}
spaces:
  {SPACE}:
    cloud: {cloud}
    processors_limit: {2 * creates}
    max_starting_processors: {2 * creates}
    max_creates_per_pass: {creates}
    concurrency: {concurrency}
    {cloud}: {{{block}}}
    machinetypes:
      bench: {{{machinetype}}}
"""


@dataclass
class Pass:
    seconds: float
    creates: int
    other: int


def one_pass(tmp: Path, name: str, cloud: str, block: str, args: argparse.Namespace,
             counts: dict[str, int], machinetype: str = "target_share: 1") -> Pass:
    """One `reconcile_space` on a fresh state directory, with fresh rate-limit buckets."""
    REGISTRY.reset()
    counts.update(create=0, other=0)
    path = tmp / name / "vcyclectl.yaml"
    path.parent.mkdir()
    path.write_text(config_text(path.parent / "state", cloud, block, args.creates,
                                args.concurrency, machinetype))
    cfg = config_module.load(path)
    state_id = StateDir(cfg.state_dir).open(create=True)
    started = time.perf_counter()
    result = reconcile_space(cfg, cfg.spaces[SPACE], state_id, force=True)
    seconds = time.perf_counter() - started
    assert result.outcome == "done", result.summary()
    assert result.created == args.creates, result.summary()
    return Pass(seconds, counts["create"], counts["other"])


# -- EC2 -----------------------------------------------------------------------------------

def ec2_serial(client: Any, ami: str, creates: int, tag: str) -> float:
    started = time.perf_counter()
    for i in range(creates):
        client.run_instances(ImageId=ami, InstanceType="m5.large", MinCount=1, MaxCount=1,
                             ClientToken=f"{tag}-{i}",
                             TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                 {"Key": "Name", "Value": f"{tag}-{i}"}]}])
    return time.perf_counter() - started


def bench_ec2(args: argparse.Namespace, tmp: Path) -> None:
    import boto3

    from vcyclectl.clouds.ec2 import throttle
    from vcyclectl.clouds.ec2.limits import REQUEST_BUCKETS
    from vcyclectl.clouds.ec2.options import Ec2Options

    for name in REMOVED_AWS_ENV:
        os.environ.pop(name, None)
    os.environ.update(DUMMY_AWS_ENV)
    with moto_server() as upstream:
        proxy, counts = latency_proxy(upstream, args.create_ms / 1000, args.read_ms / 1000,
                                      ec2_create)
        endpoint = f"http://127.0.0.1:{proxy.server_address[1]}"
        try:
            direct = boto3.client("ec2", region_name=REGION, endpoint_url=upstream)
            reset(upstream)
            ami = register_image(direct, "bench-worker")
            serial = ec2_serial(boto3.client("ec2", region_name=REGION, endpoint_url=endpoint),
                                ami, args.creates, "serial")
            block = (f'region: {REGION}, endpoint_url: "{endpoint}", image: bench-worker, '
                     "image_owners: [self], instance_types: [m5.large]")
            runs = {}
            for label, extra in (("off", ", rate_limits: false"), ("documented", "")):
                reset(upstream)
                register_image(direct, "bench-worker")
                runs[label] = one_pass(tmp, f"ec2-{label}", "ec2", block + extra, args, counts)
            reset(upstream)
            REGISTRY.reset()
            limited = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)
            throttle.install(limited, Ec2Options(region=REGION))
            serial_limited = ec2_serial(limited, register_image(direct, "bench-worker"),
                                        args.creates, "limited")
        finally:
            proxy.shutdown()
    burst, rate = REQUEST_BUCKETS["RunInstances"]
    floor = max(0.0, args.creates - burst) / rate
    print(f"EC2 (moto behind the proxy): {args.create_ms:.0f} ms per RunInstances, "
          f"{args.read_ms:.0f} ms per other request; {args.creates} creates, concurrency "
          f"{args.concurrency}")
    print(f"  serial boto3 loop: {serial:.2f}s")
    off, documented = runs["off"], runs["documented"]
    print(f"  pass, client-side limits off (rate_limits: false): {off.seconds:.2f}s "
          f"({off.creates} RunInstances, {off.other} other requests); "
          f"pass / serial {off.seconds / serial:.3f} (aim <= 0.15)")
    print(f"  pass, EC2's documented limits (RunInstances {burst:g} at once, {rate:g}/s): "
          f"{documented.seconds:.2f}s; pass / serial {documented.seconds / serial:.3f}")
    print(f"    the documented limits' floor for {args.creates} launches: {floor:.1f}s; "
          f"pass / floor {documented.seconds / floor:.3f}" if floor else "")
    print(f"    serial boto3 loop through the same buckets: {serial_limited:.2f}s; "
          f"pass / that loop {documented.seconds / serial_limited:.3f}")


# -- GCE -----------------------------------------------------------------------------------

def gce_serial(endpoint: str, project: str, zones: list[str], creates: int) -> float:
    """The driver's work per create, one after another with the plain SDK: insert, then
    `zoneOperations.wait` until the operation is DONE."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import compute_v1

    from vcyclectl.clouds.gce import requests as gce_requests
    from vcyclectl.clouds.gce.options import GceOptions
    from vcyclectl.core.model import Flavor, MachineSpec

    kwargs: dict[str, Any] = {"credentials": AnonymousCredentials(), "transport": "rest",
                              "client_options": ClientOptions(api_endpoint=endpoint)}
    instances = compute_v1.InstancesClient(**kwargs)
    operations = compute_v1.ZoneOperationsClient(**kwargs)
    options = GceOptions(project=project, zones=zones, machine_types=[GCE_TYPE],
                         image=GCE_IMAGE, credentials="anonymous", api_endpoint=endpoint)
    started = time.perf_counter()
    for i in range(creates):
        name = f"serial-{i:04d}"
        zone = zones[i % len(zones)]
        spec = MachineSpec(name=name, space=SPACE, machinetype="bench",
                           flavor=Flavor(GCE_TYPE, 2, 8192), image=None, user_data="",
                           state_id="serial")
        op = instances.insert_unary(request=compute_v1.InsertInstanceRequest(
            project=project, zone=zone, request_id=gce_requests.request_id(project, zone, name),
            instance_resource=gce_requests.instance_body(spec, options, GCE_IMAGE, zone,
                                                         project)))
        while op.status != compute_v1.Operation.Status.DONE:
            op = operations.wait(project=project, zone=zone, operation=op.name)
    return time.perf_counter() - started


def bench_gce(args: argparse.Namespace, tmp: Path) -> None:
    from gce_fake import FakeCompute

    runs = {}
    fake = FakeCompute().start()
    proxy, counts = latency_proxy(fake.url, args.create_ms / 1000, args.read_ms / 1000,
                                  gce_create)
    endpoint = f"http://127.0.0.1:{proxy.server_address[1]}"
    try:
        zones = list(fake.zones)
        serial = gce_serial(endpoint, fake.project, zones, args.creates)
        block = (f"project: {fake.project}, zones: [{', '.join(zones)}], machine_types: "
                 f'[{GCE_TYPE}], image: "{GCE_IMAGE}", credentials: anonymous, '
                 f'api_endpoint: "{endpoint}"')
        for label, extra in (("off", ", read_requests_per_minute: 0, "
                                     "write_requests_per_minute: 0"), ("documented", "")):
            for name in fake.instance_names():
                fake.remove(name)
            runs[label] = one_pass(tmp, f"gce-{label}", "gce", block + extra, args, counts)
    finally:
        proxy.shutdown()
        fake.stop()
    print(f"GCE (fake Compute API behind the proxy): {args.create_ms:.0f} ms per "
          f"instances.insert, {args.read_ms:.0f} ms per other request; {args.creates} creates, "
          f"concurrency {args.concurrency}")
    print(f"  serial SDK loop (insert, then zoneOperations.wait): {serial:.2f}s")
    for label, what in (("off", "client-side limits off (*_requests_per_minute: 0)"),
                        ("documented", "the documented default quotas (1,500 a minute a "
                                       "group)")):
        run = runs[label]
        print(f"  pass, {what}: {run.seconds:.2f}s ({run.creates} inserts, {run.other} other "
              f"requests); pass / serial {run.seconds / serial:.3f} (aim <= 0.15)")


def add_latency_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every latency benchmark takes (this one and bench_latency_openstack)."""
    parser.add_argument("--creates", type=int, default=100)
    parser.add_argument("--create-ms", type=float, default=300.0)
    parser.add_argument("--read-ms", type=float, default=100.0)
    parser.add_argument("--concurrency", type=int, default=16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_latency_arguments(parser)
    parser.add_argument("--clouds", default="ec2,gce", help="comma-separated: ec2, gce")
    args = parser.parse_args()
    clouds = [c.strip() for c in args.clouds.split(",") if c.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        if "ec2" in clouds:
            bench_ec2(args, Path(tmp))
        if "gce" in clouds:
            bench_gce(args, Path(tmp))


if __name__ == "__main__":
    main()
