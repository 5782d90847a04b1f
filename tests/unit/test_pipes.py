"""Vacuum Pipes served over real HTTP on loopback: expansion, shares, local settings winning,
the cache in the state directory, and a broken or unreachable pipe keeping the last good copy
without stopping the space's pass."""

from __future__ import annotations

import http.server
import json
import socket
import textwrap
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from vcyclectl import config

from vcyclectl.config import pipeexpand, pipes
from vcyclectl.reconcile import pipes as pipe_refresh

from vcyclectl.vm import userdata
from vcyclectl.errors import ConfigError

USER_DATA = "#cloud-config\nhostname: ##user_data_machine_hostname##\n" \
            "# ##user_data_option_queue##\n"


@dataclass
class PipeServer:
    """A real HTTP server whose answers a test changes between requests."""

    port: int
    routes: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def server() -> Iterator[PipeServer]:
    state = PipeServer(port=0)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            state.hits.append(self.path)
            status, body = state.routes.get(self.path, (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def pipe_doc(server: PipeServer, **extra: object) -> bytes:
    doc = {
        "cache_seconds": 600,
        "machinetypes": [
            {"suffix": "prod", "target_share": 3, "user_data": server.url("/prod.user_data"),
             "max_wallclock_seconds": "172800", "min_processors": 1, "max_processors": "8",
             "heartbeat_file": "heartbeat", "heartbeat_seconds": 900,
             "user_data_option_queue": "prod", "root_image": "https://example.org/cernvm.iso"},
            {"suffix": "test", "target_share": 1, "user_data": server.url("/prod.user_data"),
             "backoff_seconds": 1200, "fizzle_seconds": 300,
             "user_data_option_queue": "test"},
        ],
    }
    doc.update(extra)
    return json.dumps(doc).encode()


def write(tmp_path: Path, text: str, name: str = "vcyclectl.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def site_config(tmp_path: Path, location: str, extra: str = "") -> Path:
    """A local-cloud site whose `lhcb` entry is a pipe; `extra` adds machinetypes."""
    text = textwrap.dedent(f"""\
        state_dir: state
        spaces:
          cloud.example.org:
            cloud: local
            processors_limit: 40
            local: {{processors: 64, boot_seconds: 0, job_seconds: 0, no_work_probability: 0}}
            machinetypes:
              lhcb:
                vacuum_pipe: {location}
                target_share: 8
                max_processors: 4
                user_data_options: {{cvmfs_proxy: "http://squid.example.org:3128"}}
        """)
    text += textwrap.indent(textwrap.dedent(extra), " " * 6)
    text += "defaults: {min_pass_interval_seconds: 0}  # passes follow each other quickly\n"
    path = tmp_path / "vcyclectl.yaml"
    path.write_text(text)
    return path


def test_pipe_expands_with_split_shares_and_local_settings_winning(
        tmp_path: Path, server: PipeServer) -> None:
    server.routes["/lhcb.pipe"] = (200, pipe_doc(server))
    server.routes["/prod.user_data"] = (200, USER_DATA.encode())
    path = site_config(tmp_path, server.url("/lhcb.pipe"), """\
        lhcb-test:
          target_share: 0.5
          fizzle_seconds: 60
        """)
    before = config.load(path)
    assert list(before.spaces["cloud.example.org"].machinetypes) == ["lhcb-test"]  # not fetched
    result = pipe_refresh.refresh(before.state_dir, server.url("/lhcb.pipe"))
    assert result.fetched and result.changed and result.error is None

    cfg = config.load(path)
    mts = cfg.spaces["cloud.example.org"].machinetypes
    assert sorted(mts) == ["lhcb-prod", "lhcb-test"]
    prod, test = mts["lhcb-prod"], mts["lhcb-test"]
    assert prod.target_share == pytest.approx(8 * 3 / 4)      # the entry's total, split 3:1
    assert test.target_share == 0.5                           # explicit entry wins
    assert prod.max_processors == 4                           # the entry's setting beats the pipe
    assert prod.max_wallclock_seconds == 172800               # "172800" from the pipe
    assert prod.heartbeat_seconds == 900 and prod.heartbeat_file == "heartbeat"
    assert test.backoff_seconds == 1200 and test.fizzle_seconds == 60
    assert prod.user_data_options == {"queue": "prod",
                                      "cvmfs_proxy": "http://squid.example.org:3128"}
    assert test.user_data_options["queue"] == "test"
    # the user_data URL was fetched with the pipe and cached: the template checks and renders
    assert userdata.check_all(cfg) == 2
    assert Path(prod.user_data or "").read_text() == USER_DATA


def test_cache_is_used_until_due_then_refetched(tmp_path: Path, server: PipeServer) -> None:
    server.routes["/p"] = (200, pipe_doc(server))
    server.routes["/prod.user_data"] = (200, USER_DATA.encode())
    state = tmp_path / "state"
    assert pipe_refresh.refresh(state, server.url("/p"), now=1000.0).fetched
    hits = len(server.hits)
    assert not pipe_refresh.refresh(state, server.url("/p"), now=1000.0 + 599).fetched
    assert len(server.hits) == hits                            # cache_seconds 600 not over
    again = pipe_refresh.refresh(state, server.url("/p"), now=1000.0 + 600)
    assert again.fetched and not again.changed


@pytest.mark.parametrize("broken", [
    (500, b"oops"),
    (200, b"{not json"),
    (200, json.dumps({"machinetypes": [{"target_share": 1}]}).encode()),  # no suffix
    (200, json.dumps({"machinetypes": [{"suffix": "x",
                                        "user_data_file_key": "../../etc/shadow"}]}).encode()),
    (200, json.dumps({"machinetypes": [{"suffix": "x", "heartbeat_file": "a/b"}]}).encode()),
    (200, json.dumps({"machinetypes": [{"suffix": "x", "user_data": "/etc/passwd"}]}).encode()),
])
def test_broken_pipe_keeps_the_last_good_copy(tmp_path: Path, server: PipeServer,
                                              broken: tuple[int, bytes]) -> None:
    server.routes["/p"] = (200, pipe_doc(server))
    server.routes["/prod.user_data"] = (200, USER_DATA.encode())
    path = site_config(tmp_path, server.url("/p"))
    state = tmp_path / "state"
    assert pipe_refresh.refresh(state, server.url("/p"), now=0.0).fetched
    server.routes["/p"] = broken
    result = pipe_refresh.refresh(state, server.url("/p"), now=10_000.0)
    assert result.error and not result.changed
    cached = pipeexpand.read_cache(state, server.url("/p"))
    assert cached is not None and cached.error == result.error and cached.fetched_at == 0.0
    assert sorted(config.load(path).spaces["cloud.example.org"].machinetypes) == \
        ["lhcb-prod", "lhcb-test"]
    # after a failure it is retried sooner than cache_seconds, but not on every pass
    assert not pipe_refresh.refresh(state, server.url("/p"), now=10_000.0 + 10).fetched


def test_refused_names_are_reported(tmp_path: Path) -> None:
    with pytest.raises(pipes.PipeError, match="refused"):
        pipes.parse(json.dumps({"machinetypes": [{"suffix": "a", "user_data_file_x": ".."}]}),
                    "p")
    parsed = pipes.parse(json.dumps({"machinetypes": [
        {"suffix": "a", "target_share": "2", "root_image": "x", "frobnicate": 1}]}), "p")
    assert parsed.machinetypes[0].share == 2.0 and parsed.cache_seconds == 3600
    assert any("root_image not carried over" in n for n in parsed.notes)
    assert any("unknown option frobnicate" in n for n in parsed.notes)


def test_only_https_or_loopback_http(tmp_path: Path) -> None:
    path = site_config(tmp_path, "http://pipes.example.org/lhcb.pipe")
    with pytest.raises(ConfigError, match="https") as info:
        config.load(path)
    assert info.value.line == 9 and info.value.key.endswith("lhcb.vacuum_pipe")
    pipes.check_url("https://pipes.example.org/x")
    pipes.check_url("http://[::1]:8000/x")


def test_typo_in_a_pipe_entry_is_a_config_error_even_before_fetching(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        state_dir: state
        spaces:
          s.example.org:
            cloud: local
            machinetypes:
              lhcb:
                vacuum_pipe: https://pipes.example.org/lhcb.pipe
                max_procesors: 4
        """)
    with pytest.raises(ConfigError, match="unknown key") as info:
        config.load(path)
    assert info.value.line == 8


def test_local_pipe_file_and_plain_file_names(tmp_path: Path) -> None:
    (tmp_path / "pipes").mkdir()
    (tmp_path / "pipes" / "vo.pipe").write_text(json.dumps({"machinetypes": [
        {"suffix": "mc", "user_data": "vo.user_data", "user_data_file_token": "token"}]}))
    (tmp_path / "pipes" / "vo.user_data").write_text("#cloud-config\n# ##user_data_option_token##\n")
    (tmp_path / "pipes" / "token").write_text("secret-token\n")
    path = site_config(tmp_path, "pipes/vo.pipe")
    cfg = config.load(path)
    mt = cfg.spaces["cloud.example.org"].machinetypes["lhcb-mc"]
    assert mt.user_data == str(tmp_path / "pipes" / "vo.user_data")
    assert mt.user_data_files == {"token": str(tmp_path / "pipes" / "token")}
    assert mt.target_share == 0.0  # the pipe gave no share
    assert userdata.check_all(cfg) == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_pipe_never_stops_the_space(tmp_path: Path, server: PipeServer) -> None:
    """A pass with a dead pipe still deletes what must go and keeps the last good machinetypes."""
    from vcyclectl.reconcile import reconcile_space
    from vcyclectl.state.store import StateDir

    server.routes["/p"] = (200, pipe_doc(server))
    server.routes["/prod.user_data"] = (200, USER_DATA.encode())
    path = site_config(tmp_path, server.url("/p"))
    cfg = config.load(path)
    state_id = StateDir(cfg.state_dir).open(create=True)
    assert cfg.spaces["cloud.example.org"].machinetypes == {}
    first = reconcile_space(cfg, cfg.spaces["cloud.example.org"], state_id)
    assert first.outcome == "done" and first.created > 0  # fetched under the lock, then used

    dead = f"http://127.0.0.1:{free_port()}/p"
    cache = pipeexpand.cache_file(cfg.state_dir, server.url("/p"))
    moved = pipeexpand.cache_file(cfg.state_dir, dead)
    cache.rename(moved)  # the same good copy, now for a URL nobody answers
    entry = json.loads(moved.read_text())
    entry.update(location=dead, checked_at=0)
    moved.write_text(json.dumps(entry))
    cfg = config.load(site_config(tmp_path, dead))
    assert sorted(cfg.spaces["cloud.example.org"].machinetypes) == ["lhcb-prod", "lhcb-test"]
    third = reconcile_space(cfg, cfg.spaces["cloud.example.org"], state_id)
    assert third.outcome == "done"
    assert third.deleted > 0  # the machines that stopped (job_seconds: 0) were deleted
    assert pipeexpand.read_cache(cfg.state_dir, dead).error  # type: ignore[union-attr]


def test_broken_local_pipe_file_uses_the_copy_kept_by_the_last_pass(tmp_path: Path) -> None:
    from vcyclectl.reconcile import reconcile_space
    from vcyclectl.state.store import StateDir

    pipe = tmp_path / "vo.pipe"
    pipe.write_text(json.dumps({"machinetypes": [{"suffix": "mc", "target_share": 1}]}))
    path = site_config(tmp_path, "vo.pipe")
    cfg = config.load(path)
    state_id = StateDir(cfg.state_dir).open(create=True)
    assert reconcile_space(cfg, cfg.spaces["cloud.example.org"], state_id).outcome == "done"
    pipe.write_text("{broken")
    again = config.load(path)
    assert list(again.spaces["cloud.example.org"].machinetypes) == ["lhcb-mc"]
    shown = config.display(again)
    assert shown["spaces"]["cloud.example.org"]["pipes"][0]["location"] == str(pipe)
