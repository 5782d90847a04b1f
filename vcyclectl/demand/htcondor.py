"""The `htcondor` source: idle and running CPUs of the jobs matching a constraint in a
schedd (VMCondor's access point; DUNE's GlideinWMS factory view), through HTCondor's Python
bindings, imported here and only when such a source is read (`htcondor2`, or the older
`htcondor` module of releases before 24)."""

from __future__ import annotations

import threading
from typing import Any, Iterable

from vcyclectl.config.demand import DemandSource
from vcyclectl.demand.payload import Counts, Unavailable

IDLE, RUNNING = 1, 2
PROJECTION = ("ClusterId", "ProcId", "JobStatus", "RequestCpus")


def query(source: DemandSource) -> tuple[str, list[str]]:
    """The schedd query: the source's constraint, narrowed to idle and running jobs (held,
    completed and removed jobs are work no machine would start)."""
    return (f"({source.constraint}) && (JobStatus == {IDLE} || JobStatus == {RUNNING})",
            list(PROJECTION))


def _value(ad: Any, key: str, default: int) -> int:
    """An attribute's evaluated value (RequestCpus may be an expression)."""
    try:
        value = ad.eval(key) if hasattr(ad, "eval") else ad.get(key, default)
    except (KeyError, TypeError, ValueError, RuntimeError):
        value = ad.get(key, default) if hasattr(ad, "get") else default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return int(value)


def summarise(ads: Iterable[Any]) -> Counts:
    waiting = running = 0
    for ad in ads:
        status, cpus = _value(ad, "JobStatus", 0), max(1, _value(ad, "RequestCpus", 1))
        if status == IDLE:
            waiting += cpus
        elif status == RUNNING:
            running += cpus
    return Counts(waiting=waiting, running=running)


def bindings() -> Any:
    try:
        import htcondor2 as htcondor
    except ImportError:
        try:
            import htcondor
        except ImportError:
            raise Unavailable("the htcondor Python bindings are not installed "
                              "(pip install htcondor)") from None
    return htcondor


def _ask(source: DemandSource) -> list[Any]:
    htcondor = bindings()
    constraint, projection = query(source)
    try:
        htcondor.classad.ExprTree(constraint)
    except Exception:  # noqa: BLE001 - the parser's one exception type differs by release
        raise Unavailable(f"the constraint does not parse as a ClassAd expression: "
                          f"{source.constraint}") from None
    if source.collector or source.schedd:
        collector = htcondor.Collector(source.collector) if source.collector \
            else htcondor.Collector()
        schedd = htcondor.Schedd(collector.locate(htcondor.DaemonType.Schedd, source.schedd))
    else:
        schedd = htcondor.Schedd()
    return list(schedd.query(constraint=constraint, projection=projection))


def read(source: DemandSource) -> Counts:
    """Query within `timeout_seconds`: the bindings block, so the query runs in a daemon
    thread that is left behind (and ends with the process) if it overruns."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["ads"] = _ask(source)
        except Unavailable as exc:
            box["error"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - the bindings raise many kinds
            box["error"] = f"{type(exc).__name__}: {str(exc).strip()[:200]}"

    thread = threading.Thread(target=work, name="htcondor-demand", daemon=True)
    thread.start()
    thread.join(source.timeout_seconds)
    if thread.is_alive():
        raise Unavailable(f"htcondor: timed out after {source.timeout_seconds:g}s")
    if "error" in box:
        raise Unavailable(f"htcondor: {box['error']}")
    return summarise(box["ads"])
