"""What the example-definition tests share: a site built from the definitions as shipped,
its user_data rendered exactly as `reconcile` renders it, a real `vcyclectl serve`, and a
"boot" that does what cloud-init does with write_files into a sandbox folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
DEFINITIONS = ("vmcondor", "vmcondor-manager", "dirac", "glideinwms", "slurm-wireguard", "squid")
SPACE = "site.example.org"
INSTALL_HINT = "run `sh tests/examples/install.sh` (Debian 12 packages) first"


def fragment(definition: str) -> tuple[str, dict[str, Any]]:
    """The (name, settings) of examples/machinetypes/NAME/machinetype.yaml."""
    data = yaml.safe_load((EXAMPLES / "machinetypes" / definition / "machinetype.yaml")
                          .read_text())
    assert isinstance(data, dict) and len(data) == 1
    ((name, settings),) = data.items()
    return name, settings


def make_site(tmp: Path, *, feedback_url: str, overrides: dict[str, dict[str, Any]] | None
              = None, definitions: tuple[str, ...] = DEFINITIONS) -> Path:
    """A copy of examples/ with throwaway secrets and a local-cloud config using every
    definition's fragment as shipped (only flavors and images adapted to the local cloud)."""
    site = tmp / "site"
    shutil.copytree(EXAMPLES, site, ignore=shutil.ignore_patterns("secrets"))
    done = subprocess.run(["sh", str(site / "machinetypes" / "make-example-secrets.sh"),
                           str(site / "secrets")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    machinetypes: dict[str, Any] = {}
    for definition in definitions:
        name, settings = fragment(definition)
        settings = dict(settings)
        settings.pop("image", None)
        settings["flavors"] = ["vm"]
        settings["min_processors"] = 2
        settings["max_processors"] = 2
        settings.pop("processors_limit", None)
        for key, value in ((overrides or {}).get(definition) or {}).items():
            if isinstance(value, dict):
                settings[key] = {**settings.get(key, {}), **value}
            else:
                settings[key] = value
        machinetypes[name] = settings
    config = {
        "state_dir": str(tmp / "state"),
        "feedback_url": feedback_url,
        "defaults": {"min_pass_interval_seconds": 0},  # passes follow each other quickly
        "spaces": {SPACE: {
            "cloud": "local",
            "processors_limit": 2 * len(definitions),
            "local": {"processors": 64, "flavors": [{"name": "vm", "processors": 2}],
                      "boot_seconds": 0, "job_seconds": 86400, "no_work_probability": 0,
                      "heartbeat": False},
            "machinetypes": machinetypes,
        }},
    }
    path = site / "site.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def vcyclectl(config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vcyclectl", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=timeout)


def render(config_path: Path, machinetype: str, machine: str) -> str:
    """The user_data `machine` boots with: the reconciler's own template code and token."""
    from vcyclectl import config as config_module
    from vcyclectl.vm import tokens
    from vcyclectl.vm import userdata

    cfg = config_module.load(config_path)
    space = cfg.spaces[SPACE]
    mt = space.machinetypes[machinetype]
    template = userdata.load_template(space, mt)
    assert template is not None
    return userdata.render(template, config=cfg, space=space, mt=mt, machine=machine,
                           token=tokens.machine_token(cfg.state_dir, machine))


@dataclass
class Booted:
    """A rendered user_data's files, written under `root` as cloud-init would write them."""

    root: Path
    cloud_config: dict[str, Any]

    def path(self, vm_path: str) -> Path:
        return self.root / vm_path.lstrip("/")


def boot_files(user_data: str, root: Path) -> Booted:
    """Do what cloud-init's write_files does (paths under `root`, same permissions)."""
    data = yaml.safe_load(user_data)
    for entry in data["write_files"]:
        target = root / entry["path"].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(entry["content"])
        target.chmod(int(str(entry.get("permissions", "0644")), 8))
    return Booted(root, data)


def shell_parts(user_data: str) -> dict[str, str]:
    """Every shell script the user_data writes (by its shebang), by VM path."""
    data = yaml.safe_load(user_data)
    return {e["path"]: e["content"] for e in data["write_files"]
            if str(e.get("content", "")).startswith(("#!/bin/sh", "#!/bin/bash"))}


def machine_outputs(state_dir: Path, machine: str) -> Path:
    return state_dir / "spaces" / SPACE / "joboutputs" / machine


def wait_for(predicate: Any, timeout: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def list_machines(config: Path) -> list[dict[str, Any]]:
    done = vcyclectl(config, "list", "-o", "json")
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows
