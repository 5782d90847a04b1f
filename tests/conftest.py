"""Shared fixtures: config files in a temporary folder, and the CLI run in-process or as a
real `vcyclectl` process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parent.parent

# The moto fixtures (`endpoint`, `ec2`) every EC2 test module shares; they cost nothing
# until a test asks for them (tests/clouds/moto_fixtures.py).
sys.path.insert(0, str(REPO / "tests" / "clouds"))
pytest_plugins = ["moto_fixtures"]

# Hypothesis profiles. `ci` (chosen when CI=true, as .ci/run has it) is derandomized with no
# example database: every fresh clone draws the same examples, so CI gives the same answer
# each time. `dev` (the default elsewhere) explores afresh on every run and remembers what
# failed. `explore` draws ten times as many: `pytest --hypothesis-profile=explore`, or
# `pytest --hypothesis-seed=N` to replay one exploration.
settings.register_profile("ci", derandomize=True, database=None, deadline=None,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes")
                      else "dev")


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a YAML config (dedented) into tmp_path and return its path."""

    def write(text: str, name: str = "vcyclectl.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def vc(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run the CLI in-process (fast): vc("--config", path, "list") -> Run."""
    from vcyclectl.cli import main

    def run(*args: str | Path) -> Run:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def vcyclectl_command() -> list[str]:
    """The installed console script next to this interpreter, else `python -m vcyclectl`."""
    script = Path(sys.executable).parent / "vcyclectl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "vcyclectl"]


def run_process(*args: str | Path, timeout: float = 120, env: dict[str, str] | None = None) -> Run:
    """Run the real `vcyclectl` command as a separate process."""
    proc = subprocess.run([*vcyclectl_command(), *(str(a) for a in args)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})
    return Run(proc.returncode, proc.stdout, proc.stderr)


class FakeClock:
    """A monotonic clock that moves only when something sleeps on it (thread-safe)."""

    def __init__(self, start: float = 1000.0) -> None:
        import threading

        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += max(0.0, seconds)


@pytest.fixture(autouse=True)
def ratelimit_clock() -> Iterator[FakeClock]:
    """Cloud API rate-limit buckets on a fake clock, fresh for each test: an in-process test
    never sleeps for a token (vcyclectl.clouds.ratelimit), and still goes through them."""
    from vcyclectl.clouds.ratelimit import REGISTRY

    clock = FakeClock()
    REGISTRY.use_clock(clock, clock.sleep)
    yield clock
    REGISTRY.reset()
