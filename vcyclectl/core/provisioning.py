"""Provisioning policy as data: communities, priorities, campaigns and budget pacing.

Pure: `space_policy(config, space, now, ...)` turns the configuration, the spend so far and
the clock reading it is *given* into a `SpacePolicy`, the planner's optional extra input
(`Observation.policy`). No I/O, no clock: the reconciler (`budget.gather_policy`) and the
simulator (`simulate.py`) gather the inputs, so both run exactly the same decisions.

Why tiers: communities of strictly ordered `priority` become tiers the planner fills one
after another (water-filling by hs06-weighted share inside a tier); a campaign adds a tier
above its community's own, capped at the campaign's processors; backfill communities form
the last tier, and their machines are the ones that make room (docs/policy.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal, Mapping

from vcyclectl.config import Budget, Community, Config, Space

MakeRoom = Literal["drain", "delete"]


@dataclass(frozen=True)
class Tier:
    """One priority level inside one space.

    `shares` maps each machinetype in the tier to its share among the tier's machinetypes
    (community `target_share` split over the community's machinetypes by their own
    `target_share`). `caps` bounds, per machinetype, the processors of that machinetype up to
    which this tier applies (a campaign's allowance); a machinetype absent from `caps` is
    bounded only by its limits. `labels` name the community (or campaign) in plan reasons.
    """

    priority: float
    shares: Mapping[str, float]
    caps: Mapping[str, int] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    backfill: bool = False


@dataclass(frozen=True)
class SpaceMoney:
    """This space's slice of a budget: what pacing and the hard ceiling need.

    `finished_spend` is what machines of this space created inside the window and already
    ended have cost (the ledger); the planner adds the running machines itself, from the
    records it sees, so the freshest view of this space is always the planner's own.
    """

    budget: str
    currency: str
    allotment: float
    finished_spend: float
    start_at: float
    end_at: float
    reserve_seconds: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SpacePolicy:
    """What the planner needs to apply the provisioning policy in one space."""

    tiers: tuple[Tier, ...]
    make_room: Mapping[str, MakeRoom] = field(default_factory=dict)
    money: SpaceMoney | None = None

    @cached_property
    def backfill_machinetypes(self) -> frozenset[str]:
        """Backfill machinetypes without a raised (campaign) tier: these may make room.

        Made once per policy (the planner asks per machine and per tier, ~100,000 times in
        a month's `simulate`): a policy is frozen, and nothing changes its tiers' maps
        after `space_policy` made them; `dataclasses.replace` makes a new policy, which
        makes its own."""
        raised = {mt for t in self.tiers if not t.backfill for mt in t.shares}
        return frozenset(mt for t in self.tiers if t.backfill for mt in t.shares
                         if mt not in raised)


#: A reading is re-read once `max_age_seconds` old, so one older than that by more than
#: a pass takes (this grace) means re-reading failed or the clock jumped: not trusted.
STALE_GRACE_SECONDS = 60.0


@dataclass(frozen=True)
class DemandReading:
    """A community's waiting work as its demand source last reported it (docs/demand.md).

    Gathered by `vcyclectl.demand` (I/O, cached in the state directory) and handed to the
    pure planner in `Observation.demand`, one per machinetype of the community. `waiting`
    is processors of work waiting; `unavailable` says why there is no usable reading (the
    source failed, timed out, answered nonsense), and then the planner probes as without a
    source: a failing source is never taken for "no work" nor for "endless work".
    """

    community: str
    source: str                       # "slurm", "htcondor", "command", "url"
    where: str = ""                   # "in partition euclid"
    taken_at: float = 0.0
    max_age_seconds: float = 300.0
    waiting: int = 0
    running: int | None = None
    unavailable: str = ""
    headroom: float = 0.0
    headroom_processors: int = 0
    #: How long a booted machine takes to start taking the waiting work (join the batch
    #: system, get a job); one younger than this when the reading was taken is on its way.
    join_seconds: float = 300.0

    def problem(self, now: float) -> str:
        """Why this reading may not steer the plan ("" when it may)."""
        if self.unavailable:
            return self.unavailable
        age = now - self.taken_at
        if age > self.max_age_seconds + STALE_GRACE_SECONDS:
            return f"last reading {age:.0f}s old (max_age_seconds {self.max_age_seconds:g})"
        return ""

    @property
    def ceiling(self) -> int:
        """Processors the community may be given beyond what it runs: what is waiting plus
        the headroom (none when nothing waits: no work, no machines)."""
        if self.waiting <= 0:
            return 0
        extra = -(-self.waiting * self.headroom // 1) if self.headroom else 0
        return self.waiting + int(extra) + self.headroom_processors

    @property
    def signal(self) -> str:
        """The reading in words, as plan reasons quote it."""
        verb = "pending" if self.source == "slurm" else \
            "idle" if self.source == "htcondor" else "waiting"
        text = f"{self.source}: {self.waiting} CPUs {verb}"
        return f"{text} {self.where}" if self.where else text

    def to_json(self, now: float) -> dict[str, object]:
        out: dict[str, object] = {"community": self.community, "source": self.source,
                                  "where": self.where, "waiting_processors": self.waiting,
                                  "running_processors": self.running,
                                  "taken_at": self.taken_at or None,
                                  "age_seconds": round(now - self.taken_at, 1)
                                  if self.taken_at else None}
        problem = self.problem(now)
        if problem:
            out["unavailable"] = problem
        return out


@dataclass
class _Group:
    shares: dict[str, float] = field(default_factory=dict)
    caps: dict[str, int] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


def paced_rate(allotment: float, spent: float, now: float, end_at: float) -> float:
    """Spend per hour that, kept up from now to `end_at`, lands the total on `allotment`."""
    hours = (end_at - now) / 3600.0
    if hours <= 0:
        return 0.0
    return max(0.0, allotment - spent) / hours


def community_of(config: Config, space: str, machinetype: str) -> Community | None:
    for community in config.communities.values():
        if community.covers(space, machinetype):
            return community
    return None


def budget_of(config: Config, space: str) -> Budget | None:
    for budget in config.budgets.values():
        if space in budget.spaces:
            return budget
    return None


def allotment(config: Config, budget: Budget, space: str) -> float:
    """This space's fixed slice of the budget: by `space_shares`, else by processors_limit,
    else equal. Fixed slices are what make budgets safe across hosts (docs/policy.md)."""
    if budget.space_shares:
        weights = {s: budget.space_shares.get(s, 0.0) for s in budget.spaces}
    else:
        weights = {s: float(config.spaces[s].processors_limit) if s in config.spaces else 0.0
                   for s in budget.spaces}
    total = sum(weights.values())
    if total <= 0:
        return budget.amount / len(budget.spaces)
    return budget.amount * weights.get(space, 0.0) / total


def space_money(config: Config, space: Space, finished_spend: float) -> SpaceMoney | None:
    budget = budget_of(config, space.name)
    if budget is None:
        return None
    return SpaceMoney(
        budget=budget.name, currency=budget.currency,
        allotment=allotment(config, budget, space.name), finished_spend=finished_spend,
        start_at=budget.start_at, end_at=budget.end_at,
        reserve_seconds={n: mt.max_wallclock_seconds + budget.reserve_margin_seconds
                         for n, mt in space.machinetypes.items()})


def space_policy(config: Config, space: Space, now: float, *,
                 other_usage: Mapping[str, int] | None = None,
                 finished_spend: float = 0.0) -> SpacePolicy | None:
    """The policy for one pass over `space` at `now`; None when no policy is configured,
    so the planner runs exactly as it always did.

    `other_usage` is each community's processors in the *other* spaces (for campaigns given
    in processors, which span spaces); `finished_spend` is this space's ledger spend inside
    its budget's window.
    """
    if not config.has_policy:
        return None
    other_usage = other_usage or {}
    top = max((c.priority for c in config.communities.values()), default=0)
    groups: dict[tuple[float, bool], _Group] = {}

    def add(key: tuple[float, bool], mt: str, share: float, label: str,
            cap: int | None = None) -> None:
        group = groups.setdefault(key, _Group())
        group.shares[mt] = max(group.shares.get(mt, 0.0), share)
        group.labels[mt] = label
        if cap is not None:
            group.caps[mt] = max(group.caps.get(mt, 0), cap)

    make_room: dict[str, MakeRoom] = {}
    for mt_name, mt in sorted(space.machinetypes.items()):
        community = community_of(config, space.name, mt_name)
        if community is None:
            add((0, False), mt_name, mt.target_share, mt_name)
            continue
        siblings = [m for n, m in space.machinetypes.items() if community.covers(space.name, n)]
        total = sum(m.target_share for m in siblings)
        fraction = mt.target_share / total if total > 0 else 0.0
        share = community.target_share * fraction
        if community.backfill:
            add((-1, True), mt_name, share, community.name)
            make_room[mt_name] = community.make_room
        else:
            add((community.priority, False), mt_name, share, community.name)
        for campaign in config.campaigns:
            if campaign.community != community.name or not campaign.active(now):
                continue
            priority = campaign.priority if campaign.priority is not None else top + 1
            if campaign.processors is not None:
                allowance: int | None = max(0, campaign.processors -
                                            other_usage.get(community.name, 0))
            elif campaign.share is not None:
                allowance = int(campaign.share * space.processors_limit)
            else:
                allowance = None
            cap = None if allowance is None else int(allowance * fraction)
            add((priority, False), mt_name, max(share, 1e-9), f"campaign {campaign.name}", cap)

    tiers = [Tier(priority=priority, backfill=backfill, shares=group.shares, caps=group.caps,
                  labels=group.labels)
             for (priority, backfill), group in sorted(groups.items(),
                                                       key=lambda kv: (kv[0][1], -kv[0][0]))]
    return SpacePolicy(tiers=tuple(tiers), make_room=make_room,
                       money=space_money(config, space, finished_spend))
