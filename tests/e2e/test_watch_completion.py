"""Issue 18, habits: `--watch` ends cleanly on Ctrl-C (a real process sent SIGINT), and shell
completion driven the way bash, zsh and fish drive it, without importing a cloud SDK."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import Run, vcyclectl_command

CONFIG = """\
state_dir: state
spaces:
  alpha.local:
    cloud: local
    processors_limit: 3
    local: {processors: 100, boot_seconds: 30, job_seconds: 300, no_work_probability: 0}
    machinetypes:
      lhcb: {target_share: 3}
      atlas: {target_share: 1}
  beta.local:
    cloud: local
    processors_limit: 1
    local: {processors: 100, boot_seconds: 30, job_seconds: 300, no_work_probability: 0}
    machinetypes:
      dune: {}
"""

VC = Callable[..., Run]


@pytest.fixture
def cfg(write_config: Callable[..., Path], vc: VC) -> Path:
    path = write_config(CONFIG)
    assert vc("--config", path, "reconcile").code == 0
    return path


def interruptible() -> None:
    """In the child before exec: SIGINT as a terminal's Ctrl-C finds it. A suite started from
    a background job inherits SIGINT ignored (POSIX: asynchronous commands of a shell without
    job control), and Python keeps an ignored SIGINT ignored, so the test would wait forever
    (found: these tests timed out only when the suite ran detached)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("command", [["status", "--watch", "0.2"], ["list", "--watch"],
                                     ["list", "-w", "0.2", "-s", "alpha.local"]])
def test_watch_prints_one_json_document_per_refresh_and_ends_cleanly_on_sigint(
        cfg: Path, command: list[str]) -> None:
    proc = subprocess.Popen([*vcyclectl_command(), "--config", str(cfg), *command, "-o", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=interruptible)
    assert proc.stdout is not None
    documents = [json.loads(proc.stdout.readline()) for _ in range(2 if "0.2" in command
                                                                   else 1)]
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "interrupted" not in err
    for line in rest.splitlines():  # a refresh that finished before the signal: whole
        documents.append(json.loads(line))
    for document in documents:
        assert isinstance(document, list) and document
        if command[0] == "status":
            assert {r["space"] for r in document} == {"alpha.local", "beta.local"}
        else:
            assert all(r["name"].startswith("vcyclectl-") for r in document)


def test_watch_redraws_in_place_on_a_terminal(cfg: Path) -> None:
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([*vcyclectl_command(), "--config", str(cfg), "status", "-w", "0.2"],
                            stdout=slave, stderr=subprocess.PIPE,
                            env={**os.environ, "COLUMNS": "200"}, preexec_fn=interruptible)
    os.close(slave)
    screen = b""
    while screen.count(b"\x1b[H\x1b[2J") < 2:
        screen += os.read(master, 65536)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    os.close(master)
    assert proc.returncode == 0 and b"Traceback" not in err
    frames = screen.split(b"\x1b[H\x1b[2J")[1:]
    assert frames[0].startswith(b"SPACE ") and b"alpha.local" in frames[0]


def test_watch_does_not_go_with_the_html_page(vc: VC, cfg: Path, tmp_path: Path) -> None:
    run = vc("--config", cfg, "status", "-o", "html", "--out", tmp_path / "p.html", "--watch")
    assert run.code == 2 and "--watch does not go with -o html" in run.err


def test_watch_takes_an_optional_number() -> None:
    from vcyclectl.commands.watch import optional_value

    assert optional_value(["status", "--watch"]) == ["status", "--watch", "2"]
    assert optional_value(["status", "--watch", "5"]) == ["status", "--watch", "5"]
    assert optional_value(["list", "-w", "-o", "json"]) == ["list", "-w", "2", "-o", "json"]
    assert optional_value(["reconcile", "--watch"]) == ["reconcile", "--watch"]
    assert optional_value(["list", "--", "--watch"]) == ["list", "--", "--watch"]


SDKS = ("boto3", "botocore", "openstack", "keystoneauth1", "google.cloud", "googleapiclient")


def complete(cfg: Path, shell: str, words: str, tmp_path: Path) -> list[str]:
    """Ask for completions as the shell's completion script does, in a fresh interpreter
    that reports afterwards which cloud SDK modules got imported."""
    env = {**os.environ, "_VCYCLECTL_COMPLETE": f"complete_{shell}",
           "VCYCLECTL_CONFIG": str(cfg)}
    if shell == "bash":
        env.update(COMP_WORDS=words, COMP_CWORD=str(len(words.split(" ")) - 1))
    else:
        env.update(_TYPER_COMPLETE_ARGS=words)
        if shell == "fish":
            env.update(_TYPER_COMPLETE_FISH_ACTION="get-args")
    report = tmp_path / "modules.json"
    probe = ("import atexit, json, sys\n"
             f"atexit.register(lambda: open({str(report)!r}, 'w').write(json.dumps("
             f"[m for m in sys.modules if m.startswith({SDKS!r})])))\n"
             "from vcyclectl.cli import main\nmain()\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(report.read_text()) == []  # no cloud SDK was imported
    return proc.stdout.splitlines()


def test_bash_completes_commands_options_and_names_from_the_state_directory(
        cfg: Path, tmp_path: Path, vc: VC) -> None:
    names = vc("--config", cfg, "list", "-o", "names").out.split()
    assert complete(cfg, "bash", "vcyclectl li", tmp_path) == ["list"]
    assert "--no-headers" in complete(cfg, "bash", "vcyclectl list --no", tmp_path)
    assert complete(cfg, "bash", "vcyclectl status ", tmp_path) == ["alpha.local",
                                                                    "beta.local"]
    assert complete(cfg, "bash", "vcyclectl list -s alpha.local -m ", tmp_path) == \
        ["atlas", "lhcb"]
    assert complete(cfg, "bash", "vcyclectl list --state ru", tmp_path) == ["running"]
    assert complete(cfg, "bash", "vcyclectl inspect vcyclectl-", tmp_path) == sorted(names)
    assert complete(cfg, "bash", "vcyclectl drain alpha.local/", tmp_path) == \
        ["alpha.local/atlas", "alpha.local/lhcb"]
    beta = [n for n in names if n.startswith("vcyclectl-beta")]
    assert complete(cfg, "bash", "vcyclectl undrain vcyclectl-beta", tmp_path) == beta
    assert complete(cfg, "bash", "vcyclectl -o ", tmp_path) == \
        ["table", "wide", "json", "yaml", "tsv", "names"]


def test_zsh_and_fish_complete_too(cfg: Path, tmp_path: Path) -> None:
    zsh = "\n".join(complete(cfg, "zsh", "vcyclectl status ", tmp_path))
    assert "alpha.local" in zsh and "beta.local" in zsh
    fish = complete(cfg, "fish", "vcyclectl list --sta", tmp_path)
    assert any(line.startswith("--state") for line in fish)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_and_install_completion(shell: str, tmp_path: Path) -> None:
    # typer detects the user's shell from the process tree (shellingham), which a test run
    # from cron, CI or a detached job may not have: its own test switch makes --show- and
    # --install-completion take the shell as their value instead (found: the suite failed
    # when started from a background job whose shell had exited).
    env = {**os.environ, "HOME": str(tmp_path), "SHELL": f"/bin/{shell}",
           "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    shown = subprocess.run([*vcyclectl_command(), "--show-completion", shell],
                           capture_output=True, text=True, env=env, timeout=60)
    assert shown.returncode == 0 and "_VCYCLECTL_COMPLETE" in shown.stdout
    installed = subprocess.run([*vcyclectl_command(), "--install-completion", shell],
                               capture_output=True, text=True, env=env, timeout=60)
    assert installed.returncode == 0, installed.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file() and
               "_VCYCLECTL_COMPLETE" in p.read_text(errors="replace")]
    assert written, list(tmp_path.rglob("*"))


def test_long_commands_show_progress_on_a_terminal_only(cfg: Path, tmp_path: Path) -> None:
    import pty

    command = [*vcyclectl_command(), "--config", str(cfg), "simulate", "--from", "2026-01-01",
               "--to", "2026-01-03", "--no-plot", "--out", str(tmp_path / "sim"), "-o", "json"]
    master, slave = pty.openpty()
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=slave, timeout=120)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.returncode == 0 and json.loads(proc.stdout)["simulated_days"]
    assert b"simulating 3 days" in seen
    piped = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert "simulating" not in piped.stderr and "\x1b" not in piped.stderr
