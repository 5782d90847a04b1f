"""Metrics and events end to end on the `local` cloud: the per-host textfile a pass writes
and `serve`'s `/metrics` parse with prometheus_client's own parser and move when the fleet
does; VacMon messages arrive on a loopback UDP socket; `/` serves the status page."""

from __future__ import annotations

import io
import json
import socket
import time
from pathlib import Path
from typing import Any, Callable

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Run
from vcyclectl.config import load
from vcyclectl.feedback.app import FeedbackApp

VC = Callable[..., Run]

CONFIG = """\
state_dir: state
metrics_textfile: textfiles/vcyclectl-{{host}}.prom
{vacmon}
defaults: {{backoff_seconds: 0, fizzle_seconds: 0, min_pass_interval_seconds: 0}}
spaces:
  alpha.local:
    cloud: local
    processors_limit: {limit}
    local: {{processors: 100, boot_seconds: 0, job_seconds: {job}, no_work_probability: 0}}
    machinetypes:
      lhcb: {{target_share: 3}}
      atlas: {{target_share: 1}}
"""


def write(path: Path, limit: int, job: float = 3600, vacmon: str = "") -> Path:
    path.write_text(CONFIG.format(limit=limit, job=job, vacmon=vacmon))
    return path


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample, keyed by name and sorted labels, parsed by prometheus_client."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(all_samples: dict[Any, float], name: str, **labels: str) -> float:
    return all_samples[(name, tuple(sorted(labels.items())))]


def textfile(tmp_path: Path) -> str:
    (path,) = (tmp_path / "textfiles").glob("vcyclectl-*.prom")
    return path.read_text()


def test_textfile_parses_and_its_gauges_follow_the_fleet(vc: VC, tmp_path: Path) -> None:
    cfg = write(tmp_path / "vc.yaml", limit=4)
    assert vc("--config", cfg, "reconcile").code == 0
    first = samples(textfile(tmp_path))
    lhcb = {"space": "alpha.local", "machinetype": "lhcb"}
    assert value(first, "vcyclectl_processors_in_use", **lhcb) == 3
    assert value(first, "vcyclectl_machines", state="creating", **lhcb) + \
        value(first, "vcyclectl_machines", state="starting", **lhcb) + \
        value(first, "vcyclectl_machines", state="running", **lhcb) == 3
    assert value(first, "vcyclectl_share_target_ratio", **lhcb) == 0.75
    assert value(first, "vcyclectl_passes_total", space="alpha.local", outcome="done") == 1
    assert value(first, "vcyclectl_pass_outcome", space="alpha.local", outcome="done") == 1
    assert value(first, "vcyclectl_cloud_api_calls_total", space="alpha.local",
                 call="create") == 4
    assert value(first, "vcyclectl_machines_created_total", reason="share", **lhcb) == 3
    succeeded = value(first, "vcyclectl_space_last_success_timestamp_seconds",
                      space="alpha.local")
    assert abs(time.time() - succeeded) < 60

    write(cfg, limit=8)  # the site raises the limit: the fleet grows, the gauges follow
    assert vc("--config", cfg, "reconcile").code == 0
    second = samples(textfile(tmp_path))
    assert value(second, "vcyclectl_processors_in_use", **lhcb) == 6
    assert value(second, "vcyclectl_processors_limit", **lhcb) == 8
    assert value(second, "vcyclectl_passes_total", space="alpha.local", outcome="done") == 2
    assert value(second, "vcyclectl_machines_created_total", reason="share", **lhcb) == 6
    assert value(second, "vcyclectl_cloud_api_calls_total", space="alpha.local",
                 call="list") == 2

    assert vc("--config", cfg, "drain", "alpha.local/lhcb").code == 0
    assert vc("--config", cfg, "reconcile").code == 0
    third = samples(textfile(tmp_path))
    assert value(third, "vcyclectl_machinetype_drained", **lhcb) == 1
    assert value(third, "vcyclectl_machinetype_drained", space="alpha.local",
                 machinetype="atlas") == 0


def test_serve_metrics_and_page_need_no_token(vc: VC, tmp_path: Path) -> None:
    cfg = write(tmp_path / "vc.yaml", limit=4)
    assert vc("--config", cfg, "reconcile").code == 0
    app = FeedbackApp(load(cfg))

    def get(path: str) -> tuple[str, dict[str, str], bytes]:
        got: dict[str, Any] = {}

        def start(status: str, headers: list[tuple[str, str]]) -> None:
            got.update(status=status, headers=dict(headers))

        body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": path,
                             "wsgi.input": io.BytesIO()}, start))
        return got["status"], got["headers"], body

    status, headers, body = get("/metrics")
    assert status.startswith("200") and headers["Content-Type"].startswith("text/plain")
    metrics = samples(body.decode())
    assert value(metrics, "vcyclectl_processors_in_use", space="alpha.local",
                 machinetype="lhcb") == 3
    assert not any(name.startswith("vcyclectl_pass") for name, _ in metrics)  # host-only
    status, headers, body = get("/")
    assert status.startswith("200") and headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert 'data-machinetype="lhcb"' in page and 'data-machinetype="atlas"' in page
    assert "token" not in page.lower() and "<script" not in page
    assert get("/nothing-here")[0].startswith("404")


def test_vacmon_messages_reach_a_loopback_collector(vc: VC, tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as collector:
        collector.bind(("127.0.0.1", 0))
        collector.settimeout(5)
        port = collector.getsockname()[1]
        cfg = write(tmp_path / "vc.yaml", limit=2, job=0.5,
                    vacmon=f"vacmon_hostport: ['127.0.0.1:{port}']")
        assert vc("--config", cfg, "reconcile").code == 0
        time.sleep(1.2)  # the local cloud's jobs end; the next pass deletes and accounts
        assert vc("--config", cfg, "reconcile").code == 0
        messages = [json.loads(collector.recvfrom(65536)[0]) for _ in range(2)]
    for msg in messages:
        assert msg["message_type"] == "machine_status"
        assert msg["space"] == "alpha.local" and msg["machinetype"] in ("lhcb", "atlas")
        assert msg["machine"].startswith("vcyclectl-alpha-local-")
        assert msg["num_processors"] == 1 and msg["state"] == "Shut down"
