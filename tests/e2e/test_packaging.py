"""Packaging (issue 18): a small core install with each cloud SDK and `serve` as extras, a
one-line error naming the extra when one is missing, and the declared licence shipped."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SDKS = {"openstack": "openstacksdk", "ec2": "boto3", "gce": "google-cloud-compute",
        "serve": "gunicorn"}

#: A block per cloud that passes `config check`, so only the missing SDK can fail the pass.
BLOCKS = {
    "openstack": "openstack: {auth_url: 'http://127.0.0.1:9/v3', application_credential_id: x,"
                 " application_credential_secret: y}",
    "ec2": "ec2: {region: eu-west-1, image: ami-0123abcd, instance_types: [t3.micro]}",
    "gce": "gce: {project: demo, zones: [europe-west4-a], machine_types: [e2-small]}",
}
#: The SDK module each cloud's driver imports first.
MODULES = {"openstack": "openstack", "ec2": "boto3", "gce": "google"}


def _without(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`vcyclectl ARGS` in a process where `module` cannot be imported, as after a core
    install (None in sys.modules makes `import module` raise ModuleNotFoundError)."""
    code = (f"import sys; sys.modules[{module!r}] = None; "
            "from vcyclectl.cli import main; main(sys.argv[1:])")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120, env={**os.environ, "COLUMNS": "200"})


@pytest.mark.parametrize("cloud", sorted(BLOCKS))
def test_a_cloud_whose_extra_is_missing_is_one_line_naming_the_extra(cloud: str,
                                                                      tmp_path: Path) -> None:
    (tmp_path / "vcyclectl.yaml").write_text(textwrap.dedent(f"""\
        state_dir: state
        spaces:
          far.example.org:
            cloud: {cloud}
            {BLOCKS[cloud]}
            processors_limit: 2
            machinetypes:
              worker: {{}}
          near.local:
            cloud: local
            processors_limit: 1
            machinetypes:
              worker: {{}}
        """))
    done = _without(MODULES[cloud], "--config", "vcyclectl.yaml", "reconcile", cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # that space failed; the other was still done
    lines = [line for line in done.stderr.splitlines() if "far.example.org" in line]
    assert any(f"pip install 'vcyclectl[{cloud}]'" in line for line in lines), done.stderr
    assert "Traceback" not in done.stderr
    near = [line for line in done.stderr.splitlines() if line.startswith("near.local:")]
    assert near and "FAILED" not in near[0], done.stderr  # spaces are visited in any order


def test_serve_without_its_extra_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "vcyclectl.yaml").write_text("state_dir: state\nfeedback_url: http://h:1\n"
                                             "spaces: {}\n")
    subprocess.run([sys.executable, "-m", "vcyclectl", "--config", "vcyclectl.yaml",
                    "reconcile"], cwd=tmp_path, check=True, capture_output=True)
    done = _without("gunicorn", "--config", "vcyclectl.yaml", "serve", "--listen",
                    "127.0.0.1:9", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "vcyclectl: serve needs the gunicorn package, which is not installed: "
        "pip install 'vcyclectl[serve]'"]


def test_the_core_install_has_no_cloud_sdk_and_all_has_every_extra() -> None:
    core = " ".join(PYPROJECT["project"]["dependencies"])
    extras = PYPROJECT["project"]["optional-dependencies"]
    for extra, package in SDKS.items():
        assert package not in core
        assert any(req.startswith(package + ">=") for req in extras[extra])
        assert extra in extras["all"][0]
    assert "vcyclectl[all]" in extras["test"]


def test_the_declared_licence_is_shipped() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert any("License" not in c or "Apache" in c for c in PYPROJECT["project"]["classifiers"])
    assert PYPROJECT["project"]["urls"]


def test_the_quick_start_runs_on_the_core_install(tmp_path: Path) -> None:
    """The README's quick start (`pip install .`, then reconcile on the local cloud) with
    every extra's modules unimportable, as in a fresh core install."""
    blocked = ["openstack", "keystoneauth1", "boto3", "botocore", "google", "gunicorn",
               "matplotlib"]
    code = ("import sys\n"
            f"for name in {blocked!r}: sys.modules[name] = None\n"
            "from vcyclectl.cli import main; main(sys.argv[1:])")
    quickstart = REPO / "examples" / "quickstart.yaml"
    for command in (["reconcile"], ["status"], ["list"], ["plan"], ["config", "check"]):
        done = subprocess.run([sys.executable, "-c", code, "--config", str(quickstart),
                               "--state-dir", str(tmp_path / "state"), *command],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (command, done.stderr)
        if command == ["reconcile"]:
            assert "created" in done.stderr
