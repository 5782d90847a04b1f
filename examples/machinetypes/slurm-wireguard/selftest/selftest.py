#!/usr/bin/env python3
"""Run the EUCLID slurm-wireguard definition for real on one Debian 12 host (as root).

Two network namespaces stand in for EUCLID's hub and for one worker VM, joined only by a
veth pair (the "internet"). The hub namespace runs a real `slurmctld` (Debian's
slurm-wlm), `munged`, `wireguard-go` and the definition's own `hub/register.py`, plus a
real `vcyclectl serve`. vcyclectl creates the machine on its simulated `local` cloud;
this script renders that machine's user_data exactly as `reconcile` does, writes its
write_files into a sandbox folder (what cloud-init does), and starts the agent inside the
worker namespace with its own hostname. The agent registers over HTTP, brings up its
WireGuard tunnel, starts munged and a dynamic slurmd; a batch job runs on it; and after
`idle_seconds` without work it writes `300 No more work available from task queue`.

Everything it starts is stopped by process id and both namespaces are deleted at the end;
nothing on the host outside the sandbox folder is changed (the WireGuard interfaces and
their control sockets have unique names). Needs: slurmctld slurmd munged wg wireguard-go
ip nsenter unshare curl (`sh tests/examples/install.sh`), /dev/net/tun.

    sudo .venv/bin/python examples/machinetypes/slurm-wireguard/selftest/selftest.py [DIR]
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

HERE = Path(__file__).resolve().parent
DEFINITION = HERE.parent
EXAMPLES = DEFINITION.parent.parent
SPACE = "site.example.org"
UNDERLAY_HUB, UNDERLAY_VM = "192.168.77.1", "192.168.77.2"
TUNNEL_NET, TUNNEL_HUB = "10.77.0.0/24", "10.77.0.1"
CONTROLLER = "euclid-ctl"
REQUIRED = ("slurmctld", "slurmd", "munged", "sbatch", "scontrol", "wg", "wireguard-go", "ip",
            "nsenter", "unshare", "curl")


class SelftestError(AssertionError):
    """A step did not happen; the message says which and shows the relevant log."""


def log(message: str) -> None:
    print(f"selftest {time.strftime('%H:%M:%S')}: {message}", file=sys.stderr, flush=True)


@dataclass
class Host:
    """Namespaces, processes and files of one run, all removed by `close()`."""

    work: Path
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    pidfiles: list[Path] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)

    @property
    def hub(self) -> str:
        return f"vcst{self.tag}h"

    @property
    def vm(self) -> str:
        return f"vcst{self.tag}v"

    def run(self, *argv: str, ns: str | None = None, env: dict[str, str] | None = None,
            timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["nsenter", f"--net=/run/netns/{ns}"] if ns else []
        done = subprocess.run([*prefix, *argv], capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, **(env or {})})
        if check and done.returncode != 0:
            raise SelftestError(f"{' '.join(argv)} failed ({done.returncode}):\n"
                                f"{done.stdout}{done.stderr}")
        return done

    def start(self, name: str, *argv: str, ns: str | None = None, hostname: str | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """A long-running process in a namespace (and its own UTS name), logged to a file.

        nsenter enters only the network namespace: `ip netns exec` would also mount a fresh
        /sys, hiding the cgroup hierarchy that slurmd needs."""
        argv_ = list(argv)
        if hostname:
            argv_ = ["unshare", "--uts", "sh", "-c", f'hostname "$0" && exec "$@"', hostname,
                     *argv_]
        prefix = ["nsenter", f"--net=/run/netns/{ns}"] if ns else []
        out = open(self.work / f"{name}.log", "wb")
        proc = subprocess.Popen([*prefix, *argv_], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, start_new_session=True)
        out.close()
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for pidfile in self.pidfiles:
            try:
                os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)
            except (OSError, ValueError, IndexError):
                pass
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 15
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for ns in self.netns:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, timeout=30)


def wait_for(check: Callable[[], Any], timeout: float, what: str,
             logs: tuple[Path, ...] | list[Path] = (),
             every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name}:\n{_tail(p)}" for p in logs)
            raise SelftestError(f"timed out after {timeout:.0f}s waiting for {what}\n{tails}")
        time.sleep(every)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def preflight() -> None:
    if os.geteuid() != 0:
        raise SelftestError("must run as root (namespaces, WireGuard, slurmd)")
    missing = [t for t in REQUIRED if shutil.which(t) is None]
    if missing:
        raise SelftestError(f"missing {', '.join(missing)}: run `sh tests/examples/install.sh`")
    if not Path("/dev/net/tun").exists():
        raise SelftestError("/dev/net/tun is missing: wireguard-go needs it")


def network(host: Host) -> None:
    for ns in (host.hub, host.vm):
        host.run("ip", "netns", "add", ns)
        host.netns.append(ns)
        host.run("ip", "-n", ns, "link", "set", "lo", "up")
    host.run("ip", "link", "add", f"{host.hub}e", "type", "veth", "peer", "name", f"{host.vm}e")
    for ns, dev, addr in ((host.hub, f"{host.hub}e", UNDERLAY_HUB),
                          (host.vm, f"{host.vm}e", UNDERLAY_VM)):
        host.run("ip", "link", "set", dev, "netns", ns)
        host.run("ip", "-n", ns, "address", "add", f"{addr}/24", "dev", dev)
        host.run("ip", "-n", ns, "link", "set", dev, "up")


def hub(host: Host, munge_key: Path, token: Path) -> Path:
    """EUCLID's side: WireGuard hub, registration, munged and slurmctld, in the hub netns."""
    work = host.work / "hub"
    for sub in ("run", "state", "spool", "munge"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    key = work / "wg.key"
    key.write_text(host.run("wg", "genkey").stdout)
    key.chmod(0o600)
    iface = f"{host.hub}w"
    host.start("hub-wireguard", "wireguard-go", "-f", iface, ns=host.hub,
               env={"WG_PROCESS_FOREGROUND": "1"})
    wait_for(lambda: host.run("ip", "link", "show", iface, ns=host.hub, check=False)
             .returncode == 0, 15, "the hub's wireguard-go interface", [host.work / "hub-wireguard.log"])
    host.run("wg", "set", iface, "listen-port", "51820", "private-key", str(key), ns=host.hub)
    host.run("ip", "address", "add", f"{TUNNEL_HUB}/24", "dev", iface, ns=host.hub)
    host.run("ip", "link", "set", iface, "up", ns=host.hub)
    host.start("hub-register", sys.executable, str(DEFINITION / "hub" / "register.py"),
               "--listen", f"{UNDERLAY_HUB}:8443", "--interface", iface, "--network",
               TUNNEL_NET, "--endpoint", f"{UNDERLAY_HUB}:51820", "--token-file", str(token),
               "--state", str(work / "peers.json"), ns=host.hub)
    socket_ = work / "run" / "munge.socket"
    host.run("munged", "--force", f"--key-file={munge_key}", f"--socket={socket_}",
             f"--pid-file={work / 'run' / 'munged.pid'}", f"--log-file={work / 'munged.log'}",
             f"--seed-file={work / 'munge' / 'seed'}", ns=host.hub)
    host.pidfiles.append(work / "run" / "munged.pid")
    conf = work / "slurm.conf"
    conf.write_text(f"""\
ClusterName=euclid
SlurmctldHost={CONTROLLER}({TUNNEL_HUB})
AuthType=auth/munge
AuthInfo=socket={socket_}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={work / 'state'}
SlurmdSpoolDir={work / 'spool'}
SlurmctldPidFile={work / 'run' / 'slurmctld.pid'}
SlurmctldLogFile={work / 'slurmctld.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MaxNodeCount=8
SlurmdTimeout=60
DebugFlags=NO_CONF_HASH
PartitionName=vms Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
    host.start("slurmctld", "slurmctld", "-D", "-i", "-f", str(conf), ns=host.hub,
               hostname=CONTROLLER)
    wait_for(lambda: host.run("scontrol", "ping", ns=host.hub, env={"SLURM_CONF": str(conf)},
                              check=False).stdout.count("UP") > 0, 30, "slurmctld",
             [work / "slurmctld.log", host.work / "slurmctld.log"])
    return conf


def site(host: Host, serve_port: int, munge_key: Path, token: Path) -> Path:
    """vcyclectl's side: a local-cloud space with the definition's fragment as shipped."""
    from_fragment = yaml.safe_load((DEFINITION / "machinetype.yaml").read_text())
    ((name, settings),) = from_fragment.items()
    settings.pop("image", None)
    settings.update(flavors=["vm"], min_processors=2, max_processors=2, fizzle_seconds=120,
                    heartbeat_seconds=60)
    settings["user_data"] = str(DEFINITION / "user_data")
    settings["user_data_options"].update(
        slurm_controller=CONTROLLER, slurm_controller_address=TUNNEL_HUB,
        wg_register_url=f"http://{UNDERLAY_HUB}:8443/register", idle_seconds="45",
        heartbeat_interval="5")
    settings["user_data_files"] = {
        "wg_register_token": str(token), "munge_key_b64": str(host.work / "munge.key.b64"),
        "vm_feedback_sh": str(EXAMPLES / "machinetypes" / "common" / "vm-feedback.sh"),
        "agent_sh": str(DEFINITION / "agent.sh")}
    (host.work / "munge.key.b64").write_text(base64.b64encode(munge_key.read_bytes()).decode())
    config = {
        "state_dir": str(host.work / "vcyclectl-state"),
        "feedback_url": f"http://{UNDERLAY_HUB}:{serve_port}",
        "spaces": {SPACE: {
            "cloud": "local", "processors_limit": 2,
            "local": {"processors": 8, "flavors": [{"name": "vm", "processors": 2}],
                      "boot_seconds": 0, "job_seconds": 86400, "no_work_probability": 0,
                      "heartbeat": False},
            "machinetypes": {name: settings}}},
    }
    path = host.work / "vcyclectl.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def vcyclectl(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vcyclectl", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120)


def render(config_path: Path, machine: str) -> str:
    from vcyclectl import config as config_module
    from vcyclectl.vm import tokens
    from vcyclectl.vm import userdata

    cfg = config_module.load(config_path)
    space = cfg.spaces[SPACE]
    mt = next(iter(space.machinetypes.values()))
    template = userdata.load_template(space, mt)
    assert template is not None
    return userdata.render(template, config=cfg, space=space, mt=mt, machine=machine,
                           token=tokens.machine_token(cfg.state_dir, machine))


def boot(host: Host, user_data: str, machine: str) -> dict[str, str]:
    """cloud-init's write_files into a sandbox root; the agent's environment for it."""
    root = host.work / "vm-root"
    for entry in yaml.safe_load(user_data)["write_files"]:
        target = root / entry["path"].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(entry["content"])
        target.chmod(int(str(entry.get("permissions", "0644")), 8))
    return {
        "VM_ETC": str(root / "etc/vcyclectl-vm"),
        "VM_LIB": str(root / "usr/local/lib/vcyclectl-vm"),
        # short: Slurm's and munge's sockets live here (108-byte limit)
        "VM_RUN": str(host.work / "r"),
        "VM_STATE": str(host.work / "s"),
        "SLURMD_SPOOL": str(host.work / "sp"),
        "VM_POWEROFF": f"touch {root / 'powered-off'}",
        "WG_INTERFACE": f"{host.vm}w",
        "POLL_SECONDS": "2",
        "SHUTDOWN_GRACE_SECONDS": "30",
    }


def run(work: Path) -> dict[str, Any]:
    """The whole self-test; returns what it saw (raises SelftestError on any failure).

    It runs in a short folder under /tmp, because Slurm's and munge's Unix sockets live in
    it and a socket path may not exceed 108 bytes; the logs are copied to `work` at the end.
    """
    import tempfile

    preflight()
    work.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="vcst-", dir="/tmp"))
    host = Host(base)
    try:
        return _run(host, base)
    finally:
        host.close()
        shutil.copytree(base, work / "files", dirs_exist_ok=True,
                        ignore=lambda d, names: [n for n in names
                                                 if not (Path(d) / n).is_file()
                                                 and not (Path(d) / n).is_dir()])
        shutil.rmtree(base, ignore_errors=True)


def _run(host: Host, work: Path) -> dict[str, Any]:
    """The steps, in order; see the module docstring."""
    network(host)
    munge_key = work / "munge.key"
    munge_key.write_bytes(secrets.token_bytes(1024))
    munge_key.chmod(0o400)
    token = work / "register.token"
    token.write_text(secrets.token_hex(32) + "\n")
    token.chmod(0o600)
    slurm_conf = hub(host, munge_key, token)
    slurm_env = {"SLURM_CONF": str(slurm_conf)}
    log("hub up: slurmctld, WireGuard, registration")

    port = 8080
    config = site(host, port, munge_key, token)
    created = vcyclectl(config, "reconcile")
    if created.returncode != 0:
        raise SelftestError(f"vcyclectl reconcile failed:\n{created.stderr}")
    rows = json.loads(vcyclectl(config, "list", "-o", "json").stdout)
    machine = rows[0]["name"]
    host.start("serve", sys.executable, "-m", "vcyclectl", "--config", str(config), "serve",
               "--listen", f"{UNDERLAY_HUB}:{port}", "--workers", "1", ns=host.hub)
    wait_for(lambda: host.run("curl", "-fsS", f"http://{UNDERLAY_HUB}:{port}/healthz",
                              ns=host.hub, check=False).returncode == 0, 30,
             "vcyclectl serve", [work / "serve.log"])
    log(f"vcyclectl created {machine}; serve up")

    env = boot(host, render(config, machine), machine)
    state = Path(env["VM_STATE"])
    agent_log = work / "agent.log"
    host.pidfiles += [Path(env["VM_RUN"]) / "slurmd.pid", Path(env["VM_RUN"]) / "munged.pid"]
    agent = host.start("agent", "sh", str(Path(env["VM_ETC"]).parents[1]
                                          / "usr/local/sbin/vcyclectl-agent"),
                       ns=host.vm, hostname=machine, env=env)
    logs = [agent_log, work / "slurmctld.log", state / "slurmd.log", work / "hub-register.log",
            work / "serve.log"]
    def registered() -> str | None:
        if agent.poll() is not None and not (Path(env["VM_RUN"]) / "slurmd.pid").exists():
            raise SelftestError("the agent ended before slurmd registered:\n"
                                + _tail(agent_log))
        return _node(host, machine, slurm_env)

    node = wait_for(registered, 120, "the VM's slurmd registering with slurmctld", logs)
    log(f"node registered: {node}")
    out = work / "job.out"
    log("submitting a batch job to the node")
    job = host.run("sbatch", "--parsable", "-w", machine, "-o", str(out), "--wrap",
                   "echo ran-on-$(hostname); sleep 4", ns=host.hub, env=slurm_env)
    wait_for(lambda: out.exists() and "ran-on-" in out.read_text(), 90,
             f"batch job {job.stdout.strip()}", logs)
    ran_on = out.read_text().strip()
    log(f"job {job.stdout.strip()} printed {ran_on!r}")

    outputs = work / "vcyclectl-state" / "spaces" / SPACE / "joboutputs" / machine
    message_file = outputs / "shutdown_message"
    wait_for(message_file.exists, 120, "the agent's shutdown_message", logs)
    message = message_file.read_text().strip()
    agent.wait(timeout=30)
    heartbeat = int((outputs / "heartbeat").read_text())
    inspected = json.loads(vcyclectl(config, "inspect", machine, "-o", "json").stdout)
    return {"machine": machine, "node_addr": node, "job_output": ran_on,
            "shutdown_message": message, "heartbeat_at": heartbeat,
            "jobs_seen": (outputs / "jobs_seen").read_text().strip(),
            "inspect": inspected, "powered_off": (Path(env["VM_ETC"]).parents[1]
                                                  / "powered-off").exists(),
            "agent_exit": agent.returncode}


def _node(host: Host, machine: str, env: dict[str, str]) -> str | None:
    done = host.run("scontrol", "show", "node", machine, ns=host.hub, env=env, check=False)
    if done.returncode != 0 or "State=IDLE" not in done.stdout:
        return None
    for word in done.stdout.split():
        if word.startswith("NodeAddr="):
            return word.split("=", 1)[1]
    return None


def main() -> int:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(
        subprocess.run(["mktemp", "-d"], capture_output=True, text=True).stdout.strip())
    try:
        seen = run(work)
    except SelftestError as exc:
        print(f"selftest FAILED: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({k: v for k, v in seen.items() if k != "inspect"}, indent=1))
    ok = (seen["shutdown_message"] == "300 No more work available from task queue"
          and seen["node_addr"].startswith("10.77.0.") and seen["machine"] in seen["job_output"])
    print("selftest passed" if ok else "selftest FAILED: unexpected results", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
