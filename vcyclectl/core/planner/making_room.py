"""Step 2b, with a provisioning policy: backfill makes room for priority communities that
have shown work (processors, pace and money), newest machines first, by drain or delete."""

from __future__ import annotations

from vcyclectl.core.model import Action, ActionKind
from vcyclectl.core.planner.base import _OVER_LIMIT, MSG_REQUESTED, POLICY_DRAIN, _Seen
from vcyclectl.core.planner.fill import _Filling
from vcyclectl.core.provisioning import SpacePolicy


class _MakingRoom(_Filling):
    def make_room(self, policy: SpacePolicy) -> None:
        """Backfill makes room for priority communities that have work and cannot get it.

        What priority tiers would create if backfill were gone is compared with what they
        can create now; the shortfall (processors; on a budgeted space also spend rate and
        the money that backfill holds reserved until its `max_wallclock_seconds`) is taken
        from backfill machines newest first, so the oldest, most-invested machines are the
        last to go, by drain (MJF shutdown time, deleted after `drain_grace_seconds`) or by
        delete as each backfill community's `make_room` says. Machines already draining
        count as room on its way.

        Money matters near the end of a budget: there backfill's reservations, not
        processors or pace, are what keep priority work waiting, and without counting them
        priority would wait for backfill to end by itself (up to its wallclock).
        """
        backfill = policy.backfill_machinetypes
        priority_tiers = [t for t in policy.tiers if not t.backfill]
        if not backfill or not priority_tiers:
            return
        usage = self.usage(policy.money)
        now_room = self.room(usage, policy.money)
        vacated = self.room(usage, policy.money, without=backfill)
        probes = self.probes(policy)
        for tier in priority_tiers:
            self.fill_tier(tier, vacated, dry=True, probes=probes)
        if not vacated.created_processors:
            return  # nothing priority could start even with backfill gone: nothing to gain
        need_processors = vacated.created_processors - now_room.free
        need_rate = vacated.created_rate - now_room.rate
        need_money = (vacated.created_money - now_room.money
                      if policy.money is not None else 0.0)
        if need_processors <= 0 and need_rate <= 1e-9 and need_money <= 1e-9:
            return
        # Room freed while backfill drains is priority's: backfill creates nothing meanwhile.
        self.backfill_held = True
        victims = [s for s in self.seen if s.machinetype in backfill and s.counts]
        candidates = []
        for s in victims:
            mark = None if s.pending_delete else self.obs.drains.for_machine(s.name,
                                                                             s.machinetype)
            if s.pending_delete or mark is not None:
                need_processors -= s.processors  # room on its way
                need_rate -= self.price_of(s)
                need_money -= self.money_given_back(
                    s, policy, drained_since=mark.since if mark is not None else None)
            elif s.trimmable:
                candidates.append(s)
        who = ", ".join(sorted(vacated.served)) or "priority work"
        for s in sorted(candidates, key=lambda s: (-s.created_at, s.name)):
            if need_processors <= 0 and need_rate <= 1e-9 and need_money <= 1e-9:
                break
            drain = policy.make_room.get(s.machinetype, "drain") != "delete"
            need_processors -= s.processors
            need_rate -= self.price_of(s)
            need_money -= self.money_given_back(s, policy,
                                                drained_since=self.now if drain else None)
            reason = f"backfill making room for {who}"
            if not drain:
                self.delete(s, _OVER_LIMIT, reason + " (newest first)", MSG_REQUESTED)
            else:
                self.actions.append(Action(
                    ActionKind.UPDATE, s.name, s.machinetype,
                    f"drain: {reason}; shutdown in "
                    f"{self.space.machinetypes[s.machinetype].drain_grace_seconds:g}s"
                    if s.machinetype in self.space.machinetypes else f"drain: {reason}",
                    processors=s.processors, machine=s.machine, message=MSG_REQUESTED,
                    changes={POLICY_DRAIN: self.now}))

    def money_given_back(self, s: _Seen, policy: SpacePolicy, *,
                         drained_since: float | None) -> float:
        """What of the budget a machine holds reserved until its `max_wallclock_seconds`
        comes back when it ends early: all of the unused part when deleted, what is left
        after its shutdown time (`drain_grace_seconds` after `drained_since`) when drained;
        the grace is counted in full, so the estimate errs low and enough room is asked."""
        money = policy.money
        if money is None or (s.record is not None and s.record.finished) or \
                s.created_at < money.start_at:
            return 0.0
        mt = self.space.machinetypes.get(s.machinetype)
        held_until = s.created_at + max(self.now - s.created_at,
                                        money.reserve_seconds.get(s.machinetype, 0.0))
        ends = self.now
        if drained_since is not None and mt is not None:
            ends = max(self.now, drained_since + mt.drain_grace_seconds)
        return self.price_of(s) * max(0.0, held_until - ends) / 3600.0
