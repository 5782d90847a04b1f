"""The EUCLID definition run for real: a real slurmctld, a real WireGuard tunnel between two
network namespaces, the definition's own user_data files and agent, a batch job on the VM's
dynamic slurmd, heartbeats to a real `vcyclectl serve`, and 300 when idle.

The work is done by examples/machinetypes/slurm-wireguard/selftest/selftest.py (also runnable
by hand); this test fails, never skips, when root, /dev/net/tun or the Debian packages are
missing (tests/examples/install.sh installs them). About 30 s on 2 cores.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

from tests.examples.harness import EXAMPLES

SELFTEST = EXAMPLES / "machinetypes" / "slurm-wireguard" / "selftest" / "selftest.py"


def load_selftest():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("slurm_wireguard_selftest", SELFTEST)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_euclid_worker_joins_slurm_over_wireguard_runs_a_job_and_ends_idle(
        tmp_path: Path) -> None:
    selftest = load_selftest()
    started = time.time()
    seen = selftest.run(tmp_path / "run")
    machine = seen["machine"]
    assert seen["node_addr"].startswith("10.77.0.")        # slurmctld reaches it via the tunnel
    assert seen["node_addr"] != "10.77.0.1"
    assert seen["job_output"] == f"ran-on-{machine}"       # the job ran on the VM's slurmd
    assert seen["shutdown_message"] == "300 No more work available from task queue"
    assert seen["jobs_seen"] == "1"
    assert started - 5 <= seen["heartbeat_at"] <= time.time()
    assert seen["powered_off"] and seen["agent_exit"] == 0
    inspected = seen["inspect"]
    assert inspected["shutdown_message"] == "300 No more work available from task queue"
    assert "heartbeat" in inspected["joboutputs"] and inspected.get("heartbeat_at")
