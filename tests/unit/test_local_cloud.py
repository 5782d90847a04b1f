"""The simulated `local` cloud honours the driver contract and its pinned rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from vcyclectl.clouds.contract import CloudContext
from vcyclectl.clouds.registry import load_driver
from vcyclectl.clouds.local.driver import MSG_DONE, MSG_NO_WORK, LocalCloud, life_of
from vcyclectl.clouds.local.options import LocalOptions
from vcyclectl.errors import IncompleteListing, QuotaExceeded, Transient
from vcyclectl.core.model import Flavor, MachineSpec, MachineState


def cloud(tmp_path: Path, **options: object) -> LocalCloud:
    ctx = CloudContext(space="s", state_id="sid", state_dir=tmp_path,
                       options=LocalOptions(**options))  # type: ignore[arg-type]
    driver = load_driver(ctx, "local")
    assert isinstance(driver, LocalCloud)
    return driver


def spec(name: str, processors: int = 1) -> MachineSpec:
    return MachineSpec(name=name, space="s", machinetype="a", flavor=Flavor("f", processors),
                       image=None, user_data="", state_id="sid")


def test_machine_lifecycle_follows_the_clock(tmp_path: Path) -> None:
    """Driven by a clock the test moves, not by sleeps that a loaded machine can outrun."""
    c = cloud(tmp_path, boot_seconds=30, job_seconds=60, no_work_probability=0.0)
    now = [1_800_000_000.0]
    c.clock = lambda: now[0]
    c.create(spec("m-1"))
    assert [m.state for m in c.list_machines()] == [MachineState.STARTING]
    now[0] += 29.9
    assert [m.state for m in c.list_machines()] == [MachineState.STARTING]
    now[0] += 0.2
    (m,) = c.list_machines()
    assert m.state is MachineState.RUNNING and m.heartbeat_at == now[0]
    now[0] += 60 * 1.25
    (m,) = c.list_machines()
    assert m.state is MachineState.STOPPED and m.shutdown_message == MSG_DONE
    assert m.stopped_at is not None and m.started_at == 1_800_000_030.0


def test_lives_are_seeded_by_name_so_every_process_agrees() -> None:
    options = LocalOptions(no_work_probability=0.5, failure_probability=0.2)
    assert life_of("m-1", 100.0, options) == life_of("m-1", 100.0, options)
    lives = [life_of(f"m-{i}", 0.0, options) for i in range(2000)]
    failed = sum(life.failed for life in lives) / len(lives)
    no_work = sum(life.message == MSG_NO_WORK for life in lives) / len(lives)
    assert 0.15 < failed < 0.25 and 0.35 < no_work < 0.45


def test_other_instances_see_the_same_machines(tmp_path: Path) -> None:
    first, second = cloud(tmp_path), cloud(tmp_path)
    made = first.create(spec("m-1"))
    assert [m.id for m in second.list_machines()] == [made.id]
    second.delete(made)
    assert first.list_machines() == []


def test_create_is_idempotent_on_the_name(tmp_path: Path) -> None:
    c = cloud(tmp_path)
    assert c.create(spec("m-1")).id == c.create(spec("m-1")).id
    assert len(c.list_machines()) == 1


def test_quota_is_enforced(tmp_path: Path) -> None:
    c = cloud(tmp_path, processors=3)
    c.create(spec("m-1", 2))
    with pytest.raises(QuotaExceeded):
        c.create(spec("m-2", 2))
    c.create(spec("m-3", 1))


def test_delete_of_a_gone_machine_succeeds(tmp_path: Path) -> None:
    c = cloud(tmp_path)
    m = c.create(spec("m-1"))
    c.delete(m)
    c.delete(m)
    assert c.list_machines() == []


def test_api_errors_are_transient(tmp_path: Path) -> None:
    c = cloud(tmp_path, api_error_probability=1.0)
    with pytest.raises(IncompleteListing):
        c.list_machines()
    with pytest.raises(Transient):
        c.create(spec("m-1"))


def test_only_this_state_dirs_machines_are_listed(tmp_path: Path) -> None:
    c = cloud(tmp_path)
    c.create(spec("m-1"))
    other = CloudContext(space="s", state_id="other", state_dir=tmp_path, options=LocalOptions())
    assert load_driver(other, "local").list_machines() == []


def test_flavors(tmp_path: Path) -> None:
    assert cloud(tmp_path, processors_per_machine=2).flavors() == [Flavor("local-2", 2)]


def test_journal_compacts_and_other_readers_follow(tmp_path: Path) -> None:
    c = cloud(tmp_path, processors=10_000)
    reader = cloud(tmp_path, processors=10_000)
    for i in range(1200):
        c.delete(c.create(spec(f"m-{i}")))
    keep = c.create(spec("keep"))
    assert [m.id for m in reader.list_machines()] == [keep.id]
    lines = (tmp_path / "local" / "s" / "machines.jsonl").read_text().splitlines()
    assert len(lines) < 2400
