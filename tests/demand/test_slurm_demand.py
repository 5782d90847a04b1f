"""The `slurm` demand source against a real slurmctld: the one the EUCLID self-test runs
(examples/machinetypes/slurm-wireguard/selftest/selftest.py: munged and slurmctld in a
network namespace behind WireGuard), with `vcyclectl reconcile` run in that namespace on the
`local` cloud, as a site's vcyclectl host reaching its cluster would.

Jobs submitted to the partition make the community's machines appear in one pass for the
pending CPUs (where probing would start one); a drained queue gives it nothing new; with
slurmctld stopped the plan falls back to probing and says why. Like the self-test, this fails
(never skips) without root and the Debian packages (tests/examples/install.sh).
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import vcyclectl_command
from tests.examples.test_slurm_wireguard import load_selftest


@dataclass
class Cluster:
    selftest: Any
    host: Any
    conf: Path

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done: subprocess.CompletedProcess[str] = self.host.run(
            *argv, ns=self.host.hub, env={"SLURM_CONF": str(self.conf)}, check=check)
        return done

    def vcyclectl(self, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """The real command, in the cluster's network namespace."""
        return subprocess.run(["nsenter", f"--net=/run/netns/{self.host.hub}",
                               *vcyclectl_command(), "--config", str(config), *args],
                              capture_output=True, text=True, timeout=120)

    def stop_slurmctld(self) -> None:
        for proc in self.host.procs:
            if proc.poll() is None and "slurmctld" in proc.args:
                proc.terminate()
                proc.wait(timeout=30)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    selftest = load_selftest()
    selftest.preflight()
    base = Path(tempfile.mkdtemp(prefix="vcdm-", dir="/tmp"))  # short: Unix socket paths
    host = selftest.Host(base)
    try:
        selftest.network(host)
        key = base / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        token = base / "register.token"
        token.write_text(secrets.token_hex(32) + "\n")
        token.chmod(0o600)
        yield Cluster(selftest, host, selftest.hub(host, key, token))
    finally:
        host.close()
        shutil.rmtree(base, ignore_errors=True)


def config(tmp_path: Path, cluster: Cluster, *, demand: bool = True,
           name: str = "vcyclectl.yaml") -> Path:
    block = (f"\n    demand: {{source: slurm, partition: vms, slurm_conf: {cluster.conf}, "
             "timeout_seconds: 20, max_age_seconds: 0}") if demand else ""
    path = tmp_path / name
    path.write_text(f"""\
state_dir: state
defaults:
  min_pass_interval_seconds: 0
  backoff_seconds: 600
  fizzle_seconds: 600
spaces:
  euclid.local:
    cloud: local
    processors_limit: 64
    local:
      processors: 200
      boot_seconds: 0
      job_seconds: 3600
      no_work_probability: 0
      flavors: [{{name: eight, processors: 8}}]
    machinetypes:
      euclid: {{flavors: [eight]}}
      lhcb: {{flavors: [eight]}}
communities:
  euclid:
    machinetypes: [euclid]
    priority: 10{block}
  lhcb: {{machinetypes: [lhcb], backfill: true, make_room: delete}}
""")
    return path


def plan(cluster: Cluster, cfg: Path) -> dict[str, Any]:
    done = cluster.vcyclectl(cfg, "plan", "-o", "json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout)[0])


def fleet(cluster: Cluster, cfg: Path) -> dict[str, set[str]]:
    done = cluster.vcyclectl(cfg, "list", "-o", "json")
    out: dict[str, set[str]] = {"euclid": set(), "lhcb": set()}
    for m in json.loads(done.stdout):
        if m["state"] not in ("deleting", "deleted", "stopped"):
            out[m["machinetype"]].add(m["name"])
    return out


def decided(shown: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The plan's creations and deletions, without the random names of new machines."""
    return sorted((a["action"], a["machinetype"], "" if a["action"] == "create" else a["name"])
                  for a in shown["actions"] if a["action"] in ("create", "delete"))


def test_slurm_pending_cpus_steer_reconcile_then_drain_then_fall_back(
        cluster: Cluster, tmp_path: Path) -> None:
    cfg = config(tmp_path, cluster)
    without = config(tmp_path, cluster, demand=False, name="without-demand.yaml")

    # An empty queue: euclid gets nothing, not even a probe; backfill takes the space.
    done = cluster.vcyclectl(cfg, "reconcile")
    assert done.returncode == 0, done.stderr
    assert {k: len(v) for k, v in fleet(cluster, cfg).items()} == {"euclid": 0, "lhcb": 8}

    # 48 CPUs pending in partition vms: 4 jobs of 8 and an array of 4 tasks of 4.
    for _ in range(4):
        cluster.run("sbatch", "--parsable", "-p", "vms", "-n", "8", "--wrap", "sleep 600")
    cluster.run("sbatch", "--parsable", "-p", "vms", "-n", "4", "--array=1-4", "--wrap",
                "sleep 600")
    probing = plan(cluster, without)
    assert [a["machinetype"] for a in probing["actions"] if a["action"] == "create"] == \
        ["euclid"]  # without the signal: one probe machine
    shown = plan(cluster, cfg)
    assert shown["demand"]["euclid"]["waiting_processors"] == 48
    assert shown["demand"]["euclid"]["age_seconds"] < 60
    done = cluster.vcyclectl(cfg, "reconcile", "-o", "json")
    assert done.returncode == 0, done.stderr
    after = fleet(cluster, cfg)
    assert len(after["euclid"]) == 6  # 48 CPUs on 8-CPU machines, in this one pass
    assert len(after["lhcb"]) == 2    # backfill made the room (make_room: delete)
    creates = [a for a in shown["actions"] if a["action"] == "create"]
    assert creates and all("slurm: 48 CPUs pending in partition vms" in a["reason"]
                           for a in creates)

    # The queue drains: no new machines for euclid, and none of its machines deleted.
    cluster.run("scancel", "--partition=vms", "--user=root")
    shown = plan(cluster, cfg)
    assert "euclid: slurm: 0 CPUs pending in partition vms: no new machines" in shown["notes"]
    assert not [a for a in shown["actions"] if a["machinetype"] == "euclid" and
                a["action"] in ("create", "delete")]
    assert cluster.vcyclectl(cfg, "reconcile").returncode == 0
    assert fleet(cluster, cfg)["euclid"] == after["euclid"]

    # slurmctld stops: the reading is unavailable and the plan probes as without a source.
    cluster.stop_slurmctld()
    shown = plan(cluster, cfg)
    reason = shown["demand"]["euclid"]["unavailable"]
    assert reason.startswith("squeue: "), reason
    assert "last good reading" in reason
    assert any(n.startswith(f"euclid: no demand signal (slurm in partition vms: {reason}")
               and n.endswith("probing for work as without one") for n in shown["notes"])
    assert decided(shown) == decided(plan(cluster, without))
    assert len([a for a in shown["actions"] if a["action"] == "create"]) <= 1  # a probe
    done = cluster.vcyclectl(cfg, "reconcile")
    assert done.returncode == 0, done.stderr
    assert after["euclid"] <= fleet(cluster, cfg)["euclid"]  # nothing of euclid's deleted
