"""`vcyclectl reconcile` as a real process on a `cloud: gce` space, against the fake Compute API.

The fake (tests/clouds/gce_fake.py) serves on loopback inside this test process; the
installed console script reaches it through the `gce:` block's `api_endpoint` with
anonymous credentials, with the real google-cloud-compute client. The pass fills the space
to its processors_limit, leaves a full space alone, and replaces VMs deleted behind its back
or pre-empted by GCE.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "clouds"))

from gce_fake import FakeCompute  # noqa: E402
from tests.e2e.cloudspace import space_config, vcyclectl  # noqa: E402
from vcyclectl.clouds.contract import TAG_SPACE  # noqa: E402
from vcyclectl.clouds.gce.options import label_value  # noqa: E402

SPACE = "gce.example.org"


@pytest.fixture
def fake() -> Iterator[FakeCompute]:
    server = FakeCompute(provisioning_seconds=0.05, staging_seconds=0.05).start()
    try:
        yield server
    finally:
        server.stop()


def write_config(tmp_path: Path, fake: FakeCompute, provisioning_model: str) -> Path:
    return space_config(tmp_path, SPACE, "gce", f"""
        project: {fake.project}
        zones: [{', '.join(fake.zones)}]
        machine_types: [e2-standard-2, e2-standard-4]
        image: projects/cos-cloud/global/images/family/cos-stable
        provisioning_model: {provisioning_model}
        labels: {{experiment: lhcb}}
        credentials: anonymous
        api_endpoint: {fake.url}
        operation_timeout_seconds: 20
        """, """
        min_processors: 2
        max_processors: 2
        user_data: lhcb.user_data
        """, user_data="#cloud-config\nruncmd: [echo ##user_data_machinetype## "
                       "##user_data_machine_hostname##]\n", drain_grace_seconds=None)


def live(fake: FakeCompute) -> dict[str, dict[str, object]]:
    """Our instances on the fake that still occupy capacity, by name."""
    found = {}
    for name in fake.instance_names():
        instance = fake.instance(name)
        if instance is None:
            continue
        labels = instance.get("labels", {})
        assert isinstance(labels, dict)
        if labels.get(TAG_SPACE) == label_value(SPACE) and instance["status"] in (
                "PROVISIONING", "STAGING", "RUNNING"):
            found[name] = instance
    return found


def test_fill_to_the_limit_and_replace_what_was_deleted(tmp_path: Path,
                                                        fake: FakeCompute) -> None:
    config = write_config(tmp_path, fake, "STANDARD")
    vcyclectl(config, "reconcile")
    first = live(fake)
    assert len(first) == 4  # 8 processors of e2-standard-2
    assert all(str(i["machineType"]).endswith("/e2-standard-2") for i in first.values())
    assert all(name.startswith("vcyclectl-") for name in first)
    body = fake.bodies[0]
    user_data = {i["key"]: i["value"] for i in body["metadata"]["items"]}["user-data"]
    assert "echo lhcb vcyclectl-" in user_data  # the template was filled in
    assert body["labels"]["experiment"] == "lhcb"

    vcyclectl(config, "reconcile")
    assert live(fake).keys() == first.keys()  # full: nothing more, nothing less

    victim = sorted(first)[0]
    fake.remove(victim)  # deleted behind vcyclectl's back
    vcyclectl(config, "reconcile")
    vcyclectl(config, "reconcile")
    after = live(fake)
    assert len(after) == 4 and victim not in after
    assert set(first) - {victim} <= set(after)


def test_preempted_spot_vms_are_replaced(tmp_path: Path, fake: FakeCompute) -> None:
    config = write_config(tmp_path, fake, "SPOT")
    vcyclectl(config, "reconcile")
    first = live(fake)
    assert len(first) == 4
    assert all(i["scheduling"]["provisioningModel"] == "SPOT"  # type: ignore[index]
               for i in first.values())

    victim = sorted(first)[0]
    fake.preempt(victim)  # GCE reclaims it and, with termination action DELETE, deletes it
    vcyclectl(config, "reconcile")
    vcyclectl(config, "reconcile")
    after = live(fake)
    assert len(after) == 4 and victim not in after
    listing = vcyclectl(config, "list", "--output", "json")
    assert victim not in listing.out  # forgotten, not left as a phantom machine
    # and its end is accounted as a pre-emption, not as a machine that stopped by itself
    ends = [json.loads(line) for path in (tmp_path / "state").rglob("finished.jsonl")
            for line in path.read_text().splitlines() if line.strip()]
    assert [e["preempted"] for e in ends if e["name"] == victim] == [True]
