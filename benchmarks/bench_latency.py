"""Creates under realistic latency (issue 17): one reconcile pass that creates 100 EC2
instances against a serial boto3 `run_instances` loop, in the same run, both through a proxy
that adds per-request latency in front of a real moto server.

On 2 cores moto is CPU-bound, so threads cannot show against it directly (bench_ec2.py says
so); real clouds are latency-bound. The proxy sleeps before forwarding each request: by
default 300 ms for `RunInstances` and 100 ms for everything else (listings, image and
instance-type look-ups), so what is measured is how the pass overlaps waiting.

The pass is `reconcile_space` itself (lock, listing, plan, intents, creates from the
reconciler's bounded pool of `concurrency` threads, records), not the driver alone.

Run: `.venv/bin/python benchmarks/bench_latency.py [--creates 100] [--create-ms 300]
[--read-ms 100] [--concurrency 16]`. Aim: pass / serial <= 0.15.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests" / "clouds")]

import boto3  # noqa: E402

from moto_server import DUMMY_AWS_ENV, REMOVED_AWS_ENV, moto_server, register_image, reset  # noqa: E402
from vcyclectl import config as config_module  # noqa: E402
from vcyclectl.reconcile import reconcile_space  # noqa: E402
from vcyclectl.state.store import StateDir  # noqa: E402

SPACE = "aws.example.org"
REGION = "us-east-1"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authenticate", "proxy-authorization"}


def latency_proxy(upstream: str, create_s: float, read_s: float) -> tuple[ThreadingHTTPServer,
                                                                         dict[str, int]]:
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
            creating = b"Action=RunInstances" in body
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

        do_GET = do_POST = _forward

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, counts


def config_text(state_dir: Path, endpoint: str, creates: int, concurrency: int) -> str:
    return f"""\
state_dir: {state_dir}
defaults: {{backoff_seconds: 0, fizzle_seconds: 0, min_pass_interval_seconds: 0,
            max_wallclock_seconds: 3600}}
spaces:
  {SPACE}:
    cloud: ec2
    processors_limit: {2 * creates}
    max_starting_processors: {2 * creates}
    max_creates_per_pass: {creates}
    concurrency: {concurrency}
    ec2: {{region: {REGION}, endpoint_url: "{endpoint}", image: bench-worker,
          image_owners: [self], instance_types: [m5.large]}}
    machinetypes:
      bench: {{target_share: 1}}
"""


def serial_loop(client: object, ami: str, creates: int) -> float:
    started = time.perf_counter()
    for i in range(creates):
        client.run_instances(ImageId=ami, InstanceType="m5.large",  # type: ignore[attr-defined]
                             MinCount=1, MaxCount=1, ClientToken=f"serial-{i}",
                             TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                 {"Key": "Name", "Value": f"serial-{i}"}]}])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creates", type=int, default=100)
    parser.add_argument("--create-ms", type=float, default=300.0)
    parser.add_argument("--read-ms", type=float, default=100.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    for name in REMOVED_AWS_ENV:
        os.environ.pop(name, None)
    os.environ.update(DUMMY_AWS_ENV)
    with moto_server() as upstream, tempfile.TemporaryDirectory() as tmp:
        proxy, counts = latency_proxy(upstream, args.create_ms / 1000, args.read_ms / 1000)
        endpoint = f"http://127.0.0.1:{proxy.server_address[1]}"
        try:
            direct = boto3.client("ec2", region_name=REGION, endpoint_url=upstream)
            reset(upstream)
            ami = register_image(direct, "bench-worker")
            slow = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)
            serial = serial_loop(slow, ami, args.creates)

            reset(upstream)
            register_image(direct, "bench-worker")
            counts.update(create=0, other=0)
            path = Path(tmp) / "vcyclectl.yaml"
            path.write_text(config_text(Path(tmp) / "state", endpoint, args.creates,
                                        args.concurrency))
            cfg = config_module.load(path)
            state_id = StateDir(cfg.state_dir).open(create=True)
            started = time.perf_counter()
            result = reconcile_space(cfg, cfg.spaces[SPACE], state_id, force=True)
            one_pass = time.perf_counter() - started
            assert result.outcome == "done", result.summary()
            assert result.created == args.creates, result.summary()
            listed = direct.describe_instances()["Reservations"]
            assert sum(len(r["Instances"]) for r in listed) == args.creates
        finally:
            proxy.shutdown()
    print(f"latency: {args.create_ms:.0f} ms per RunInstances, {args.read_ms:.0f} ms per other "
          f"request (proxy in front of moto)")
    print(f"serial boto3 loop, {args.creates} creates: {serial:.2f}s")
    print(f"one reconcile pass creating {args.creates} (concurrency {args.concurrency}): "
          f"{one_pass:.2f}s; requests through the proxy: {counts['create']} RunInstances, "
          f"{counts['other']} other")
    print(f"ratio pass / serial: {one_pass / serial:.3f} (aim <= 0.15)")


if __name__ == "__main__":
    main()
