"""The built-in `local` cloud: a simulated tenancy kept in files under the state directory.

It lets a new user see a real reconcile with no cloud account, and it is what most tests
run against. Machines are entries in a journal (`STATE_DIR/local/SPACE/machines.jsonl`);
what a machine is doing is a pure function of its creation time, the wall clock and
random draws seeded by its name, so every process on every host sees the same machine the
same way: it boots for `boot_seconds`, then either fails (`failure_probability`), finds no
work and stops soon with "300 No more work available from task queue"
(`no_work_probability`), or runs its job for about `job_seconds` and stops with
"200 Intended work completed ok". Running machines heartbeat. Any call may raise a
transient error (`api_error_probability`); a create past `processors` raises QuotaExceeded.

Reports: by default the driver hands each machine's heartbeat and shutdown message to the
reconciler in `CloudMachine`. With `report_url` set it does not; instead, whenever the
cloud is listed, each simulated VM calls home as a real one would: a running VM PUTs
`joboutputs/heartbeat`, a stopped one PUTs `joboutputs/shutdown_message`, to `vcyclectl
serve` at that URL with its bearer token. The listing is the simulation's only clock tick
(nothing runs between passes), so reporting there gives the reconciler exactly what real
VMs heartbeating every pass would, over the real HTTP path. The token is the one the VM's
user_data carried (`##user_data_machine_token##`): the same HMAC of its name.

Like a real cloud it does not trust its callers: writes take its own file lock, so several
processes may call it at once.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from vcyclectl.clouds.contract import CloudContext
from vcyclectl.clouds.local.options import LocalOptions
from vcyclectl.errors import IncompleteListing, QuotaExceeded, Transient
from vcyclectl.state.files import (JournalTail, append_lines, dumps_line, ensure_dir, open_private,
                                   write_atomic)
from vcyclectl.core.model import CloudMachine, Flavor, MachineSpec, MachineState

MSG_DONE = "200 Intended work completed ok"
MSG_NO_WORK = "300 No more work available from task queue"


@dataclass(frozen=True)
class _Entry:
    id: str
    name: str
    space: str
    machinetype: str
    processors: int
    flavor: str
    created_at: float
    state_id: str

    def to_record(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Life:
    """A simulated machine's whole life, decided by its seed: when it starts and stops."""

    started_at: float
    stopped_at: float
    failed: bool
    message: str | None
    #: Stopped by the cloud taking its spot capacity back, not by the VM (never an abort).
    preempted: bool = False


def life_of(name: str, created_at: float, options: LocalOptions, *, spot: bool = False) -> Life:
    rng = random.Random(f"{options.seed}:{name}")
    boot_done = created_at + options.boot_seconds
    if rng.random() < options.failure_probability:
        return Life(boot_done, boot_done, True, None)
    if rng.random() < options.no_work_probability:
        life = Life(boot_done, boot_done + 0.1 * options.job_seconds, False, MSG_NO_WORK)
    else:
        life = Life(boot_done, boot_done + options.job_seconds * rng.uniform(0.75, 1.25), False,
                    MSG_DONE)
    return preempted_life(name, life, options) if spot else life


def preempted_life(name: str, life: Life, options: LocalOptions) -> Life:
    """A spot machine's life cut short by pre-emption, with `preemption_probability`, at a
    uniform moment while it runs. Its own random stream, so machines that are not pre-empted
    live exactly the lives they lived before this knob existed."""
    if options.preemption_probability <= 0:
        return life
    rng = random.Random(f"{options.seed}:{name}:preemption")
    if rng.random() >= options.preemption_probability:
        return life
    at = life.started_at + rng.random() * (life.stopped_at - life.started_at)
    return Life(life.started_at, at, False, None, preempted=True)


#: What a pre-empted machine's listing says, like EC2's `Server.SpotInstanceTermination`.
PREEMPTED_REASON = "pre-empted: spot capacity reclaimed by the cloud"


class LocalCloud:
    """Driver for `cloud: local`."""

    def __init__(self, context: CloudContext[LocalOptions]) -> None:
        self.context = context
        self.options: LocalOptions = context.options
        self.folder = Path(context.state_dir) / "local" / context.space
        self.journal = self.folder / "machines.jsonl"
        self.lock_path = self.folder / "lock"
        self._entries: dict[str, _Entry] = {}
        self._tail = JournalTail(self.journal)
        self._lines = 0
        self._mutex = threading.Lock()
        self._api_rng = random.Random()
        #: The wall clock the simulated machines live by; a test may hand in its own.
        self.clock: Callable[[], float] = time.time

    # -- the contract -----------------------------------------------------------------------
    def list_machines(self) -> list[CloudMachine]:
        self._slow("list")
        if self._api_error():
            raise IncompleteListing("local cloud: simulated API error while listing")
        with self._mutex:
            self._refresh()
            entries = list(self._entries.values())
        self._page_faults(len(entries))
        now = self.clock()
        machines = [self._to_machine(e, now) for e in entries
                    if e.space == self.context.space and e.state_id == self.context.state_id]
        reporting = [m for m in machines if self._report_url(m.machinetype)]
        if reporting:
            _report_over_http(reporting, self._report_url, Path(self.context.state_dir), now)
        return [self._reports_hidden(m) for m in machines]

    def _report_url(self, machinetype: str) -> str | None:
        url: str | None = self.context.options_for(machinetype).report_url
        return url

    def _reports_hidden(self, machine: CloudMachine) -> CloudMachine:
        """With `report_url`, what a VM says reaches the reconciler only through `serve`."""
        if not self._report_url(machine.machinetype):
            return machine
        return dataclasses.replace(machine, heartbeat_at=None, shutdown_message=None)

    def create(self, spec: MachineSpec) -> CloudMachine:
        if self._api_error():
            raise Transient("local cloud: simulated API error on create")
        with self._mutex, self._file_lock():
            self._refresh()
            for entry in self._entries.values():
                if entry.name == spec.name:
                    # idempotent on the name
                    return self._reports_hidden(self._to_machine(entry, self.clock()))
            used = sum(e.processors for e in self._entries.values())
            if used + spec.processors > self.options.processors:
                raise QuotaExceeded(f"local cloud quota: {used} of {self.options.processors} "
                                    f"processors in use, {spec.processors} more refused")
            entry = _Entry(id=uuid.uuid4().hex, name=spec.name, space=spec.space,
                           machinetype=spec.machinetype, processors=spec.processors,
                           flavor=spec.flavor.name, created_at=self.clock(),
                           state_id=spec.state_id)
            append_lines(self.journal, [{"put": entry.to_record()}])
            self._offset_after_own_write()
            self._entries[entry.id] = entry
        self._slow("create")
        return self._reports_hidden(self._to_machine(entry, entry.created_at))

    def delete(self, machine: CloudMachine) -> None:
        if self._api_error():
            raise Transient("local cloud: simulated API error on delete")
        with self._mutex, self._file_lock():
            self._refresh()
            if machine.id not in self._entries:
                return  # gone already
            append_lines(self.journal, [{"del": machine.id}])
            self._offset_after_own_write()
            self._entries.pop(machine.id, None)
            self._compact_if_large()
        self._slow("delete")

    def flavors(self) -> list[Flavor]:
        self._slow("flavors")
        if self.options.flavors:
            return [Flavor(f.name, f.processors, f.memory_mb, f.price_per_hour, f.spot,
                           self.options.currency) for f in self.options.flavors]
        n = self.options.processors_per_machine
        return [Flavor(f"local-{n}", n)]

    # -- simulation -----------------------------------------------------------------------
    def _to_machine(self, entry: _Entry, now: float) -> CloudMachine:
        options: LocalOptions = self.context.options_for(entry.machinetype)
        spot = any(f.name == entry.flavor and f.spot for f in options.flavors)
        life = life_of(entry.name, entry.created_at, options, spot=spot)
        started_at: float | None = None
        stopped_at: float | None = None
        heartbeat: float | None = None
        message = None
        if now < life.started_at:
            state = MachineState.STARTING
        elif life.failed:
            state, stopped_at = MachineState.FAILED, life.stopped_at
        elif now < life.stopped_at:
            state, started_at = MachineState.RUNNING, life.started_at
            heartbeat = now if options.heartbeat else None
        else:
            state, started_at, stopped_at = MachineState.STOPPED, life.started_at, life.stopped_at
            heartbeat = life.stopped_at if options.heartbeat else None
            message = life.message
        return CloudMachine(
            id=entry.id, name=entry.name, space=entry.space, machinetype=entry.machinetype,
            state=state, processors=entry.processors, created_at=entry.created_at,
            started_at=started_at, stopped_at=stopped_at, flavor=entry.flavor, zone="local",
            spot=spot, preempted=life.preempted and state is MachineState.STOPPED,
            state_reason=PREEMPTED_REASON if life.preempted and state is MachineState.STOPPED
            else None, heartbeat_at=heartbeat, shutdown_message=message, raw=entry.to_record())

    def _slow(self, call: str) -> None:
        """Take as long as `call_seconds` says this call takes (a slow or stuck cloud)."""
        seconds = self.options.call_seconds.get(call, 0.0)
        if seconds > 0:
            time.sleep(seconds)

    def _api_error(self) -> bool:
        """Whether this call fails (`api_error_probability`), after its simulated latency."""
        if self.options.slow_call_seconds > 0:
            time.sleep(self._api_rng.uniform(0, self.options.slow_call_seconds))
        p = self.options.api_error_probability
        return p > 0 and self._api_rng.random() < p

    def _page_faults(self, total: int) -> None:
        """The listing's pages as a real API serves them: a page that fails, or one that
        comes back with fewer machines than the listing's total promised, is an incomplete
        listing (as the real drivers treat a short or failed page), never a shorter fleet."""
        p = self.options.listing_page_error_probability
        if p <= 0:
            return
        size = self.options.listing_page_size
        pages = max(1, -(-total // size))
        for page in range(1, pages + 1):
            if self._api_rng.random() < p:
                how = "failed" if self._api_rng.random() < 0.5 else "came back cut short"
                raise IncompleteListing(f"local cloud: listing page {page} of {pages} {how}")

    # -- the journal ----------------------------------------------------------------------
    def _refresh(self) -> None:
        """Apply what was appended since the last call (all of it after a compaction)."""
        restart, lines = self._tail.read_new()
        if restart:
            self._entries, self._lines = {}, 0
        self._lines += len(lines)
        for line in lines:
            if "put" in line:
                data = line["put"]
                self._entries[data["id"]] = _Entry(**data)
            elif "del" in line:
                self._entries.pop(line["del"], None)

    def _offset_after_own_write(self) -> None:
        self._refresh()

    def _compact_if_large(self) -> None:
        if self._lines < max(2000, 3 * len(self._entries)):
            return
        data = b"".join(dumps_line({"put": e.to_record()}) for e in self._entries.values())
        write_atomic(self.journal, data)
        self._refresh()  # follow the new file (re-reads what we just wrote)

    def _file_lock(self) -> "_FileLock":
        return _FileLock(self.lock_path)


def _report_over_http(machines: list[CloudMachine], url_of: Callable[[str], str | None],
                      state_dir: Path, now: float) -> None:
    """Each simulated VM PUTs what a real one would; a VM that cannot call home carries on
    (as a real one does), and the first failure ends this listing's reports, so a `serve`
    that is down costs one timeout, not one per machine."""
    import http.client
    from urllib.parse import urlsplit

    from vcyclectl import log
    from vcyclectl.vm.tokens import machine_token

    connections: dict[str, http.client.HTTPConnection] = {}
    try:
        for m in machines:
            if m.state is MachineState.RUNNING and m.heartbeat_at is not None:
                filename, body = "heartbeat", f"{now:.3f}\n"
            elif m.state is MachineState.STOPPED and m.shutdown_message:
                filename, body = "shutdown_message", m.shutdown_message + "\n"
            else:
                continue
            base = urlsplit(url_of(m.machinetype) or "")
            conn = connections.get(base.netloc)
            if conn is None:
                cls = (http.client.HTTPSConnection if base.scheme == "https"
                       else http.client.HTTPConnection)
                conn = connections[base.netloc] = cls(base.netloc, timeout=5)
            path = (f"{base.path.rstrip('/')}/machines/{m.space}/{m.name}/joboutputs/"
                    f"{filename}")
            try:
                conn.request("PUT", path, body=body.encode(), headers={
                    "Authorization": f"Bearer {machine_token(state_dir, m.name)}"})
                status = conn.getresponse()
                status.read()
            except (OSError, http.client.HTTPException) as exc:
                log.warning("local cloud: simulated VM cannot report", machine=m.name,
                            error=str(exc))
                return
            if status.status >= 400:
                log.debug("local cloud: report refused", machine=m.name, status=status.status)
    finally:
        for conn in connections.values():
            conn.close()


class _FileLock:
    """The simulated cloud's own lock: its "API server" serialises writes from any process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: Any = None

    def __enter__(self) -> "_FileLock":
        import portalocker

        ensure_dir(self.path.parent)
        self.handle = open_private(self.path)
        portalocker.lock(self.handle, portalocker.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        import portalocker

        portalocker.unlock(self.handle)
        self.handle.close()
