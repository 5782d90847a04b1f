"""Every example community definition, rendered as `reconcile` renders it, is valid for the
real `cloud-init schema` and its shell is clean for the real `shellcheck`; every example
config passes `vcyclectl config check`; and the agents report through a real
`vcyclectl serve` (heartbeat, then the right shutdown_message).

cloud-init and shellcheck are required, not optional: these tests fail, never skip, when
they are missing (tests/examples/install.sh installs them).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from tests.examples.harness import (DEFINITIONS, EXAMPLES, INSTALL_HINT, boot_files, fragment,
                                    list_machines, machine_outputs, make_site, render,
                                    shell_parts, vcyclectl, wait_for)


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is required by tests/examples: {INSTALL_HINT}"
    return found


def test_required_tools_are_installed() -> None:
    for name in ("cloud-init", "shellcheck", "openssl", "curl"):
        tool(name)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_site(tmp_path_factory.mktemp("defs"), feedback_url="https://vc.example.org")


@pytest.mark.parametrize("definition", DEFINITIONS)
def test_definition_renders_to_valid_cloud_config(site: Path, definition: str,
                                                  tmp_path: Path) -> None:
    name, _ = fragment(definition)
    machine = f"vcyclectl-site-example-org-{name}-0123456789"
    user_data = render(site, name, machine)
    assert user_data.startswith("#cloud-config\n")
    assert not re.search(r"##user_data_[A-Za-z0-9_]+##", user_data), "placeholder left unfilled"
    data = yaml.safe_load(user_data)
    assert data["hostname"] == machine
    files = {e["path"]: e for e in data["write_files"]}
    auth = files["/etc/vcyclectl-vm/curl-auth"]
    assert auth["permissions"] == "0600" and "Authorization: Bearer " in auth["content"]
    env = files["/etc/vcyclectl-vm/feedback.env"]["content"]
    assert f"/machines/site.example.org/{machine}/joboutputs" in env
    rendered = tmp_path / "user_data"
    rendered.write_text(user_data)
    done = subprocess.run([tool("cloud-init"), "schema", "--config-file", str(rendered)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Valid cloud-config" in done.stdout


@pytest.mark.parametrize("definition", DEFINITIONS)
def test_definition_shell_passes_shellcheck(site: Path, definition: str,
                                            tmp_path: Path) -> None:
    name, _ = fragment(definition)
    parts = shell_parts(render(site, name, f"vcyclectl-site-example-org-{name}-abcdefghij"))
    assert {"/usr/local/sbin/vcyclectl-agent", "/usr/local/lib/vcyclectl-vm/feedback.sh"} \
        <= set(parts)
    for number, (vm_path, text) in enumerate(sorted(parts.items())):
        script = tmp_path / f"part{number}.sh"
        script.write_text(text)
        shell = "bash" if text.startswith("#!/bin/bash") else "sh"
        done = subprocess.run([tool("shellcheck"), "-s", shell, "-S", "style", str(script)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{definition} {vm_path}:\n{done.stdout}{done.stderr}"
    for helper in (EXAMPLES / "machinetypes").glob("*.sh"):
        done = subprocess.run([tool("shellcheck"), "-s", "sh", str(helper)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("definition", DEFINITIONS)
def test_definition_has_its_documented_parts(definition: str) -> None:
    folder = EXAMPLES / "machinetypes" / definition
    readme = (folder / "README.md").read_text()
    for words in ("What the VM does", "What the site provides", "Options and files",
                  "How it reports", "300", "shutdowntime", "heartbeat"):
        assert words in readme, f"{definition}/README.md says nothing about {words!r}"
    template = (folder / "user_data").read_text()
    _, settings = fragment(definition)
    used = set(re.findall(r"##user_data_option_([a-z0-9_]+)##", template))
    given = set(settings.get("user_data_options", {})) | set(settings.get("user_data_files",
                                                                          {}))
    if "x509_proxy" in used:
        used = (used - {"x509_proxy"}) | {"x509_cert", "x509_key"}
    assert used == given, f"template uses {sorted(used)}, fragment gives {sorted(given)}"
    for option in used:
        assert f"`{option}`" in readme, f"{definition}/README.md does not explain {option}"


def test_secrets_only_reach_vms_through_user_data_files() -> None:
    secret_words = re.compile(r"(token|key|password|secret|credential|x509)", re.I)
    for definition in DEFINITIONS:
        _, settings = fragment(definition)
        for option in settings.get("user_data_options", {}):
            assert not secret_words.search(option), \
                f"{definition}: secret-looking option {option} is inline in the YAML"


def test_communities_config_matches_the_fragments() -> None:
    """examples/communities.yaml uses each definition exactly as its fragment ships."""
    config = yaml.safe_load((EXAMPLES / "communities.yaml").read_text())
    mts = config["spaces"]["cloud.example.org"]["machinetypes"]
    for definition in DEFINITIONS:
        name, settings = fragment(definition)
        shipped = {k: v for k, v in settings.items() if k not in ("image", "flavors")}
        used = {k: v for k, v in mts[name].items() if k not in ("image", "flavors")}
        assert used == shipped, definition


@pytest.mark.parametrize("example", ["quickstart.yaml", "communities.yaml"])
def test_example_configs_pass_config_check(example: str, tmp_path: Path) -> None:
    copy = tmp_path / "examples"
    shutil.copytree(EXAMPLES, copy, ignore=shutil.ignore_patterns("secrets"))
    subprocess.run(["sh", str(copy / "machinetypes" / "make-example-secrets.sh")],
                   check=True, capture_output=True, timeout=120)
    done = vcyclectl(copy / example, "config", "check")
    assert done.returncode == 0, done.stderr
    shown = vcyclectl(copy / example, "config", "show")
    assert shown.returncode == 0
    for secret in (copy / "secrets").glob("*") if (copy / "secrets").exists() else ():
        text = secret.read_text().strip()
        for line in text.splitlines():
            if len(line) > 16 and "-----" not in line:
                assert line not in shown.stdout, f"{secret.name} leaked into config show"


# -- the agents' reporting path, for real ------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served_site(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    port = free_port()
    config = make_site(tmp_path, feedback_url=f"http://127.0.0.1:{port}",
                       definitions=("vmcondor", "vmcondor-manager", "squid"))
    created = vcyclectl(config, "reconcile")
    assert created.returncode == 0, created.stderr
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "vcyclectl", "--config", str(config), "serve",
                             "--listen", f"127.0.0.1:{port}", "--workers", "1"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _healthy(port), 20, "vcyclectl serve")
        yield config, port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _healthy(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@pytest.mark.parametrize("definition,missing", [("vmcondor", "HTCondor"),
                                                ("vmcondor-manager", "HTCondor"),
                                                ("squid", "squid")])
def test_agent_heartbeats_then_reports_a_site_problem(served_site: tuple[Path, int],
                                                      tmp_path: Path, definition: str,
                                                      missing: str) -> None:
    """On a VM without its payload the agent still heartbeats, then says 500 and powers off."""
    config, _ = served_site
    name, _ = fragment(definition)
    machine = next(m["name"] for m in list_machines(config) if m["machinetype"] == name)
    booted = boot_files(render(config, name, machine), tmp_path / "vm")
    env = {
        "PATH": "/usr/bin:/bin",                      # no condor_master, no squid
        "VM_ETC": str(booted.path("/etc/vcyclectl-vm")),
        "VM_LIB": str(booted.path("/usr/local/lib/vcyclectl-vm")),
        "VM_POWEROFF": f"touch {tmp_path / 'powered-off'}",
        "HOME": str(tmp_path),
    }
    if shutil.which("squid", path=env["PATH"]) or shutil.which("condor_master",
                                                               path=env["PATH"]):
        pytest.fail(f"{missing} is installed on this host; this test needs it absent")
    done = subprocess.run(["sh", str(booted.path("/usr/local/sbin/vcyclectl-agent"))],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    outputs = machine_outputs(config.parent.parent / "state", machine)
    message = (outputs / "shutdown_message").read_text()
    assert message.startswith("500 Problem detected with environment/VM provided by the site")
    assert missing in message
    assert int((outputs / "heartbeat").read_text()) == pytest.approx(time.time(), abs=120)
    assert (tmp_path / "powered-off").exists()
    inspected = vcyclectl(config, "inspect", machine, "-o", "json")
    assert "500 Problem detected" in inspected.stdout
    assert os.stat(outputs / "shutdown_message").st_mode & 0o077 == 0
