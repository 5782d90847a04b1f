"""Speed is a feature: read-only commands import no cloud SDK, no rich and no portalocker,
and a local-only pass never imports a driver it does not use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

PROBE = """
import json, sys
from vcyclectl.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""

HEAVY = ("boto3", "botocore", "google", "openstack", "keystoneauth1", "grpc", "rich",
         "portalocker", "gunicorn", "pydantic", "cryptography", "tenacity")

CONFIG = """\
state_dir: state
defaults: {min_pass_interval_seconds: 0}
spaces:
  local.one:
    cloud: local
    processors_limit: 4
    machinetypes: {a: {}}
  cloudy.gce:
    cloud: gce
    processors_limit: 4
    gce: {project: p, zones: [europe-west2-a], machine_types: [e2-standard-2], image: img}
    machinetypes: {b: {}}
"""


def modules_after(*args: str | Path) -> set[str]:
    run = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], capture_output=True,
                         text=True, timeout=120)
    last = run.stderr.strip().splitlines()[-1]
    return set(json.loads(last))


def heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in HEAVY}


def test_list_json_imports_nothing_heavy(write_config: Callable[..., Path]) -> None:
    cfg = write_config(CONFIG)
    subprocess.run([sys.executable, "-m", "vcyclectl", "--config", str(cfg), "reconcile",
                    "local.one"], check=True, capture_output=True, timeout=120)
    assert not heavy(modules_after("--config", cfg, "list", "-o", "json"))


def test_local_pass_does_not_import_other_drivers(write_config: Callable[..., Path]) -> None:
    cfg = write_config(CONFIG)
    modules = modules_after("--config", cfg, "reconcile", "local.one")
    assert "vcyclectl.clouds.local.driver" in modules
    assert not {m for m in modules if m.startswith(("vcyclectl.clouds.gce.driver",
                                                     "vcyclectl.clouds.ec2.driver",
                                                     "vcyclectl.clouds.openstack.driver"))} - {
        "vcyclectl.clouds.gce.options"}
    assert {m.split(".")[0] for m in heavy(modules)} <= {"portalocker", "tenacity"}
