"""Step 1 of a pass: list the cloud (all pages) and read the state directory, noting when
the looking started, and the guards on what was seen: an observation too old to act on
(a stall), and a listing that lost the confirmed fleet."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

from vcyclectl import log
from vcyclectl.clouds.contract import Cloud
from vcyclectl.clouds.retries import with_retries
from vcyclectl.config import Config, Space
from vcyclectl.core import planner
from vcyclectl.core.model import CloudMachine, Flavor, MachineState
from vcyclectl.core.provisioning import DemandReading
from vcyclectl.core.records import MachineRecord
from vcyclectl.errors import VcyclectlError
from vcyclectl.state.store import SpaceState

#: Acting on an observation older than this is refused (the space fails this pass, the
#: next pass observes afresh). The bound is half the shortest heartbeat limit of the
#: space's machinetypes, so a stall can never stretch past a heartbeat interval, within a
#: floor that a merely loaded host never reaches between listing and acting, and a cap.
OBSERVATION_AGE_FLOOR = 5.0
OBSERVATION_AGE_CAP = 300.0
#: Fault-injection hook for tests (docs/state.md): seconds to sleep right after the cloud
#: listing, as a SIGSTOP, a paused VM or a slow filesystem would.
STALL_ENV = "VCYCLECTL_FAULT_STALL_AFTER_LISTING"
#: Fault-injection hook for tests (docs/state.md): seconds this host's clock is off, as a
#: host with a skewed clock would read it (benchmarks/chaos.py runs hosts a few seconds apart).
CLOCK_OFFSET_ENV = "VCYCLECTL_CLOCK_OFFSET"


class StaleObservation(VcyclectlError):
    """The pass stalled between observing and acting: what it saw may no longer be so."""


def max_observation_age(space: Space) -> float:
    """How old an observation may be when the pass acts on it (OBSERVATION_AGE_*)."""
    limits = [mt.heartbeat_limit / 2 for mt in space.machinetypes.values()
              if mt.heartbeat_checked]
    return max(OBSERVATION_AGE_FLOOR, min([OBSERVATION_AGE_CAP, *limits]))


def injected_stall() -> None:
    """Sleep as long as the fault-injection hook asks (never set outside tests)."""
    raw = os.environ.get(STALL_ENV)
    if raw:
        seconds = float(raw)
        log.warning("fault injection: stalling after the listing", seconds=seconds)
        time.sleep(seconds)


def host_clock(clock: Callable[[], float]) -> Callable[[], float]:
    """`clock`, shifted by the fault-injection hook when it is set (never in production)."""
    raw = os.environ.get(CLOCK_OFFSET_ENV)
    if not raw:
        return clock
    offset = float(raw)
    return lambda: clock() + offset


@dataclass
class Observed:
    """What one pass saw, and when it started looking: every age (heartbeat, wallclock,
    fizzle) is judged against `taken_at`, never against the clock after a possible stall,
    which would count the stall as heartbeat age."""

    machines: list[CloudMachine]
    flavors: list[Flavor]
    observation: planner.Observation
    taken_at: float = 0.0


class _HeartbeatFiles(Mapping[str, str]):
    """machine name -> its machinetype's heartbeat file, looked up only for the machines that
    reported something (a dict of every record would cost more than the lookups)."""

    def __init__(self, space: Space, records: Mapping[str, MachineRecord]) -> None:
        self.space, self.records = space, records

    def __getitem__(self, name: str) -> str:
        rec = self.records.get(name)
        mt = self.space.machinetypes.get(rec.machinetype) if rec else None
        if mt is None:
            raise KeyError(name)
        return mt.heartbeat_name

    def __iter__(self) -> Iterator[str]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)


def observe(space: Space, cloud: Cloud, store: SpaceState,
            clock: Callable[[], float] = time.time, not_after: float | None = None
            ) -> Observed:
    """List the cloud (all pages, retried) and read the state directory; `not_after` (the
    pass's deadline, monotonic) bounds waits for the cloud's rate limit.

    The time is taken before the listing: a heartbeat or a stop the listing shows happened
    before the listing ended, so judging it against the start errs only towards keeping.
    """
    taken_at = clock()
    machines = with_retries(cloud.list_machines, "list", not_after=not_after)
    injected_stall()
    flavors = with_retries(cloud.flavors, "flavors", not_after=not_after)
    records = store.records()
    observation = planner.Observation(
        machines=machines, records=records, reports=store.reports(_HeartbeatFiles(space, records)),
        drains=store.drains(), backoff=store.backoff(), flavors=flavors)
    return Observed(machines, flavors, observation, taken_at)


def read_demand(config: Config, space: Space,
                clock: Callable[[], float] = time.time) -> dict[str, DemandReading]:
    """The demand readings of the space's communities (docs/demand.md), read before the
    listing: a slow source then delays the pass but never ages the observation it acts on.
    Empty without `demand:` blocks; never raises (a failing source is a reading that says
    why, and the planner probes as before)."""
    from vcyclectl.demand import gather, has_sources

    return gather(config, space, clock) if has_sources(config, space) else {}


#: A listing that shows none of the machines the cloud had confirmed (even one) is treated
#: as a broken view (wrong endpoint, tags, region, state id, or a cloud-side bug), not as a
#: fleet that vanished, unless the operator says otherwise: a small fleet is leaked as
#: surely as a large one, and a fleet that really vanished costs one command to confirm.
EMPTY_LISTING_GUARD = 1


def vanished_fleet(observed: Observed) -> int:
    """How many confirmed machines an empty listing would make us forget (0 if not empty)."""
    if observed.machines:
        return 0
    return sum(1 for r in observed.observation.records.values()
               if r.cloud_id and r.deleting_at is None and r.state is not MachineState.CREATING)
