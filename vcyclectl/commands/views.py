"""Read-only views of the fleet for `list`, `inspect` and `status`, built from the state
directory (or, with `--live`, the cloud). Kept out of `commands/` so they can be tested and
reused without the CLI.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Iterable

from vcyclectl.config import Config, Space
from vcyclectl.errors import NotFound, UsageError
from vcyclectl.state.lock import holder_path, is_locked, read_holder
from vcyclectl.core.machinestate import MachineState
from vcyclectl.core.times import iso
from vcyclectl.core.records import Drains, MachineRecord
from vcyclectl.monitoring.fleet import machinetype_status, record_state
from vcyclectl.state.store import SpaceState, StateDir, valid_machine_name

if TYPE_CHECKING:
    from vcyclectl.core.model import CloudMachine

LIST_FIELDS = ("name", "space", "machinetype", "state", "processors", "created_at", "draining",
               "flavor", "started_at", "zone", "cloud_id")


def record_row(rec: MachineRecord, drains: Drains) -> dict[str, Any]:
    return {"name": rec.name, "space": rec.space, "machinetype": rec.machinetype,
            "state": record_state(rec), "processors": rec.processors,
            "created_at": iso(rec.created_at),
            "draining": drains.for_machine(rec.name, rec.machinetype) is not None,
            "flavor": rec.flavor, "started_at": iso(rec.started_at), "zone": rec.zone,
            "cloud_id": rec.cloud_id}


def machine_row(m: CloudMachine, drains: Drains) -> dict[str, Any]:
    state = m.state if m.state is not MachineState.GONE else MachineState.DELETING
    return {"name": m.name, "space": m.space, "machinetype": m.machinetype,
            "state": state.value, "processors": m.processors, "created_at": iso(m.created_at),
            "draining": drains.for_machine(m.name, m.machinetype) is not None,
            "flavor": m.flavor, "started_at": iso(m.started_at), "zone": m.zone,
            "cloud_id": m.id}


#: What `list --state` accepts: the states a row can show (GONE shows as deleting).
LIST_STATES = tuple(s.value for s in MachineState if s is not MachineState.GONE)


def check_list_filters(spaces: list[Space], machinetype: str | None, state: str | None) -> None:
    """A filter that can never match is a typo, not an empty fleet: a usage error (exit 2)."""
    if state is not None and state not in LIST_STATES:
        raise UsageError(f"--state {state!r}: not a machine state (one of "
                         f"{', '.join(LIST_STATES)})")
    if machinetype is not None:
        known = sorted({mt for space in spaces for mt in space.machinetypes})
        if machinetype not in known:
            raise UsageError(f"--machinetype {machinetype!r}: no such machinetype in "
                             f"{'these spaces' if spaces else 'any space'} (configured: "
                             f"{', '.join(known) or 'none'})")


def machine_rows(config: Config, spaces: Iterable[Space], *, live: bool = False,
                 machinetype: str | None = None, state: str | None = None,
                 detail: bool = False) -> list[dict[str, Any]]:
    """The `list` rows; `detail` adds `heartbeat_age` and `end_reason` (`-o wide`), which
    cost a look into every machine's joboutputs."""
    spaces = list(spaces)
    check_list_filters(spaces, machinetype, state)
    root = StateDir(config.state_dir)
    rows: list[dict[str, Any]] = []
    state_id = root.open(create=False)  # an unmounted share must not look like an empty fleet
    for space in spaces:
        store = root.space(space.name)
        drains = store.drains()
        records = store.records()
        if live:
            from vcyclectl.clouds.registry import build_cloud
            from vcyclectl.clouds.retries import with_retries

            cloud = build_cloud(config, space, state_id)
            found = [machine_row(m, drains) for m in with_retries(cloud.list_machines, "list")
                     if m.state is not MachineState.GONE]
        else:
            found = [record_row(r, drains) for r in records.values()]
        if detail:
            add_details(found, space, store, records)
        rows.extend(found)
    if machinetype:
        rows = [r for r in rows if r["machinetype"] == machinetype]
    if state:
        rows = [r for r in rows if r["state"] == state]
    rows.sort(key=lambda r: (r["space"], r["machinetype"], r["created_at"] or "", r["name"]))
    return rows


def add_details(rows: list[dict[str, Any]], space: Space, store: SpaceState,
                records: dict[str, MachineRecord]) -> None:
    """Heartbeat age and why a machine is ending (ours: a 700 message; its own: the shutdown
    message it wrote), for `list -o wide`."""
    now = time.time()
    beats = {r["name"]: space.machinetypes[r["machinetype"]].heartbeat_name
             for r in rows if r["machinetype"] in space.machinetypes}
    reports = store.reports(beats)
    for row in rows:
        report = reports.get(row["name"])
        rec = records.get(row["name"])
        beat = report.heartbeat_at if report else None
        row["heartbeat_age"] = age(now - beat) if beat is not None else None
        row["end_reason"] = ((rec.message if rec else None)
                             or (report.shutdown_message if report else None))


def age(seconds: float) -> str:
    """A short age, as kubectl shows one: 42s, 7m, 5h, 3d."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def find_machine(config: Config, name: str) -> tuple[Space, SpaceState, MachineRecord | None,
                                                       dict[str, Any] | None]:
    """The space, store, live record and finished entry of a machine name, or NotFound."""
    root = StateDir(config.state_dir)
    root.open(create=False)  # an unmounted share is not "no such machine"
    if not valid_machine_name(name):
        raise NotFound(f"no machine named {name!r}")
    for space in config.spaces.values():
        store = root.space(space.name)
        rec = store.records().get(name)
        if rec is not None:
            return space, store, rec, None
    for space in config.spaces.values():
        store = root.space(space.name)
        for entry in reversed(store.finished()):
            if entry.get("name") == name:
                return space, store, None, entry
    raise NotFound(f"no machine named {name!r} in any configured space")


def inspect_machine(config: Config, name: str, *, live: bool = False) -> dict[str, Any]:
    space, store, rec, finished = find_machine(config, name)
    now = time.time()
    drains = store.drains()
    out: dict[str, Any] = {"name": name, "space": space.name}
    if rec is not None:
        out.update(record_row(rec, drains))
        out["record"] = rec.to_record()
        mt = space.machinetypes.get(rec.machinetype)
        grace = mt.drain_grace_seconds if mt is not None else 0.0
        mark = drains.for_machine(name, rec.machinetype, grace)
        if mark is not None and mt is not None:
            out["shutdowntime"] = iso(mark.shutdown_at(grace))
            out["drain_reason"] = mark.reason
        report = store.reports({name: mt.heartbeat_name if mt else "heartbeat"}).get(name)
        if report is not None:
            out["heartbeat_at"] = iso(report.heartbeat_at)
            out["shutdown_message"] = report.shutdown_message
        outputs = store.joboutputs_dir / name
        if outputs.is_dir():
            out["joboutputs"] = sorted(p.name for p in outputs.iterdir())
    if finished is not None:
        out["state"] = "ended"
        out["finished"] = finished
        out["shutdown_message"] = finished.get("message")
    if live and rec is not None:
        from vcyclectl.clouds.registry import build_cloud
        from vcyclectl.clouds.retries import with_retries

        cloud = build_cloud(config, space, StateDir(config.state_dir).open(create=False))
        match = [m for m in with_retries(cloud.list_machines, "list") if m.name == name]
        out["cloud"] = {"state": match[0].state.value, "state_reason": match[0].state_reason,
                        "addresses": list(match[0].addresses), "raw": dict(match[0].raw)} \
            if match else "not on the cloud"
    out["events"] = store.events(name)
    out["age"] = f"{now - rec.created_at:.0f}s" if rec else None
    return out


def status_rows(config: Config, spaces: Iterable[Space]) -> list[dict[str, Any]]:
    """Per space and machinetype: machines by state, processors, shares, backoff, lock."""
    root = StateDir(config.state_dir)
    root.open(create=False)  # an unmounted share must not look like an empty fleet
    now = time.time()
    rows: list[dict[str, Any]] = []
    for space in spaces:
        store = root.space(space.name)
        last = store.last_pass() or {}
        lock = lock_state(space, store, now)
        for row in machinetype_status(space, store.records(), store.backoff(), store.drains(),
                                      now):
            row.update({**lock, "last_pass": iso(last.get("finished_at")),
                        "last_pass_outcome": last.get("outcome"),
                        # As the last pass's host measured it; beyond max_clock_skew_seconds
                        # that pass withheld time-based deletions.
                        "clock_skew_seconds": last.get("clock_skew_seconds"),
                        "clock_skew_host": last.get("host")})
            rows.append(row)
    return rows


def lock_state(space: Space, store: SpaceState, now: float) -> dict[str, Any]:
    """Who holds the space's lock, and whether longer than `max_pass_seconds` allows: a
    pass past its deadline ends itself (its watchdog), so a lock held longer belongs to a
    process that is frozen (SIGSTOP, a paused VM) or whose host is gone while the shared
    filesystem still honours its lock (docs/operations.md)."""
    holder = read_holder(holder_path(store.path))
    locked = is_locked(store.path)
    held = now - holder.since if locked and holder else None
    overdue = held is not None and held > space.max_pass_seconds
    text = (f"{holder.host}:{holder.pid}" if locked and holder else
            "held" if locked else "free")
    out: dict[str, Any] = {
        "lock": text + (f" OVERDUE {held:.0f}s" if overdue and held is not None else ""),
        "lock_holder": ({"host": holder.host, "pid": holder.pid, "since": iso(holder.since)}
                        if locked and holder else None),
        "lock_overdue": overdue, "lock_warning": None}
    if overdue and holder is not None and held is not None:
        out["lock_warning"] = (
            f"lock held by {holder.host} pid {holder.pid} since {iso(holder.since)} ({held:.0f}s, "
            f"max_pass_seconds {space.max_pass_seconds:g}): that process is frozen or its "
            f"host is unreachable. On {holder.host}, `ps -o stat= -p {holder.pid}`: 'T' "
            f"(stopped) -> `kill -CONT {holder.pid}` (its watchdog then ends it) or `kill -9 "
            f"{holder.pid}`; if the host is down, the shared filesystem releases the lock "
            "when its lease or session expires (docs/operations.md)")
    return out


def doctor_rows(config: Config, spaces: Iterable[Space],
                clock: Callable[[], float] = time.time) -> list[dict[str, Any]]:
    """One row per space: can we list it, are the machinetypes' flavors there, warnings;
    and whether this host's clock agrees with the state directory's filesystem, since a
    reconcile pass on a host whose clock is off withholds time-based deletions."""
    from vcyclectl.errors import VcyclectlError
    from vcyclectl.core.planner import fitting_flavors
    from vcyclectl.clouds.registry import build_cloud

    root = StateDir(config.state_dir)
    state_id = root.open(create=False) if root.exists() else "unset"
    skew: float | None = None
    skew_warning = ""
    if root.exists():
        try:
            skew = root.clock_skew(clock)
        except OSError as exc:
            skew_warning = f"cannot probe the state directory's clock: {exc.strerror or exc}"
        else:
            if abs(skew) > config.max_clock_skew_seconds:
                skew_warning = (f"this host's clock is {abs(skew):.0f}s "
                                f"{'ahead of' if skew > 0 else 'behind'} the state "
                                "directory's filesystem (max_clock_skew_seconds "
                                f"{config.max_clock_skew_seconds:g}): reconcile here withholds "
                                "time-based deletions; fix the clock (NTP)")
    rows: list[dict[str, Any]] = []
    for space in spaces:
        row: dict[str, Any] = {"space": space.name, "cloud": space.cloud, "ok": True,
                               "machines": None, "flavors": None, "warnings": [],
                               "clock_skew_seconds": round(skew, 3) if skew is not None
                               else None}
        if skew_warning:
            row["ok"] = False
            row["warnings"].append(skew_warning)
        if root.exists():
            lock = lock_state(space, root.space(space.name), clock())
            row["lock"] = lock["lock"]
            if lock["lock_warning"]:
                row["ok"] = False
                row["warnings"].append(lock["lock_warning"])
        try:
            cloud = build_cloud(config, space, state_id)
            row["machines"] = len(cloud.list_machines())
            offered = cloud.flavors()
            row["flavors"] = len(offered)
            for mt in space.machinetypes.values():
                fitting, missing = fitting_flavors(mt, offered)
                if missing:
                    row["warnings"].append(f"{mt.name}: flavors not offered: {', '.join(missing)}")
                if not fitting:
                    row["ok"] = False
                    row["warnings"].append(f"{mt.name}: no flavor fits min/max_processors")
            health = getattr(cloud, "health", None)
            if callable(health):
                row["warnings"].extend(health())
        except VcyclectlError as exc:
            row["ok"] = False
            row["warnings"].append(str(exc))
        rows.append(row)
    return rows


def is_time_key(key: str) -> bool:
    """Whether a field holds a time (epoch seconds in the state directory's files)."""
    return key.endswith(("_at", "_until", "_since")) or key in ("at", "since", "until", "time",
                                                                "t")


def iso_times(data: Any, key: str = "") -> Any:
    """`data` with every time field, however deep, as ISO 8601 in UTC (what `inspect`
    shows), field names unchanged."""
    if isinstance(data, dict):
        return {k: iso_times(v, str(k)) for k, v in data.items()}
    if isinstance(data, list):
        return [iso_times(v, key) for v in data]
    if isinstance(data, (int, float)) and not isinstance(data, bool) and is_time_key(key):
        return iso(data)
    return data
