"""The status page in a real browser (Debian's Chromium, headless): rendered from a fleet
with a week of history, screenshotted, and checked for what a person would see: the chart
is drawn in the series' colours, the tables name every machinetype, the LHCb-all-end-with-
500 call-out is there, and the browser logged no console error (no missing asset, no
script error). `VCYCLECTL_SCREENSHOT=PATH` keeps the screenshot (docs/status-page.png)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import Run
from vcyclectl.monitoring.chart import PALETTE

VC = Callable[..., Run]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

CONFIG = """\
state_dir: state
defaults: {backoff_seconds: 0, fizzle_seconds: 0, min_pass_interval_seconds: 0}
spaces:
  cumulus.example.org:
    cloud: local
    processors_limit: 24
    local: {processors: 100, boot_seconds: 0, job_seconds: 86400, no_work_probability: 0}
    machinetypes:
      lhcb: {target_share: 2, processors_limit: 12}
      atlas: {target_share: 1}
      dune: {target_share: 1, processors_limit: 4}
"""
MESSAGES = {"lhcb": "500 Problem detected with environment/VM provided by the site",
            "atlas": "200 Intended work completed ok", "dune": "300 No more work available"}


def add_history(space_dir: Path, now: float) -> None:
    """A week of creations and ends, as passes would have journalled them."""
    events, finished = [], []
    for i in range(7 * 24):
        t = now - 7 * 86400 + i * 3600
        for mt, per_hour, hours in (("lhcb", 2, 5), ("atlas", 1, 7), ("dune", 1, 9)):
            if mt == "dune" and i % 3:
                continue
            for k in range(per_hour):
                name = f"vcyclectl-cumulus-example-org-{mt}-h{i:04d}{k}"
                ended = t + 3600 * (hours + (i + k) % 3 - 1)
                if ended < now - 600:  # the machines running now are the reconciled ones
                    events.append({"t": t, "event": "create", "machine": name,
                                   "machinetype": mt})
                    finished.append({"name": name, "space": "cumulus.example.org",
                                     "machinetype": mt, "processors": 1, "created_at": t,
                                     "started_at": t + 60, "stopped_at": ended,
                                     "finished_at": ended, "message": MESSAGES[mt]})
    with open(space_dir / "events.jsonl", "a") as f:
        f.writelines(json.dumps(e) + "\n" for e in events)
    with open(space_dir / "finished.jsonl", "a") as f:
        f.writelines(json.dumps(e) + "\n" for e in finished)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (tests/setup.sh)")
def test_status_page_in_a_real_browser(vc: VC, tmp_path: Path) -> None:
    from PIL import Image

    cfg = tmp_path / "vc.yaml"
    cfg.write_text(CONFIG)
    assert vc("--config", cfg, "reconcile").code == 0
    add_history(tmp_path / "state" / "spaces" / "cumulus.example.org", time.time())
    page = tmp_path / "status.html"
    run = vc("--config", cfg, "status", "--output", "html", "--out", page)
    assert run.code == 0, run.err
    shot = tmp_path / "status.png"
    assert CHROMIUM is not None
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--no-first-run", "--disable-extensions", f"--user-data-dir={tmp_path / 'prof'}",
            "--enable-logging=stderr", "--v=0", "--window-size=1180,1500"]
    proc = subprocess.run([*base, f"--screenshot={shot}", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    dom = subprocess.run([*base, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120)
    console = [line for line in (proc.stderr + dom.stderr).splitlines()
               if "CONSOLE" in line or "Uncaught" in line or "Failed to load resource" in line]
    assert console == []

    # The tables, as the browser parsed them: one row per machinetype, with its numbers.
    for mt in ("lhcb", "atlas", "dune"):
        assert f'<tr data-machinetype="{mt}"><td><b>{mt}</b></td>' in dom.stdout
    assert "ended with shutdown code <b>500</b>" in dom.stdout  # lhcb all end with 500
    assert dom.stdout.count("<svg") == 2  # 24 hours and 7 days

    # The chart is drawn: each series' colour covers a visible run of pixels.
    image = Image.open(shot).convert("RGB")
    counts: dict[tuple[int, int, int], int] = {}
    for pixel in image.get_flattened_data():
        counts[pixel] = counts.get(pixel, 0) + 1
    for colour in PALETTE[:3]:
        rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
        assert counts.get(rgb, 0) > 150, f"series colour {colour} hardly drawn"
    keep = os.environ.get("VCYCLECTL_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
