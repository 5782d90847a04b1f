"""One chaos scenario, drawn from a seed: hosts, spaces, faults and timings (docs/chaos.md).

Everything random about a run is drawn here from `random.Random(seed)`, so the seed printed
with a failure is the whole recipe: `python benchmarks/chaos.py --seed N` replays the same
draw (the moments of the kills still depend on how fast the machine runs the passes).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

#: How long the storm of one run lasts, in seconds (drawn in this range).
STORM_SECONDS = (2.0, 4.0)
#: The longest a frozen (SIGSTOPped) host stays frozen.
MAX_FREEZE_SECONDS = 1.5
#: Unconfirmed intents expire after this, so the settling passes can forget them.
INTENT_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class SpacePlan:
    """One `local` space of the scenario and its simulated cloud's faults."""

    name: str
    limit: int
    api_errors: float
    page_errors: float
    page_size: int
    slow_call: float
    job_seconds: float
    max_wallclock: float
    heartbeat_seconds: float


@dataclass(frozen=True)
class Scenario:
    seed: int
    hosts: int
    clock_offsets: tuple[float, ...]
    max_clock_skew: float
    storm_seconds: float
    #: the chance that a host process is SIGKILLed, or else SIGSTOPped, at a random moment
    #: of its life (drawn over the typical length of a pass, whatever the machine's load)
    kill_probability: float
    freeze_probability: float
    #: mean seconds between two torn journal lines (None: no explicit torn lines)
    torn_gap: float | None
    #: free bytes left on a small tmpfs state filesystem; None: an ordinary directory
    full_fs_free: int | None
    spaces: tuple[SpacePlan, ...] = field(default=())

    def describe(self) -> str:
        fs = f"full fs ({self.full_fs_free} B free)" if self.full_fs_free is not None else "-"
        errors = "/".join(f"{s.api_errors:.2f}" for s in self.spaces)
        return (f"seed {self.seed}: {self.hosts} hosts (clock offsets "
                f"{', '.join(f'{o:+.1f}' for o in self.clock_offsets)} s), {len(self.spaces)} "
                f"spaces, API errors {errors}, storm {self.storm_seconds:.1f} s, {fs}")


def draw(seed: int) -> Scenario:
    """The scenario for `seed`: 2–4 hosts, 1–3 spaces, 0–30% API errors, a few seconds of
    clock skew, and now and then a state filesystem with almost no room left."""
    rng = random.Random(seed)
    hosts = rng.randint(2, 4)
    skewed = rng.random() < 0.6
    offsets = tuple(round(rng.uniform(-3, 3), 2) if skewed and i else 0.0
                    for i in range(hosts))
    spaces = tuple(
        SpacePlan(name=f"s{i}.local", limit=rng.choice((4, 8, 12, 20)),
                  api_errors=round(rng.uniform(0, 0.3), 3),
                  page_errors=round(rng.choice((0, 0, rng.uniform(0, 0.1))), 3),
                  page_size=rng.choice((2, 5, 50)),
                  slow_call=rng.choice((0, 0, 0.02, 0.05)),
                  job_seconds=round(rng.uniform(1, 4), 2),
                  max_wallclock=round(rng.uniform(2, 6), 2),
                  heartbeat_seconds=rng.choice((10, 20)))
        for i in range(rng.randint(1, 3)))
    return Scenario(
        seed=seed, hosts=hosts, clock_offsets=offsets,
        max_clock_skew=rng.choice((1.0, 60.0)),
        storm_seconds=round(rng.uniform(*STORM_SECONDS), 2),
        kill_probability=rng.uniform(0.15, 0.6), freeze_probability=rng.uniform(0, 0.4),
        torn_gap=rng.uniform(0.3, 2) if rng.random() < 0.7 else None,
        full_fs_free=rng.choice((0, 2048, 8192, 32768)) if rng.random() < 0.12 else None,
        spaces=spaces)


def config_text(scenario: Scenario, state_dir: str, *, clean: bool = False) -> str:
    """The YAML every host runs; `clean` drops the cloud's faults (the settling passes)."""
    lines = [f"state_dir: {state_dir}", f"max_clock_skew_seconds: {scenario.max_clock_skew}",
             "defaults:", "  backoff_seconds: 0.5", "  fizzle_seconds: 30",
             # hosts loop in a few seconds, not cron's minute: every pass is one to check
             "  min_pass_interval_seconds: 0", "spaces:"]
    for s in scenario.spaces:
        api, pages, slow = (0, 0, 0) if clean else (s.api_errors, s.page_errors, s.slow_call)
        lines += [
            f"  {s.name}:", "    cloud: local", f"    processors_limit: {s.limit}",
            f"    max_starting_processors: {max(1, s.limit // 2)}",
            f"    intent_timeout_seconds: {INTENT_TIMEOUT_SECONDS}", "    concurrency: 4",
            "    local:", "      processors: 100000",
            "      flavors: [{name: one, processors: 1}, {name: two, processors: 2}]",
            "      boot_seconds: 0.3", f"      job_seconds: {s.job_seconds}",
            "      no_work_probability: 0.15", "      failure_probability: 0.05",
            f"      api_error_probability: {api}",
            f"      listing_page_error_probability: {pages}",
            f"      listing_page_size: {s.page_size}", f"      slow_call_seconds: {slow}",
            "    machinetypes:",
            f"      big: {{target_share: 3, flavors: [two], max_wallclock_seconds: "
            f"{s.max_wallclock}, heartbeat_seconds: {s.heartbeat_seconds}}}",
            f"      small: {{target_share: 1, flavors: [one], max_wallclock_seconds: "
            f"{s.max_wallclock}, heartbeat_seconds: {s.heartbeat_seconds}}}"]
    return "\n".join(lines) + "\n"
