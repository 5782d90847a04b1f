"""Spot pre-emption on the `local` cloud: a spot machine is pre-empted with
`preemption_probability` at a random moment of its life, listed as stopped with a
pre-emption reason and no shutdown message; the planner ends it without counting an abort,
so its machinetype never goes into backoff for it."""

from __future__ import annotations

import random
from pathlib import Path

from vcyclectl.clouds.contract import CloudContext
from vcyclectl.clouds.local.driver import PREEMPTED_REASON, LocalCloud, life_of
from vcyclectl.clouds.local.options import LocalFlavor, LocalOptions
from vcyclectl.config import Machinetype, Space
from vcyclectl.core.model import ActionKind, Flavor, MachineSpec, MachineState
from vcyclectl.core.names import random_names
from vcyclectl.core.planner import Observation, plan
from vcyclectl.core.records import MachineRecord

NOW = 1_800_000_000.0
SPOT = LocalFlavor("spot", 2, price_per_hour=0.1, spot=True)
ON_DEMAND = LocalFlavor("od", 2, price_per_hour=0.3)


def options(p: float, **kw: object) -> LocalOptions:
    return LocalOptions(boot_seconds=10, job_seconds=1000, no_work_probability=0.0,
                        preemption_probability=p, flavors=(SPOT, ON_DEMAND), **kw)  # type: ignore[arg-type]


def test_only_spot_machines_are_preempted_at_the_given_rate() -> None:
    opts = options(0.3)
    spot = [life_of(f"m-{i}", 0.0, opts, spot=True) for i in range(4000)]
    rate = sum(life.preempted for life in spot) / len(spot)
    assert 0.27 < rate < 0.33
    for life in spot:
        if life.preempted:
            assert life.started_at <= life.stopped_at and life.message is None
    assert not any(life_of(f"m-{i}", 0.0, opts, spot=False).preempted for i in range(4000))


def test_lives_without_preemption_are_unchanged_by_the_knob() -> None:
    """Machines that are not pre-empted live the lives they lived before the knob (their
    own random stream), so existing simulations keep their results."""
    for i in range(500):
        before = life_of(f"m-{i}", 0.0, options(0.0), spot=True)
        after = life_of(f"m-{i}", 0.0, options(0.5), spot=True)
        assert after == before or (after.preempted and after.stopped_at <= before.stopped_at)


def test_a_preempted_machine_is_listed_stopped_with_the_reason_and_never_aborts(
        tmp_path: Path) -> None:
    ctx = CloudContext(space="s", state_id="sid", state_dir=tmp_path, options=options(1.0))
    cloud = LocalCloud(ctx)
    now = [NOW]
    cloud.clock = lambda: now[0]
    for name, flavor in (("m-spot", Flavor("spot", 2, spot=True)), ("m-od", Flavor("od", 2))):
        cloud.create(MachineSpec(name=name, space="s", machinetype="b", flavor=flavor,
                                 image=None, user_data="", state_id="sid"))
    now[0] += 1300  # past any life
    listed = {m.name: m for m in cloud.list_machines()}
    spot, od = listed["m-spot"], listed["m-od"]
    assert spot.state is MachineState.STOPPED and spot.preempted and spot.spot
    assert spot.state_reason == PREEMPTED_REASON and spot.shutdown_message is None
    assert od.state is MachineState.STOPPED and not od.preempted
    assert od.shutdown_message and od.shutdown_message.startswith("200")

    # fizzle_seconds longer than the spot machine lived: an unexplained early stop would be
    # an abort, a pre-emption is not
    mt = Machinetype(name="b", fizzle_seconds=5000, backoff_seconds=3600)
    space = Space(name="s", processors_limit=8, machinetypes={"b": mt})
    records = {m.name: MachineRecord(name=m.name, space="s", machinetype="b",
                                     state=MachineState.RUNNING, processors=2,
                                     created_at=NOW, started_at=NOW + 10, cloud_id=m.id)
               for m in listed.values()}
    p = plan(space, Observation(machines=list(listed.values()), records=records,
                                flavors=cloud.flavors()), now[0],
             random_names("s", random.Random(1)))
    deletes = {a.name: a for a in p.actions if a.kind is ActionKind.DELETE}
    assert deletes["m-spot"].preempted and not deletes["m-spot"].abort
    assert "pre-empted" in deletes["m-spot"].reason
    assert p.aborts == {}
    assert any(a.kind is ActionKind.CREATE for a in p.actions)  # no backoff: it refills
