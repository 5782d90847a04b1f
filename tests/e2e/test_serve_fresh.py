"""`serve` on a new host: it creates the state directory as `reconcile` does, so systemd may
start it first; a missing parent folder (a wrong path, a share not mounted yet) is still
refused, and read-only commands still refuse an uninitialised state directory (issue 18)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.test_serve import Serve, cli, free_port, names, serve_factory, write_config

__all__ = ["serve_factory"]


def test_serve_starts_on_a_fresh_state_directory_before_any_reconcile(
        tmp_path: Path, serve_factory: Any) -> None:
    port = free_port()
    config = write_config(tmp_path, port, "      lhcb: {processors_limit: 1}\n")
    state = tmp_path / "state"
    for command in (("status",), ("list",), ("plan",)):  # read-only: still refused
        proc = cli(config, *command, check=False)
        assert proc.returncode == 2 and f"state directory {state} does not exist" in proc.stderr
    assert not state.exists()
    server: Serve = serve_factory(config, port)
    assert server.request("GET", "/healthz") == (200, b"ok\n")
    state_id = json.loads((state / "format.json").read_text())["id"]
    cli(config, "reconcile")  # the pass uses the directory serve made, with its identity
    assert json.loads((state / "format.json").read_text())["id"] == state_id
    assert len(names(config)) == 1
    assert server.request("GET", "/healthz") == (200, b"ok\n")


def test_serve_refuses_a_state_directory_without_its_parent(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port, "      lhcb: {processors_limit: 1}\n",
                          top="").read_text().replace("state_dir: ./state",
                                                      "state_dir: ./unmounted/state")
    path = tmp_path / "vcyclectl.yaml"
    path.write_text(config)
    proc = cli(path, "serve", "--listen", f"127.0.0.1:{port}", check=False)
    assert proc.returncode == 2
    assert f"its parent {tmp_path / 'unmounted'} does not exist" in proc.stderr
    assert not (tmp_path / "unmounted").exists()
