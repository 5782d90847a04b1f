"""GCE driver costs that matter to a cron pass: API calls per listing, and import time.

Run: .venv/bin/python benchmarks/bench_gce.py [--instances 500] [--repeat 3]

1. API calls of a no-op listing over N instances, counted at the fake Compute API
   (tests/clouds/gce_fake.py) with the real client: the aim is one call per page of
   `page_size` (500 by default) - nothing per instance, nothing per zone. A SPOT space pays
   one more (paginated) call for the preemption operations.
2. Import time of `vcyclectl.clouds.gce.options` (loaded by `config check` for every GCE
   space) against `vcyclectl.clouds.gce.driver` (which pulls in google.cloud.compute_v1), each in
   a fresh interpreter, best of `--repeat`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "clouds"))

from gce_fake import FakeCompute  # noqa: E402

from vcyclectl.clouds.contract import (TAG_MACHINETYPE, TAG_SPACE, TAG_STATE_ID,  # noqa: E402
                                   CloudContext)
from vcyclectl.clouds.gce.driver import GceCloud  # noqa: E402
from vcyclectl.clouds.gce.options import GceOptions, label_value  # noqa: E402

SPACE = "bench.example.org"
STATE_ID = "benchstate"


def listing_calls(instances: int, page_size: int, spot: bool) -> tuple[int, int, float]:
    """(API calls, machines listed, seconds) of one listing over `instances` of ours."""
    fake = FakeCompute().start()
    try:
        labels = {TAG_SPACE: label_value(SPACE), TAG_STATE_ID: STATE_ID,
                  TAG_MACHINETYPE: "lhcb", "vcyclectl-processors": "2"}
        fake.add_instances(instances, labels, prefix="ours")
        fake.add_instances(100, dict(labels, **{TAG_SPACE: "someone_else"}), prefix="other")
        options = GceOptions(project=fake.project, zones=list(fake.zones),
                             machine_types=["e2-standard-2"],
                             image="projects/cos-cloud/global/images/family/cos-stable",
                             credentials="anonymous", api_endpoint=fake.url,
                             page_size=page_size,
                             provisioning_model="SPOT" if spot else "STANDARD")
        cloud = GceCloud(CloudContext(space=SPACE, state_id=STATE_ID, state_dir=Path("."),
                                      options=options))
        fake.reset_calls()
        started = time.perf_counter()
        machines = cloud.list_machines()
        seconds = time.perf_counter() - started
        return fake.count(), len(machines), seconds
    finally:
        fake.stop()


def import_seconds(module: str, repeat: int) -> float:
    code = (f"import time; t = time.perf_counter(); import {module}; "
            "print(time.perf_counter() - t)")
    runs = [float(subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                                 capture_output=True, text=True).stdout)
            for _ in range(repeat)]
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    print(f"no-op listing over {args.instances} instances of the space "
          "(+100 of another space):")
    for page_size, spot in ((500, False), (100, False), (500, True)):
        calls, listed, seconds = listing_calls(args.instances, page_size, spot)
        pages = -(-args.instances // page_size)
        kind = "SPOT    " if spot else "STANDARD"
        print(f"  {kind} page_size={page_size:<3}  API calls: {calls}  (pages: {pages}"
              f"{', +1 preemption operations' if spot else ''})  listed: {listed}  "
              f"{seconds * 1000:.0f} ms")

    light = import_seconds("vcyclectl.clouds.gce.options", args.repeat)
    heavy = import_seconds("vcyclectl.clouds.gce.driver", args.repeat)
    print(f"import vcyclectl.clouds.gce.options: {light * 1000:7.1f} ms (best of {args.repeat})")
    print(f"import vcyclectl.clouds.gce.driver:         {heavy * 1000:7.1f} ms (best of {args.repeat})")


if __name__ == "__main__":
    main()
