"""MJF values (HSF-TN-2016-02) from a machine's record, its machinetype and drain marks."""

from __future__ import annotations

from vcyclectl.vm import mjf
from vcyclectl.config import Machinetype
from vcyclectl.core.model import MachineState
from vcyclectl.core.records import DrainMark, MachineRecord

MT = Machinetype(name="lhcb", hs06_per_processor=10.0, max_wallclock_seconds=86400.0,
                 drain_grace_seconds=3600.0)


def record(**changes: object) -> MachineRecord:
    rec = MachineRecord(name="vcyclectl-demo-lhcb-aaaaaaaaaa", space="demo", machinetype="lhcb",
                        state=MachineState.RUNNING, processors=4, created_at=1_000_000.5,
                        started_at=1_000_030.0, hs06=40.0)
    return rec.with_changes(**changes)


def test_every_documented_key_of_a_running_machine() -> None:
    values = mjf.features(record(), MT, None)
    assert values == {
        "total_cpu": "4", "hs06": "40", "shutdowntime": "1086400", "grace_secs": "3600",
        "jobslots": "1", "phys_cores": "4", "log_cores": "4",
        "allocated_cpu": "4", "hs06_job": "40", "wall_limit_secs": "86400",
        "cpu_limit_secs": str(86400 * 4), "jobstart_secs": "1000030",
        "shutdowntime_job": "1086400", "job_id": "vcyclectl-demo-lhcb-aaaaaaaaaa",
    }
    assert set(values) <= set(mjf.MACHINE_KEYS) | set(mjf.JOB_KEYS)


def test_a_drain_brings_shutdowntime_forward_by_the_grace_time() -> None:
    mark = DrainMark(target="demo", since=1_010_000.0)
    values = mjf.features(record(), MT, mark)
    assert values["shutdowntime"] == values["shutdowntime_job"] == str(1_010_000 + 3600)


def test_a_drain_never_extends_the_wallclock_limit() -> None:
    mark = DrainMark(target="demo", since=2_000_000.0)
    assert mjf.features(record(), MT, mark)["shutdowntime"] == "1086400"


def test_hs06_falls_back_to_processors_times_rating_and_keeps_fractions() -> None:
    mt = Machinetype(name="lhcb", hs06_per_processor=12.345)
    assert mjf.features(record(hs06=0.0), mt, None)["hs06"] == "49.38"


def test_jobstart_is_creation_until_the_cloud_saw_it_start() -> None:
    assert mjf.features(record(started_at=None), MT, None)["jobstart_secs"] == "1000000"


def test_sizes_only_when_known() -> None:
    assert "max_rss_bytes" not in mjf.features(record(), MT, None)
    rec = record().with_changes(extra={"memory_mb": 2048, "disk_gb": 20, "swap_mb": True})
    values = mjf.features(rec, MT, None)
    assert values["max_rss_bytes"] == str(2048 * 1024 * 1024)
    assert values["max_disk_bytes"] == str(20 * 1024 ** 3)
    assert "max_swap_bytes" not in values


def test_feature_answers_only_its_own_section() -> None:
    rec = record()
    assert mjf.feature("machinefeatures", "total_cpu", rec, MT, None) == "4"
    assert mjf.feature("jobfeatures", "total_cpu", rec, MT, None) is None
    assert mjf.feature("jobfeatures", "job_id", rec, MT, None) == rec.name
    assert mjf.feature("machinefeatures", "nonsense", rec, MT, None) is None
    assert mjf.feature("joboutputs", "total_cpu", rec, MT, None) is None
