"""EC2 driver figures against a real moto server on loopback.

Prints:
1. HTTP requests of a no-op listing pass over 1,000 instances (counted with botocore's
   `before-send` event, retries included), against the number of pages the listing needs;
2. wall time to create 300 instances through the driver from a ThreadPoolExecutor of 16
   (as the reconciler does), against a serial boto3 `run_instances` loop in the same run,
   and their ratio.

Run: `.venv/bin/python benchmarks/bench_ec2.py` (about a minute; loopback only).
Moto pages `describe_instances` by reservation where real EC2 pages by instance, so the
instances are launched in reservations of 20 to make page counts meaningful.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests" / "clouds")]

import boto3  # noqa: E402

from moto_server import DUMMY_AWS_ENV, REMOVED_AWS_ENV, moto_server, register_image, reset  # noqa: E402
from vcyclectl.clouds.contract import TAG_MACHINETYPE, TAG_SPACE, TAG_STATE_ID, CloudContext  # noqa: E402
from vcyclectl.clouds.ec2.driver import Ec2Cloud  # noqa: E402
from vcyclectl.clouds.ec2.options import Ec2Options  # noqa: E402
from vcyclectl.core.model import Flavor, MachineSpec  # noqa: E402

SPACE = "bench.example.org"
STATE_ID = "st-bench"
REGION = "us-east-1"
LISTED = 1000
PER_RESERVATION = 20
CREATED = 300
THREADS = 16


def driver(endpoint: str, ami: str, state_dir: Path) -> Ec2Cloud:
    return Ec2Cloud(CloudContext(space=SPACE, state_id=STATE_ID, state_dir=state_dir,
                                 options=Ec2Options(region=REGION, endpoint_url=endpoint,
                                                    image=ami, instance_types=["m5.large"])))


def count_requests(cloud: Ec2Cloud) -> dict[str, int]:
    counts: dict[str, int] = {}

    def record(event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        counts[operation] = counts.get(operation, 0) + 1
    cloud.client.meta.events.register("before-send.ec2", record)
    return counts


def listing(endpoint: str, client: Any, state_dir: Path) -> None:
    reset(endpoint)
    ami = register_image(client, "bench-worker")
    tags = [{"Key": TAG_SPACE, "Value": SPACE}, {"Key": TAG_STATE_ID, "Value": STATE_ID},
            {"Key": TAG_MACHINETYPE, "Value": "bench"}]
    for batch in range(LISTED // PER_RESERVATION):
        client.run_instances(ImageId=ami, InstanceType="m5.large", MinCount=PER_RESERVATION,
                             MaxCount=PER_RESERVATION, TagSpecifications=[
                                 {"ResourceType": "instance", "Tags": tags + [
                                     {"Key": "Name", "Value": f"vcyclectl-bench-{batch:04d}"}]}])
    reservations = LISTED // PER_RESERVATION
    for page_size in (1000, 10):
        cloud = driver(endpoint, ami, state_dir)
        cloud.page_size = page_size
        counts = count_requests(cloud)
        started = time.perf_counter()
        machines = cloud.list_machines()
        seconds = time.perf_counter() - started
        pages = math.ceil(reservations / page_size)
        print(f"listing {len(machines)} instances, page size {page_size}: "
              f"{sum(counts.values())} HTTP requests ({counts}); pages needed: {pages}; "
              f"{seconds:.2f}s")
        again = count_requests(cloud)
        cloud.list_machines()
        print(f"  second pass on the same driver: {sum(again.values())} requests ({again})")
    print("  (moto omits CpuOptions, so a fresh driver asks DescribeInstanceTypes once; real "
          "EC2 lists CpuOptions and the pass is pages only)")


def creation(endpoint: str, client: Any, state_dir: Path) -> None:
    reset(endpoint)
    ami = register_image(client, "bench-worker")
    started = time.perf_counter()
    for i in range(CREATED):
        client.run_instances(ImageId=ami, InstanceType="m5.large", MinCount=1, MaxCount=1,
                             UserData="#!/bin/sh\n", ClientToken=f"serial-{i}",
                             InstanceInitiatedShutdownBehavior="terminate",
                             TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                 {"Key": "Name", "Value": f"serial-{i}"}]}])
    serial = time.perf_counter() - started

    reset(endpoint)
    ami = register_image(client, "bench-worker")
    cloud = driver(endpoint, ami, state_dir)
    specs = [MachineSpec(name=f"vcyclectl-bench-w-{i:010d}", space=SPACE, machinetype="bench",
                         flavor=Flavor("m5.large", 2), image=None, user_data="#!/bin/sh\n",
                         state_id=STATE_ID) for i in range(CREATED)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        made = list(pool.map(cloud.create, specs))
    threaded = time.perf_counter() - started
    assert len({m.id for m in made}) == CREATED
    assert len(cloud.list_machines()) == CREATED
    print(f"create {CREATED}: serial boto3 loop {serial:.2f}s "
          f"({CREATED / serial:.0f}/s); driver with {THREADS} threads {threaded:.2f}s "
          f"({CREATED / threaded:.0f}/s); speed-up {serial / threaded:.2f}x")
    print(f"  (one moto process on {os.cpu_count()} CPU(s) serves every request and is CPU-bound, "
          "so threads cannot beat its own throughput here; they pay off where each call waits "
          "on network and server latency)")


def main() -> None:
    for name in REMOVED_AWS_ENV:
        os.environ.pop(name, None)
    os.environ.update(DUMMY_AWS_ENV)
    with moto_server() as endpoint, tempfile.TemporaryDirectory() as tmp:
        client = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)
        listing(endpoint, client, Path(tmp))
        creation(endpoint, client, Path(tmp))


if __name__ == "__main__":
    main()
