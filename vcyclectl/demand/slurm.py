"""The `slurm` source: pending and running CPUs of a partition and/or account, from
`squeue --json` (Slurm 21.08 and later; the job fields of 22.05 and the `{"number": N}`
wrappers of 23.02 and later are both read).

Pending work that machines cannot serve (held, waiting on a dependency or a begin time) is
not counted: more machines would not start it. A pending job array counts each of its
pending tasks.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Iterable

from vcyclectl.config.demand import DemandSource
from vcyclectl.demand.payload import Counts, Unavailable
from vcyclectl.demand.process import run_bounded

#: Pending reasons that more machines would not cure.
NOT_FOR_MACHINES = frozenset({"JobHeldUser", "JobHeldAdmin", "Dependency",
                              "DependencyNeverSatisfied", "BeginTime", "InvalidAccount",
                              "InvalidQOS", "QOSJobLimit", "AssocMaxJobsLimit"})


def squeue_argv(source: DemandSource) -> list[str]:
    """The command run: filtered in Python too, since some releases' --json ignores
    --partition and --account."""
    argv = [source.squeue, "--json"]
    if source.partition:
        argv.append(f"--partition={source.partition}")
    if source.account:
        argv.append(f"--account={source.account}")
    return argv


def _number(value: Any) -> int:
    """22.05 gives 8; 23.02+ give {"set": true, "infinite": false, "number": 8}."""
    if isinstance(value, dict):
        value = value.get("number") if value.get("set", True) else 0
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _states(job: dict[str, Any]) -> set[str]:
    state = job.get("job_state")
    return {str(s) for s in state} if isinstance(state, list) else {str(state)}


def array_tasks(spec: str) -> int:
    """How many tasks an `array_task_string` names ("1-3", "1,4,7-9", "0-99:2%10")."""
    spec = spec.split("%", 1)[0].strip()
    if not spec:
        return 1
    total = 0
    for part in spec.split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part.strip())
        if m is None:
            return 1
        first, last, step = int(m[1]), int(m[2] or m[1]), int(m[3] or 1)
        total += max(0, (last - first) // max(step, 1) + 1)
    return max(total, 1)


def _in(job: dict[str, Any], key: str, wanted: str | None) -> bool:
    if not wanted:
        return True
    return wanted in str(job.get(key) or "").split(",")


def summarise(jobs: Iterable[dict[str, Any]], source: DemandSource) -> Counts:
    """Pending and running CPUs of the jobs the source's partition and account select."""
    waiting = running = 0
    for job in jobs:
        if not (_in(job, "partition", source.partition) and
                _in(job, "account", source.account)):
            continue
        states, cpus = _states(job), _number(job.get("cpus"))
        if "PENDING" in states:
            if str(job.get("state_reason") or "") in NOT_FOR_MACHINES:
                continue
            tasks = str(job.get("array_task_string") or "")
            waiting += cpus * (array_tasks(tasks) if tasks else 1)
        elif "RUNNING" in states:
            running += cpus
    return Counts(waiting=waiting, running=running)


def errors_in(data: dict[str, Any]) -> str:
    """The errors squeue reported beside its job list ("" if none)."""
    errors = data.get("errors") or []
    texts = []
    for e in errors if isinstance(errors, list) else [errors]:
        if isinstance(e, dict):
            where = f"{e.get('source')}: " if e.get("source") else ""
            texts.append(f"{where}{e.get('description') or e.get('error') or e}"
                         + (f" ({e['error']})" if e.get("error") and e.get("description")
                            else ""))
        else:
            texts.append(str(e))
    return "; ".join(texts)[:300]


def read(source: DemandSource) -> Counts:
    env = dict(os.environ)
    if source.slurm_conf:
        env["SLURM_CONF"] = source.slurm_conf
    out = run_bounded(squeue_argv(source), source.timeout_seconds, "squeue", env)
    try:
        data = json.loads(out)
        jobs = data["jobs"]
        if not isinstance(jobs, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise Unavailable("squeue --json gave no job list (Slurm 21.08 or later with its "
                          "JSON serializer is needed)") from None
    failed = errors_in(data)
    if failed:  # squeue exits 0 with an empty list when slurmctld is down: not "no work"
        raise Unavailable(f"squeue: {failed}")
    return summarise((j for j in jobs if isinstance(j, dict)), source)
