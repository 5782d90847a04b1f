"""vmcondor COMMAND: HTCondor's everyday commands for a VMCondor pool.

  setup --pool ADDRESS --name POOL   once: where the pool is (your admin tells you)
  token request USER                 once: ask for a token; your admin approves it
  token show | token install FILE    what your token says; install one the admin gave you
  submit [options] EXECUTABLE [ARG…] submit (files transferred, output kept for `fetch`)
  q [--all]                          your jobs in the queue
  rm JOB…                            remove jobs (CLUSTER or CLUSTER.PROC)
  fetch JOB…                         bring finished jobs' output files back here
  history [--limit N]                your finished jobs
  status                             the pool's VMs, per site

Exit status: 0 done, 1 the pool said no or could not be reached, 2 usage or setup error.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from vmcondor_client import __version__, bindings, jobs
from vmcondor_client.pool import Pool, PoolError, activate, identity, load, save, token_claims

JOB_STATUS = {1: "idle", 2: "running", 3: "removed", 4: "done", 5: "held",
              6: "transferring", 7: "suspended"}
Q_ATTRS = ["ClusterId", "ProcId", "Owner", "JobStatus", "RequestCpus", "RequestMemory",
           "QDate", "EnteredCurrentStatus", "Cmd", "JobBatchName", "HoldReason",
           "RemoteHost"]
HISTORY_ATTRS = ["ClusterId", "ProcId", "Owner", "JobStatus", "ExitCode", "QDate",
                 "CompletionDate", "RemoteWallClockTime", "Cmd", "LastRemoteHost"]
WORKER_ATTRS = ["Name", "Machine", "VMCONDOR_SPACE", "State", "Activity", "Cpus", "Memory",
                "TotalSlotCpus", "SlotType"]


class Connection:
    """The live pool, through the bindings; tests pass their own with recorded answers."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        activate(pool)
        self.htcondor = bindings.htcondor()

    def collector(self) -> Any:
        return self.htcondor.Collector(self.pool.collector)

    def schedd_ad(self) -> Any:
        ads = self.collector().query(self.htcondor.AdType.Schedd,
                                     constraint="VMCondorAccessPoint =?= True",
                                     projection=["Name", "MyAddress", "CondorVersion",
                                                 "VMCondorPool"])
        if not ads:
            raise ConnectionError(f"the pool at {self.pool.collector} lists no VMCondor "
                                  "access point")
        return ads[0]

    def schedd(self) -> Any:
        return self.htcondor.Schedd(self.schedd_ad())

    def workers(self) -> list[Any]:
        return list(self.collector().query(self.htcondor.AdType.Startd,
                                           constraint="VMCondor =?= True",
                                           projection=WORKER_ATTRS))

    def remove_action(self) -> Any:
        return self.htcondor.JobAction.Remove


def _owner(pool: Pool) -> str:
    return identity(pool).split("@", 1)[0]


def _job_spec(text: str) -> str:
    cluster, _, proc = text.partition(".")
    if not cluster.isdigit() or (proc and not proc.isdigit()):
        raise PoolError(f"not a job id: {text!r} (CLUSTER or CLUSTER.PROC)")
    return text


def _mine(owner: str) -> str:
    return f"Owner == {jobs.classad_string(owner)}"


def _plain(ad: Any, attrs: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr in attrs:
        if attr in ad:
            value = ad.eval(attr)
            out[attr] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return out


def _print_rows(rows: list[dict[str, Any]], columns: list[tuple[str, str]], as_json: bool,
                out: Any) -> None:
    if as_json:
        json.dump(rows, out, indent=1, sort_keys=True)
        out.write("\n")
        return
    table = [[title for _, title in columns]]
    table += [[str(row.get(key, "")) for key, _ in columns] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    for r in table:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() + "\n")


def _job_rows(ads: list[Any], attrs: list[str]) -> list[dict[str, Any]]:
    rows = []
    for ad in ads:
        row = _plain(ad, attrs)
        row["job"] = f"{row.get('ClusterId')}.{row.get('ProcId')}"
        row["status"] = JOB_STATUS.get(int(row.get("JobStatus", 0)), "?")
        row["cmd"] = Path(str(row.get("Cmd", ""))).name
        rows.append(row)
    return sorted(rows, key=lambda r: (r.get("ClusterId", 0), r.get("ProcId", 0)))


# -- commands ----------------------------------------------------------------------------
def cmd_setup(args: argparse.Namespace, home: Path, out: Any, **_: Any) -> int:
    pool = Pool(address=args.pool, name=args.name, home=home)
    save(pool)
    out.write(f"pool {pool.name} at {pool.collector}; settings in {pool.home}\n")
    if not pool.token_file.exists():
        out.write(f"next: vmcondor token request {os.environ.get('USER', 'YOURNAME')}\n")
    return 0


def cmd_token(args: argparse.Namespace, home: Path, out: Any, run: Callable[..., Any],
              **_: Any) -> int:
    pool = load(home)
    if args.action == "request":
        user = args.user
        if not user or "@" in user or not all(c.isalnum() or c in "._-" for c in user):
            raise PoolError("give your user name only (letters, digits, . _ -); "
                            f"the identity becomes NAME@{pool.name}")
        tool = shutil.which("condor_token_request")
        if tool is None:
            raise PoolError("condor_token_request is not installed: it comes with HTCondor's "
                            "client tools (the htcondor wheel has none), or ask your admin "
                            "for a token and use `vmcondor token install FILE`")
        if pool.token_file.exists() and not args.replace:
            raise PoolError(f"{pool.token_file} exists; add --replace to request a new one")
        env = dict(os.environ, CONDOR_CONFIG=str(pool.condor_config))
        out.write(f"requesting {user}@{pool.name} from {pool.collector}; give the request ID "
                  "below to your pool admin, this waits until it is approved\n")
        out.flush()
        done = run([tool, "-pool", pool.collector, "-identity", f"{user}@{pool.name}",
                    "-authz", "READ", "-authz", "WRITE", "-lifetime", str(args.lifetime),
                    "-token", pool.token_file.name], env=env)
        if done.returncode != 0:
            return 1
        pool.token_file.chmod(0o600)
        out.write(f"token stored in {pool.token_file}\n")
        return 0
    if args.action == "install":
        text = Path(args.file).read_text()
        token_claims(text)
        pool.token_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        pool.token_file.write_text(text.strip() + "\n")
        pool.token_file.chmod(0o600)
        out.write(f"token for {identity(pool)} stored in {pool.token_file}\n")
        return 0
    claims = token_claims(pool.token_file.read_text()) if pool.token_file.exists() else None
    if claims is None:
        raise PoolError(f"no token in {pool.token_file}")
    shown = {k: claims.get(k) for k in ("sub", "iss", "kid", "scope", "iat", "exp", "jti")}
    if args.json:
        json.dump(shown, out, indent=1)
        out.write("\n")
    else:
        for key, value in shown.items():
            if key in ("iat", "exp") and isinstance(value, int):
                value = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))
            out.write(f"{key}: {value if value is not None else '-'}\n")
    return 0


def cmd_submit(args: argparse.Namespace, home: Path, out: Any,
               connect: Callable[[Pool], Connection], **_: Any) -> int:
    request = jobs.JobRequest(executable=args.executable, arguments=list(args.arguments),
                              cpus=args.cpus, memory_mb=args.memory, disk_mb=args.disk,
                              inputs=args.input, outputs=args.output, count=args.count,
                              sites=args.site, max_hours=args.max_hours, name=args.name)
    for name in [request.executable, *request.inputs]:
        if not Path(name).exists():
            raise PoolError(f"{name}: no such file here (files are sent from this folder)")
    if args.dry_run:
        out.write(str(jobs.build(request)))
        return 0
    pool = load(home)
    identity(pool)
    conn = connect(pool)
    submit = jobs.build(request)
    Path(jobs.OUT_DIR).mkdir(exist_ok=True)
    schedd = conn.schedd()
    result = schedd.submit(submit, spool=True)
    schedd.spool(result)
    cluster = result.cluster()
    out.write(f"submitted {result.num_procs()} job(s) as cluster {cluster}; "
              f"`vmcondor q` to watch, `vmcondor fetch {cluster}` when done\n")
    return 0


def cmd_q(args: argparse.Namespace, home: Path, out: Any,
          connect: Callable[[Pool], Connection], **_: Any) -> int:
    pool = load(home)
    owner = _owner(pool)
    constraint = "True" if args.all else _mine(owner)
    ads = connect(pool).schedd().query(constraint=constraint, projection=Q_ATTRS)
    rows = _job_rows(list(ads), Q_ATTRS)
    _print_rows(rows, [("job", "JOB"), ("Owner", "OWNER"), ("status", "STATUS"),
                       ("RequestCpus", "CPUS"), ("cmd", "COMMAND"),
                       ("JobBatchName", "BATCH")], args.json, out)
    return 0


def cmd_rm(args: argparse.Namespace, home: Path, out: Any,
           connect: Callable[[Pool], Connection], **_: Any) -> int:
    pool = load(home)
    identity(pool)
    specs = [_job_spec(j) for j in args.jobs]
    conn = connect(pool)
    result = conn.schedd().act(conn.remove_action(), specs, reason="removed with vmcondor rm")
    removed = int(result["TotalSuccess"]) if result is not None else 0
    out.write(f"removed {removed} job(s)\n")
    return 0 if removed else 1


def cmd_fetch(args: argparse.Namespace, home: Path, out: Any,
              connect: Callable[[Pool], Connection], **_: Any) -> int:
    pool = load(home)
    identity(pool)
    specs = [_job_spec(j) for j in args.jobs]
    connect(pool).schedd().retrieve(specs)
    out.write(f"output of {', '.join(specs)} is in ./{jobs.OUT_DIR}/ and this folder\n")
    return 0


def cmd_history(args: argparse.Namespace, home: Path, out: Any,
                connect: Callable[[Pool], Connection], **_: Any) -> int:
    pool = load(home)
    owner = _owner(pool)
    ads = connect(pool).schedd().history(constraint=_mine(owner),
                                         projection=HISTORY_ATTRS, match=args.limit)
    rows = _job_rows(list(ads), HISTORY_ATTRS)
    _print_rows(rows, [("job", "JOB"), ("status", "STATUS"), ("ExitCode", "EXIT"),
                       ("RemoteWallClockTime", "WALL_S"), ("cmd", "COMMAND")], args.json, out)
    return 0


def cmd_status(args: argparse.Namespace, home: Path, out: Any,
               connect: Callable[[Pool], Connection], **_: Any) -> int:
    pool = load(home)
    identity(pool)
    sites: dict[str, dict[str, Any]] = {}
    for ad in connect(pool).workers():
        row = _plain(ad, WORKER_ATTRS)
        site = sites.setdefault(str(row.get("VMCONDOR_SPACE", "?")),
                                {"site": str(row.get("VMCONDOR_SPACE", "?")), "vms": set(),
                                 "cpus": 0, "busy_cpus": 0})
        site["vms"].add(row.get("Machine", row.get("Name")))
        if row.get("SlotType") == "Partitionable":
            site["cpus"] += int(row.get("TotalSlotCpus", row.get("Cpus", 0)))
        elif row.get("State") == "Claimed":
            site["busy_cpus"] += int(row.get("Cpus", 0))
    rows = [dict(s, vms=len(s["vms"])) for _, s in sorted(sites.items())]
    _print_rows(rows, [("site", "SITE"), ("vms", "VMS"), ("cpus", "CPUS"),
                       ("busy_cpus", "BUSY")], args.json, out)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vmcondor", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"vmcondor {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("setup", help="where the pool is")
    s.add_argument("--pool", required=True, help="the manager's address, host[:port]")
    s.add_argument("--name", required=True, help="the pool's name (trust domain)")
    s.set_defaults(func=cmd_setup)
    t = sub.add_parser("token", help="your IDTOKEN")
    tsub = t.add_subparsers(dest="action", required=True)
    tr = tsub.add_parser("request", help="ask the pool for a token (the admin approves)")
    tr.add_argument("user")
    tr.add_argument("--lifetime", type=int, default=180 * 86400, help="seconds (180 days)")
    tr.add_argument("--replace", action="store_true")
    ti = tsub.add_parser("install", help="store a token the admin gave you")
    ti.add_argument("file")
    ts = tsub.add_parser("show", help="what your token says (not a secret)")
    ts.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_token, json=False)
    sm = sub.add_parser("submit", help="submit EXECUTABLE [ARG…]")
    sm.add_argument("executable")
    sm.add_argument("arguments", nargs=argparse.REMAINDER)
    sm.add_argument("--cpus", type=int, default=1)
    sm.add_argument("--memory", type=int, default=None, help=f"MB (default "
                    f"{jobs.MEMORY_MB_PER_CPU} per cpu)")
    sm.add_argument("--disk", type=int, default=10240, help="MB")
    sm.add_argument("--input", action="append", default=[], help="file sent with the job")
    sm.add_argument("--output", action="append", default=[],
                    help="file brought back (default: every new file)")
    sm.add_argument("--count", type=int, default=1, help="this many copies ($(ProcId))")
    sm.add_argument("--site", action="append", default=[], help="only at this site (space)")
    sm.add_argument("--max-hours", type=float, default=None)
    sm.add_argument("--name", default=None, help="a batch name")
    sm.add_argument("--dry-run", action="store_true", help="print the submit description")
    sm.set_defaults(func=cmd_submit)
    for name, func, text in (("q", cmd_q, "your jobs in the queue"),
                             ("history", cmd_history, "your finished jobs"),
                             ("status", cmd_status, "the pool's VMs per site")):
        c = sub.add_parser(name, help=text)
        c.add_argument("--json", action="store_true")
        c.set_defaults(func=func)
        if name == "q":
            c.add_argument("--all", action="store_true", help="everyone's jobs")
        if name == "history":
            c.add_argument("--limit", type=int, default=50)
    for name, func, text in (("rm", cmd_rm, "remove jobs"),
                             ("fetch", cmd_fetch, "bring output back")):
        c = sub.add_parser(name, help=text)
        c.add_argument("jobs", nargs="+", metavar="JOB")
        c.set_defaults(func=func)
    return p


def main(argv: Sequence[str] | None = None, *, connect: Callable[[Pool], Any] = Connection,
         run: Callable[..., Any] = subprocess.run, out: Any = None,
         home: Path | None = None) -> int:
    from vmcondor_client.pool import home as default_home

    args = parser().parse_args(argv)
    out = out or sys.stdout
    try:
        return int(args.func(args, home=home or default_home(), out=out, connect=connect,
                             run=run))
    except (PoolError, ValueError) as exc:
        print(f"vmcondor: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        # The bindings raise HTCondorException (a plain Exception) when the pool refuses
        # or cannot be reached; anything else is a bug and keeps its traceback.
        if isinstance(exc, OSError) or type(exc).__name__ == "HTCondorException":
            print(f"vmcondor: the pool did not answer as expected: {exc}", file=sys.stderr)
            return 1
        raise
