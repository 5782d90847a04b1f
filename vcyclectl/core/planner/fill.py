"""Step 3: creation. One fill loop (`fill_tier`) for plans with and without a provisioning
policy: machinetypes are water-filled by hs06-weighted share under every limit (space and
machinetype `processors_limit`, `max_starting_processors`, `max_creates_per_pass`, a
campaign's cap, the budget's pace and money, a demand signal's ceiling), and a note says
what stopped it."""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

from vcyclectl.core import rules
from vcyclectl.config import Machinetype
from vcyclectl.core.model import Action, ActionKind, Flavor, MachineState
from vcyclectl.core.planner.base import _Seen, fitting_flavors
from vcyclectl.core.planner.probing import _Probing
from vcyclectl.core.provisioning import SpaceMoney, SpacePolicy, Tier, paced_rate


@dataclass
class _Room:
    """Capacity left while the policy fills tiers (processors, starts, money)."""

    free: float
    start_room: float
    creates_left: int
    rate: float = math.inf
    money: float = math.inf
    mt_used: dict[str, int] = field(default_factory=dict)
    mt_starting: dict[str, int] = field(default_factory=dict)
    mt_weighted: dict[str, float] = field(default_factory=dict)
    created_processors: int = 0
    created_rate: float = 0.0
    created_money: float = 0.0
    served: set[str] = field(default_factory=set)
    stopped_by: str = ""
    had_candidates: bool = False
    #: Per community with a demand signal: processors it may still be given (signals.py).
    demand_left: dict[str, float] = field(default_factory=dict)


@dataclass
class _Usage:
    """Per machinetype: processors counted, starting, hs06-weighted, spend rate; and the
    money of this budget's running machines (realized so far, reserved to their end)."""

    used: dict[str, int] = field(default_factory=dict)
    starting: dict[str, int] = field(default_factory=dict)
    weighted: dict[str, float] = field(default_factory=dict)
    rate: dict[str, float] = field(default_factory=dict)
    realized: float = 0.0
    reserved: float = 0.0
    unrealized: dict[str, float] = field(default_factory=dict)


class _Filling(_Probing):
    #: (`leaving_changes`, money, usage) of the last `usage`; see there.
    _usage_memo: tuple[int, SpaceMoney | None, _Usage] | None = None
    #: Per machinetype, `may_create` and its usable flavors: the same all plan long (drains,
    #: backoff and aborts are settled before the first fill), asked once per fill of a tier.
    _creatable: dict[str, bool] | None = None
    _usable: dict[tuple[str, bool], list[Flavor]] | None = None

    def create(self) -> None:
        """Without a provisioning policy, every machinetype is one tier, weighted by its own
        `target_share`: the same fill loop as the policy's, with no money and no caps."""
        tier = Tier(priority=0.0, shares={name: mt.target_share
                                          for name, mt in self.space.machinetypes.items()})
        room = self.room(self.usage(None), None)
        self.fill_tier(tier, room, dry=False)
        if room.stopped_by and room.had_candidates:
            self.notes.append(room.stopped_by)

    def may_create(self, mt: Machinetype) -> bool:
        mark = self.obs.drains.for_machinetype(mt.name)
        if mark is not None and mark.in_force(self.now):
            self.notes.append(f"{mt.name}: drained, no new machines")
            return False
        if mark is not None:  # scheduled ahead: made until then, told its shutdowntime
            self.notes.append(f"{mt.name}: drain scheduled in {mark.starts_at - self.now:.0f}s; "
                              "new machines get that MJF shutdowntime")
        if mt.target_share <= 0:
            return False
        until = rules.backoff_until(mt, self.obs.backoff, self.aborts)
        if self.now < until and self.work_waiting(mt.name) is not None:
            self.say(mt.name, f"{mt.name}: backoff set aside: "
                     f"{self.obs.demand[mt.name].signal}")
        elif self.now < until:
            self.notes.append(f"{mt.name}: in backoff for {until - self.now:.0f}s more "
                              "(a machine aborted)")
            return False
        return True

    def flavors_for(self, mt: Machinetype) -> list[Flavor]:
        """The machinetype's flavors, in its order, that fit min/max_processors."""
        fitting, unknown = fitting_flavors(mt, self.obs.flavors)
        if unknown:
            self.notes.append(f"{mt.name}: flavors not offered by the cloud: "
                              f"{', '.join(unknown)}")
        if not fitting:
            self.notes.append(f"{mt.name}: no flavor fits min_processors {mt.min_processors} "
                              f"/ max_processors {mt.max_processors}")
        return fitting

    def price_of(self, s: _Seen) -> float:
        """What the machine costs per hour: its record's price at creation, else its
        flavor's list price, else nothing known (0)."""
        if s.record is not None and s.record.price_per_hour is not None:
            return s.record.price_per_hour
        flavor = (s.machine.flavor if s.machine is not None else None) or \
            (s.record.flavor if s.record is not None else None)
        if self._list_prices is None:  # once per plan: this is asked once per machine
            self._list_prices = {}
            for f in self.obs.flavors:
                if f.price_per_hour is not None:
                    self._list_prices.setdefault(f.name, f.price_per_hour)  # the first listed
        # None (adopted, of a flavor the cloud no longer lists): nothing known, 0
        return self._list_prices.get(flavor, 0.0) if flavor is not None else 0.0

    def usage(self, money: SpaceMoney | None) -> _Usage:
        """What counts against limits, per machinetype, and the money: `make_room` and the
        fill both ask; walked again only if a machine's `leaving` changed in between."""
        memo = self._usage_memo
        if memo is not None and memo[0] == self.leaving_changes and memo[1] is money:
            return memo[2]
        usage = self._walk_usage(money)
        self._usage_memo = (self.leaving_changes, money, usage)
        return usage

    def _walk_usage(self, money: SpaceMoney | None) -> _Usage:
        """One walk over the machines: per machinetype what counts against limits, and the
        money; rooms for any set of machinetypes are then derived without walking again."""
        usage = _Usage()
        used, weighted, starting, rate = usage.used, usage.weighted, usage.starting, usage.rate
        start_at = money.start_at if money is not None else 0.0
        reserve = money.reserve_seconds if money is not None else {}
        now = self.now
        creating, starting_state = MachineState.CREATING, MachineState.STARTING
        for s in self.seen:  # hot: once per machine, so the money walk is apart
            if s.pending_delete or not s.leaving:  # `_Seen.counts`, inline
                mt, processors = s.machinetype, s.processors
                used[mt] = used.get(mt, 0) + processors
                weighted[mt] = weighted.get(mt, 0.0) + processors * s.hs06_per_processor
                if s.state is creating or s.state is starting_state:
                    starting[mt] = starting.get(mt, 0) + processors
        if money is None:
            return usage
        for s in self.seen:
            if (s.record is not None and s.record.finished) or s.created_at < start_at:
                continue  # ended ones are in `finished_spend`; older ones are not this budget's
            mt = s.machinetype
            price = self.price_of(s)
            age = max(0.0, now - s.created_at)
            held = price * max(age, reserve.get(mt, 0.0)) / 3600.0
            usage.realized += price * age / 3600.0
            usage.reserved += held
            usage.unrealized[mt] = usage.unrealized.get(mt, 0.0) + held - price * age / 3600.0
            if s.pending_delete or not s.leaving:  # `_Seen.counts`, inline
                rate[mt] = rate.get(mt, 0.0) + price
        return usage

    def room(self, usage: _Usage, money: SpaceMoney | None,
             without: frozenset[str] = frozenset()) -> _Room:
        """Free capacity now (processors, starts, creations, spend rate, budget), as if the
        machines of the machinetypes in `without` were gone.

        Money: every machine created in the window is paid for up front until its
        `max_wallclock_seconds` (plus the budget's margin), so the hard ceiling holds even
        if every machine runs to its end; pacing allows the spend rate that lands the
        budget's slice for this space on its end date. Machines of `without` give back the
        part of that up-front payment they have not yet used, as they would if gone now.
        """
        space = self.space
        keep = [mt for mt in usage.used if mt not in without]
        room = _Room(free=float(space.processors_limit - sum(usage.used[mt] for mt in keep)),
                     start_room=(float(space.max_starting_processors -
                                       sum(usage.starting.get(mt, 0) for mt in keep))
                                 if space.max_starting_processors is not None else math.inf),
                     creates_left=space.max_creates_per_pass,
                     mt_used={mt: usage.used[mt] for mt in keep},
                     mt_starting={mt: usage.starting[mt] for mt in keep
                                  if mt in usage.starting},
                     mt_weighted={mt: usage.weighted[mt] for mt in keep})
        if money is not None:
            if not money.start_at <= self.now < money.end_at:
                self.notes.append(f"budget {money.budget}: outside its window, nothing is "
                                  "created")
                room.rate = room.money = 0.0
            else:
                rate = sum(r for mt, r in usage.rate.items() if mt not in without)
                room.rate = paced_rate(money.allotment, money.finished_spend + usage.realized,
                                       self.now, money.end_at) - rate
                room.money = (money.allotment - money.finished_spend - usage.reserved +
                              sum(usage.unrealized.get(mt, 0.0) for mt in without))
        return room

    def create_by_policy(self, policy: SpacePolicy) -> None:
        """Fill tier after tier: higher priority first, backfill last."""
        room = self.room(self.usage(policy.money), policy.money)
        probes = self.probes(policy)
        for tier in policy.tiers:
            if tier.backfill and self.backfill_held:
                self.notes.append("backfill: no new machines while it makes room for priority "
                                  "work")
                continue
            self.fill_tier(tier, room, dry=False, probes=probes)
        if room.stopped_by and room.had_candidates:
            self.notes.append(room.stopped_by)

    def fill_tier(self, tier: Tier, room: _Room, *, dry: bool,
                  probes: frozenset[str] | set[str] = frozenset()) -> None:
        """Water-fill one tier by hs06-weighted share under every limit, the tier's caps,
        the spend rate and the money left. `dry` only counts (for `make_room`); `probes`
        get at most one machine, and none while one is already starting."""
        money = self.obs.policy.money if self.obs.policy is not None else None
        candidates = self.candidates(tier, room, probes, money)
        heap = [(room.mt_weighted.get(name, 0.0) / tier.shares[name], name)
                for name in candidates]
        heapq.heapify(heap)
        if candidates:
            room.had_candidates = True
        probed: set[str] = set()
        while heap:
            full = self.space_full(room)
            if full:
                room.stopped_by = full
                break
            _, name = heapq.heappop(heap)
            if name in probed:
                continue
            mt, flavors = candidates[name]
            left = self.demand_left(room.demand_left, name)
            if left is not None and left <= 0:
                continue  # the waiting work is served (signals.py)
            fit = self.fit(mt, tier, room)
            reserve = money.reserve_seconds.get(name, 0.0) / 3600.0 if money else 0.0
            sized = [f for f in flavors if f.processors <= fit]
            flavor = next((f for f in sized if (f.price_per_hour or 0.0) <= room.rate + 1e-9
                           and (f.price_per_hour or 0.0) * reserve <= room.money + 1e-9), None)
            if flavor is None:
                if sized and money is not None:
                    room.stopped_by = (
                        f"budget {money.budget}: spend rate paced to the budget, or the money "
                        f"left ({room.money:.2f} {money.currency}) cannot pay for another "
                        f"{name} machine until its max_wallclock_seconds")
                elif not dry:
                    self.notes.append(self.full_note(mt, tier, room, fit))
                continue
            if not dry:
                self.actions.append(Action(
                    ActionKind.CREATE, self.names(name), name,
                    self.create_reason(tier, name, room.mt_weighted.get(name, 0.0), room),
                    processors=flavor.processors, flavor=flavor))
            self.take(room, tier, mt, flavor, reserve)
            if name in probes:
                probed.add(name)
                continue
            heapq.heappush(heap, (room.mt_weighted[name] / tier.shares[name], name))

    def candidates(self, tier: Tier, room: _Room, probes: frozenset[str] | set[str],
                   money: SpaceMoney | None) -> dict[str, tuple[Machinetype, list[Flavor]]]:
        """The tier's machinetypes that may get machines now, with the flavors they may
        use (only priced ones on a budgeted space)."""
        candidates: dict[str, tuple[Machinetype, list[Flavor]]] = {}
        for name, share in sorted(tier.shares.items()):
            mt = self.space.machinetypes.get(name)
            if mt is None or share <= 0 or not self.creatable(mt):
                continue
            if name in probes and room.mt_starting.get(name, 0) > 0:
                continue
            left = self.demand_left(room.demand_left, name)
            if left is not None and left <= 0:
                self.say(name, self.demand_note(name))
                continue
            flavors = self.usable_flavors(mt, money)
            if flavors:
                candidates[name] = (mt, flavors)
        return candidates

    def creatable(self, mt: Machinetype) -> bool:
        """`may_create`, asked once per plan: its notes are said the first time (a plan's
        notes keep each one once, at its first place, so asking again adds nothing)."""
        if self._creatable is None:
            self._creatable = {}
        known = self._creatable.get(mt.name)
        if known is None:
            known = self._creatable[mt.name] = self.may_create(mt)
        return known

    def usable_flavors(self, mt: Machinetype, money: SpaceMoney | None) -> list[Flavor]:
        """The flavors a machinetype may use (only priced ones on a budgeted space), made
        once per plan like `creatable`; the list is shared, so callers do not change it."""
        if self._usable is None:
            self._usable = {}
        key = (mt.name, money is not None)
        flavors = self._usable.get(key)
        if flavors is not None:
            return flavors
        flavors = self.flavors_for(mt)
        if money is not None:
            unpriced = [f.name for f in flavors if f.price_per_hour is None]
            if unpriced:
                self.notes.append(f"{mt.name}: flavors without a price are not used on a "
                                  f"budgeted space: {', '.join(unpriced)}")
            flavors = [f for f in flavors if f.price_per_hour is not None]
        self._usable[key] = flavors
        return flavors

    def space_full(self, room: _Room) -> str:
        """Which space-wide limit stops all creation now, or "" while there is room."""
        if room.free <= 0:
            return f"space full: processors_limit {self.space.processors_limit} reached"
        if room.start_room <= 0:
            return (f"max_starting_processors {self.space.max_starting_processors} reached; "
                    "more next pass")
        if room.creates_left <= 0:
            return f"creations capped at max_creates_per_pass ({self.space.max_creates_per_pass})"
        return ""

    @staticmethod
    def fit(mt: Machinetype, tier: Tier, room: _Room) -> float:
        """The most processors one more machine of `mt` may have under every limit."""
        name = mt.name
        fit = min(room.free, room.start_room)
        if mt.processors_limit is not None:
            fit = min(fit, mt.processors_limit - room.mt_used.get(name, 0))
        if mt.max_starting_processors is not None:
            fit = min(fit, mt.max_starting_processors - room.mt_starting.get(name, 0))
        if name in tier.caps:
            fit = min(fit, tier.caps[name] - room.mt_used.get(name, 0))
        return fit

    def take(self, room: _Room, tier: Tier, mt: Machinetype, flavor: Flavor,
             reserve: float) -> None:
        """Count one more machine against every limit, the pace and the money."""
        name, price = mt.name, flavor.price_per_hour or 0.0
        room.free -= flavor.processors
        room.start_room -= flavor.processors
        room.creates_left -= 1
        room.rate -= price
        room.money -= price * reserve
        room.created_processors += flavor.processors
        room.created_rate += price
        room.created_money += price * reserve
        room.served.add(tier.labels.get(name, name))
        reading = self.obs.demand.get(name)
        if reading is not None and reading.community in room.demand_left:
            room.demand_left[reading.community] -= flavor.processors
        room.mt_used[name] = room.mt_used.get(name, 0) + flavor.processors
        room.mt_starting[name] = room.mt_starting.get(name, 0) + flavor.processors
        room.mt_weighted[name] = room.mt_weighted.get(name, 0.0) + \
            flavor.processors * mt.hs06_per_processor

    def full_note(self, mt: Machinetype, tier: Tier, room: _Room, fit: float) -> str:
        """Why one machinetype gets no more machines this pass while others may."""
        name, used = mt.name, room.mt_used.get(mt.name, 0)
        if mt.processors_limit is not None and mt.processors_limit - used <= fit:
            return f"{name}: its processors_limit {mt.processors_limit} reached"
        if mt.max_starting_processors is not None and \
                mt.max_starting_processors - room.mt_starting.get(name, 0) <= fit:
            return (f"{name}: its max_starting_processors {mt.max_starting_processors} "
                    "reached; more next pass")
        if name in tier.caps and tier.caps[name] - used <= fit:
            return f"{name}: {tier.labels.get(name, name)} cap of {tier.caps[name]} reached"
        return f"{name}: no flavor fits the {max(fit, 0):g} processors left"

    def create_reason(self, tier: Tier, name: str, share_now: float, room: _Room) -> str:
        reading = self.signal_for(name)
        signal = f"; {reading.signal}" if reading is not None else ""
        if self.obs.policy is None:
            return (f"{name} below its share (hs06 {share_now:g} for target_share "
                    f"{tier.shares[name]:g}); {int(min(room.free, 1e9))} processors free"
                    + signal)
        return (f"{name} ({tier.labels.get(name, name)}, "
                f"{'backfill' if tier.backfill else f'priority {tier.priority:g}'}) below "
                f"its share (hs06 {share_now:g} for share {tier.shares[name]:g})" + signal)
