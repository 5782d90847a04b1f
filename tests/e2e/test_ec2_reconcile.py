"""`vcyclectl reconcile` as a real process on a `cloud: ec2` space, against a moto server.

Every step is the installed console script talking HTTP to moto on loopback, with dummy
credentials in its environment (never in the YAML): it fills the space to its
processors_limit, replaces instances terminated behind its back, and drains.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "clouds"))

from moto_server import (  # noqa: E402
    REMOVED_AWS_ENV, dummy_aws_credentials, register_image,
)
from tests.conftest import run_process  # noqa: E402
from tests.e2e.cloudspace import space_config, vcyclectl  # noqa: E402
from vcyclectl.clouds.contract import TAG_SPACE  # noqa: E402

SPACE = "aws.example.org"
REGION = "us-east-1"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    dummy_aws_credentials(monkeypatch)
    return {k: v for k, v in os.environ.items() if k not in REMOVED_AWS_ENV}


@pytest.fixture
def config(tmp_path: Path, endpoint: str, ec2: Any) -> Path:
    assert register_image(ec2, "cernvm4-lhcb")
    return space_config(tmp_path, SPACE, "ec2", f"""
        region: {REGION}
        endpoint_url: {endpoint}
        image: cernvm4-lhcb
        image_owners: [self]
        instance_types: [m5.large, m5.xlarge]
        tags: {{project: lhcb}}
        max_attempts: 2
        """, """
        min_processors: 2
        max_processors: 2
        user_data: lhcb.user_data
        """)


def live(ec2: Any) -> dict[str, dict[str, Any]]:
    """Our instances on moto that still occupy capacity, by Name."""
    found: dict[str, dict[str, Any]] = {}
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": f"tag:{TAG_SPACE}", "Values": [SPACE]},
                 {"Name": "instance-state-name", "Values": ["pending", "running"]}])
    for page in pages:
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                found[tags["Name"]] = instance
    return found


def test_fill_replace_and_drain(ec2: Any, config: Path) -> None:
    vcyclectl(config, "reconcile")
    first = live(ec2)
    assert len(first) == 4  # 8 processors of m5.large (2 vCPUs each)
    assert {i["InstanceType"] for i in first.values()} == {"m5.large"}
    assert all(name.startswith("vcyclectl-") for name in first)

    vcyclectl(config, "reconcile")
    assert live(ec2).keys() == first.keys()  # full: nothing more, nothing less

    victim = sorted(first)[0]
    ec2.terminate_instances(InstanceIds=[first[victim]["InstanceId"]])
    vcyclectl(config, "reconcile")
    vcyclectl(config, "reconcile")
    after = live(ec2)
    assert len(after) == 4 and victim not in after
    assert set(first) - {victim} <= set(after)

    vcyclectl(config, "drain", SPACE)
    vcyclectl(config, "reconcile")
    vcyclectl(config, "reconcile")
    assert live(ec2) == {}


def test_config_check_and_show_redact_static_keys(tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(f"""\
state_dir: {tmp_path / 'state'}
spaces:
  {SPACE}:
    cloud: ec2
    processors_limit: 8
    ec2:
      region: {REGION}
      access_key_id: AKIDKEEPTHISSECRET
      secret_access_key: do-not-print-me
      image: ami-0123456789abcdef0
      instance_types: [m5.large]
    machinetypes:
      lhcb: {{}}
""")
    vcyclectl(path, "config", "check")
    shown = vcyclectl(path, "config", "show")
    assert "do-not-print-me" not in shown.out + shown.err
    assert "AKIDKEEPTHISSECRET" not in shown.out + shown.err
    assert "m5.large" in shown.out


def test_config_check_rejects_an_image_name_without_owners(tmp_path: Path,
                                                           env: dict[str, str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"""\
state_dir: {tmp_path / 'state'}
spaces:
  {SPACE}:
    cloud: ec2
    processors_limit: 8
    ec2:
      region: {REGION}
      image: cernvm4-*
    machinetypes:
      lhcb: {{}}
""")
    result = run_process("--config", path, "config", "check")
    assert result.code == 2
    assert "bad.yaml" in result.err and "image_owners" in result.err


def test_stopped_or_terminated_by_someone_else_is_replaced_without_backoff(
        ec2: Any, config: Path) -> None:
    """Issue 15: instances stopped and terminated through the EC2 API (moto, like EC2,
    says Client.UserInitiatedShutdown) a moment after they started, far within
    fizzle_seconds, with a long backoff: they are replaced at once, no backoff, and the
    plan says why."""
    import json

    text = config.read_text()
    config.write_text(text.replace("  backoff_seconds: 0\n", "  backoff_seconds: 3600\n")
                      .replace("  fizzle_seconds: 0\n", "  fizzle_seconds: 3600\n"))
    vcyclectl(config, "reconcile")
    first = live(ec2)
    stopped, terminated = sorted(first)[:2]
    ec2.stop_instances(InstanceIds=[first[stopped]["InstanceId"]])
    ec2.terminate_instances(InstanceIds=[first[terminated]["InstanceId"]])

    [result] = json.loads(vcyclectl(config, "-o", "json", "reconcile").out)
    ended = {a["name"]: a for a in result["plan"]["actions"]
             if a["action"] in ("delete", "forget")}
    assert set(ended) == {stopped, terminated}
    assert all("someone else through the cloud's API" in a["reason"] and
               "Client.UserInitiatedShutdown" in a["reason"] for a in ended.values())
    assert result["plan"]["aborts"] == {}
    vcyclectl(config, "reconcile")
    after = live(ec2)
    assert len(after) == 4 and not {stopped, terminated} & set(after)
    status = json.loads(vcyclectl(config, "-o", "json", "status").out)
    assert status[0]["backoff_until"] is None
