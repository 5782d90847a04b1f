"""Issue 22's drain leftovers: `serve` reads only the drain marks a request needs, and
`undrain` removes the mark an ended machine left behind instead of answering "already
ended" for ever."""

from __future__ import annotations

import builtins
import io
import json
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.conftest import Run
from vcyclectl.config import load
from vcyclectl.feedback.app import FeedbackApp
from vcyclectl.state.store import StateDir
from vcyclectl.vm.tokens import machine_token

VC = Callable[..., Run]
SPACE = "alpha.local"
CONFIG = f"""\
state_dir: state
defaults:
  min_pass_interval_seconds: 0
  drain_grace_seconds: 100
  max_wallclock_seconds: 7200
spaces:
  {SPACE}:
    cloud: local
    processors_limit: 2
    local: {{processors: 100, boot_seconds: 0, job_seconds: JOB, no_work_probability: 0}}
    machinetypes:
      lhcb: {{target_share: 1}}
"""


def mjf_get(app: FeedbackApp, state: Path, name: str, section: str, key: str) -> tuple[str, str]:
    got: dict[str, Any] = {}

    def start(status: str, headers: list[tuple[str, str]]) -> None:
        got["status"] = status

    body = b"".join(app({"REQUEST_METHOD": "GET",
                         "PATH_INFO": f"/machines/{SPACE}/{name}/{section}/{key}",
                         "HTTP_AUTHORIZATION": f"Bearer {machine_token(state, name)}",
                         "wsgi.input": io.BytesIO()}, start))
    return got["status"], body.decode().strip()


def test_serve_reads_only_the_marks_that_apply_to_the_machine(
        vc: VC, write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_config(CONFIG.replace("JOB", "100000"))
    state = cfg.parent / "state"
    assert vc("--config", cfg, "reconcile").code == 0
    name, other = vc("--config", cfg, "list", "-o", "names").out.split()
    store = StateDir(state).space(SPACE)
    mark = {"target": "x", "since": time.time() - 10, "reason": "", "by": "t"}
    for i in range(300):  # a space with many drained (or long gone) machines
        (store.drains_dir / f"machine-vcyclectl-gone-{i:04d}.json").write_text(json.dumps(mark))
    (store.drains_dir / "machine-vcyclectl-broken.json").write_text("{not json")
    (store.drains_dir / f"machine-{name}.json").write_text(json.dumps(mark))
    app = FeedbackApp(load(cfg))
    opened: list[str] = []
    real_open = builtins.open

    def counting_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(store.drains_dir) in str(file):
            opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    status, drained_at = mjf_get(app, state, name, "machinefeatures", "shutdowntime")
    assert status.startswith("200")
    assert int(drained_at) == int(mark["since"] + 100)  # the machine's own mark applies
    assert len(opened) <= 3, f"one request read {len(opened)} drain marks"
    opened.clear()
    status, undrained = mjf_get(app, state, other, "machinefeatures", "shutdowntime")
    assert status.startswith("200") and int(undrained) > int(drained_at) + 3600
    assert len(opened) <= 3
    # a space-wide mark still reaches every machine
    (store.drains_dir / "space.json").write_text(json.dumps(mark))
    assert mjf_get(app, state, other, "machinefeatures", "shutdowntime")[1] == drained_at


def test_undrain_removes_the_mark_an_ended_machine_left(
        vc: VC, write_config: Callable[..., Path]) -> None:
    cfg = write_config(CONFIG.replace("JOB", "0.3"))
    state = cfg.parent / "state"
    assert vc("--config", cfg, "reconcile").code == 0
    name, other = vc("--config", cfg, "list", "-o", "names").out.split()
    assert vc("--config", cfg, "drain", name).code == 0
    store = StateDir(state).space(SPACE)
    mark_file = store.drains_dir / f"machine-{name}.json"
    left = mark_file.read_bytes()
    time.sleep(0.5)  # both machines end
    for _ in range(3):  # deleted, then forgotten (and the mark with it)
        assert vc("--config", cfg, "reconcile").code == 0
    assert name not in store.records() and not mark_file.exists()
    mark_file.write_bytes(left)  # what an older vcyclectl left behind
    run = vc("--config", cfg, "undrain", name)
    assert run.code == 0, run.err
    assert "already ended" in run.err and "leftover drain mark" in run.err
    assert not mark_file.exists()
    # nothing left to remove: as before, the machine has ended (exit 4, not found)
    run = vc("--config", cfg, "undrain", name)
    assert run.code == 4 and "already ended" in run.err
    assert vc("--config", cfg, "undrain", other).code == 4
