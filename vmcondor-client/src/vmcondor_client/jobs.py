"""Submit descriptions for a VMCondor pool, built for the HTCondor Python bindings: the
boilerplate a user should never have to write (universe, file transfer, logs, requirements
for the pool's VMs, multi-core and memory requests, output kept for fetching)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vmcondor_client import __version__, bindings

# A spooled job stays in the queue after completion until its output is fetched, at most
# ten days (the condor_submit -spool convention).
LEAVE_IN_QUEUE = ("JobStatus == 4 && (CompletionDate =?= undefined || CompletionDate == 0 "
                  "|| (time() - CompletionDate) < 864000)")
MEMORY_MB_PER_CPU = 2048
OUT_DIR = "vmcondor-out"


@dataclass
class JobRequest:
    executable: str
    arguments: list[str] = field(default_factory=list)
    cpus: int = 1
    memory_mb: int | None = None         # default MEMORY_MB_PER_CPU per core
    disk_mb: int = 10240
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)   # empty: every new file in the job dir
    count: int = 1
    sites: list[str] = field(default_factory=list)     # vcyclectl spaces (VMCONDOR_SPACE)
    max_hours: float | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.cpus < 1 or self.count < 1 or self.disk_mb < 1:
            raise ValueError("cpus, count and disk must be at least 1")
        if self.memory_mb is not None and self.memory_mb < 1:
            raise ValueError("memory must be at least 1 MB")
        if self.max_hours is not None and self.max_hours <= 0:
            raise ValueError("max hours must be positive")
        for name in self.inputs + self.outputs:
            if "," in name:
                raise ValueError(f"file name with a comma: {name!r}")


def classad_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def condor_arguments(args: list[str]) -> str:
    """HTCondor's "new" arguments syntax: the whole in double quotes, each argument with
    spaces in single quotes, quotes doubled."""
    words = []
    for arg in args:
        plain = arg and not any(c.isspace() or c in "'\"" for c in arg)
        arg = arg.replace('"', '""').replace("'", "''")
        words.append(arg if plain else f"'{arg}'")
    return '"' + " ".join(words) + '"'


def requirements(request: JobRequest) -> str:
    """Only the pool's VMs (the worker advertises VMCondor = True), optionally only some
    sites; cores, memory and disk are matched by HTCondor from the request_* values."""
    parts = ["(TARGET.VMCondor =?= True)"]
    if request.sites:
        parts.append("(" + " || ".join(f"TARGET.VMCONDOR_SPACE =?= {classad_string(s)}"
                                       for s in request.sites) + ")")
    return " && ".join(parts)


def description(request: JobRequest) -> dict[str, str]:
    memory = request.memory_mb or MEMORY_MB_PER_CPU * request.cpus
    desc = {
        "universe": "vanilla",
        "executable": request.executable,
        "transfer_executable": "True",
        "request_cpus": str(request.cpus),
        "request_memory": f"{memory}MB",
        "request_disk": f"{request.disk_mb}MB",
        "should_transfer_files": "YES",
        "when_to_transfer_output": "ON_EXIT",
        "output": f"{OUT_DIR}/$(ClusterId).$(ProcId).out",
        "error": f"{OUT_DIR}/$(ClusterId).$(ProcId).err",
        "log": f"{OUT_DIR}/$(ClusterId).log",
        "requirements": requirements(request),
        "leave_in_queue": LEAVE_IN_QUEUE,
        "My.VMCondorClient": classad_string(f"vmcondor {__version__}"),
    }
    if request.arguments:
        desc["arguments"] = condor_arguments(request.arguments)
    if request.inputs:
        desc["transfer_input_files"] = ", ".join(request.inputs)
    if request.outputs:
        desc["transfer_output_files"] = ", ".join(request.outputs)
    if request.max_hours is not None:
        seconds = int(request.max_hours * 3600)
        desc["periodic_remove"] = (f"(JobStatus == 2) && "
                                   f"((time() - EnteredCurrentStatus) > {seconds})")
    if request.name:
        desc["batch_name"] = request.name
    return desc


def build(request: JobRequest) -> Any:
    """The htcondor Submit object, with every ClassAd expression parsed by the real
    ClassAd library first (a bad expression fails here, not in the schedd)."""
    classad = bindings.classad()
    desc = description(request)
    for key in ("requirements", "leave_in_queue", "periodic_remove"):
        if key in desc:
            try:
                classad.ExprTree(desc[key])
            except Exception as exc:   # classad's ClassAdException
                raise ValueError(f"{key} is not a ClassAd expression: {desc[key]}") from exc
    submit = bindings.htcondor().Submit(desc)
    submit.setQArgs(str(request.count))
    return submit
