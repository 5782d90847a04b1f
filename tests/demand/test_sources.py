"""Each demand source's parsing and query, on recorded answers (tests/demand/recorded), the
demand object's rules, and the shared cache in the state directory."""

from __future__ import annotations

import json
from pathlib import Path

import classad2
import pytest

from vcyclectl.config.demand import DemandSource
from vcyclectl.demand import htcondor, slurm
from vcyclectl.demand.cache import FAILURE_REUSE_SECONDS, cache_file, cached_reading
from vcyclectl.demand.payload import Counts, Unavailable, parse

RECORDED = Path(__file__).parent / "recorded"


# -- the demand object (command and url) ------------------------------------------------------
@pytest.mark.parametrize("raw, counts", [
    (b'{"waiting_processors": 96, "running_processors": 32}', Counts(96, 32)),
    (b'{"waiting_jobs": 12, "processors_per_job": 8, "running_jobs": 2}', Counts(96, 16)),
    (b'{"waiting_jobs": 3}', Counts(3, None)),
    (b'{"waiting_processors": 0, "note": "ignored"}', Counts(0, None)),
])
def test_demand_object(raw: bytes, counts: Counts) -> None:
    assert parse(raw) == counts


@pytest.mark.parametrize("raw, reason", [
    (b"", "bad JSON: Expecting value"),
    (b"[1, 2]", "bad JSON: expected an object, got list"),
    (b'{"running_processors": 3}', "bad JSON: needs waiting_processors"),
    (b'{"waiting_processors": "12"}', "bad JSON: waiting_processors must be a whole number"),
    (b'{"waiting_processors": true}', "bad JSON: waiting_processors must be a whole number"),
    (b'{"waiting_processors": 1.5}', "bad JSON: waiting_processors must be a whole number"),
    (b"\xff\xfe", "bad JSON:"),
    (b'{"waiting_processors": 1, "x": "' + b"y" * 70000 + b'"}', "bad JSON: answer longer"),
])
def test_bad_demand_objects_say_what_is_wrong(raw: bytes, reason: str) -> None:
    with pytest.raises(Unavailable) as caught:
        parse(raw)
    assert str(caught.value).startswith(reason)


# -- slurm ------------------------------------------------------------------------------------
def slurm_source(**kw: object) -> DemandSource:
    return DemandSource(source="slurm", **kw)  # type: ignore[arg-type]


def test_squeue_22_05_answer_recorded_from_the_test_cluster() -> None:
    """4 pending CPUs x a 3-task array + an 8-CPU job, pending for want of nodes."""
    jobs = json.loads((RECORDED / "squeue-22.05.json").read_text())["jobs"]
    assert slurm.summarise(jobs, slurm_source(partition="vms")) == Counts(20, 0)
    assert slurm.summarise(jobs, slurm_source(partition="other")) == Counts(0, 0)
    assert slurm.summarise(jobs, slurm_source(account="euclid")) == Counts(0, 0)


def test_squeue_with_the_controller_down_is_an_error_not_an_empty_queue() -> None:
    data = json.loads((RECORDED / "squeue-22.05-controller-down.json").read_text())
    assert data["jobs"] == []  # what a careless reader would take for "no work"
    assert slurm.errors_in(data) == ("slurm_load_jobs: Failed while looking for jobs "
                                     "(Unspecified error)")


def test_squeue_newer_shapes_held_jobs_and_arrays() -> None:
    jobs = [
        {"job_state": ["PENDING"], "partition": "euclid,spare", "account": "euclid",
         "cpus": {"set": True, "infinite": False, "number": 16}, "state_reason": "Priority"},
        {"job_state": ["PENDING"], "partition": "euclid", "account": "euclid",
         "cpus": {"set": True, "number": 8}, "state_reason": "JobHeldUser"},
        {"job_state": "PENDING", "partition": "euclid", "account": "euclid", "cpus": 2,
         "state_reason": "Resources", "array_task_string": "0-9:2%2"},
        {"job_state": ["RUNNING"], "partition": "euclid", "account": "other",
         "cpus": {"set": True, "number": 4}},
        {"job_state": "RUNNING", "partition": "euclid", "account": "euclid", "cpus": 32},
    ]
    assert slurm.summarise(jobs, slurm_source(partition="euclid")) == Counts(26, 36)
    assert slurm.summarise(jobs, slurm_source(partition="euclid", account="euclid")) == \
        Counts(26, 32)
    assert slurm.squeue_argv(slurm_source(partition="euclid", squeue="/opt/bin/squeue")) == \
        ["/opt/bin/squeue", "--json", "--partition=euclid"]


@pytest.mark.parametrize("spec, tasks", [("1-3", 3), ("1,4,7-9", 5), ("0-9:2%2", 5),
                                         ("5", 1), ("", 1), ("weird", 1)])
def test_array_tasks(spec: str, tasks: int) -> None:
    assert slurm.array_tasks(spec) == tasks


def test_squeue_that_cannot_run_is_a_reason(tmp_path: Path) -> None:
    with pytest.raises(Unavailable) as caught:
        slurm.read(slurm_source(squeue=str(tmp_path / "no-squeue")))
    assert str(caught.value).startswith("squeue: cannot run: No such file or directory")


# -- htcondor (the bindings, no daemons) -----------------------------------------------------
def condor_source(**kw: object) -> DemandSource:
    return DemandSource(source="htcondor", **kw)  # type: ignore[arg-type]


def test_htcondor_query_selects_and_counts_the_recorded_queue() -> None:
    """The query the schedd would get, applied with the real ClassAd library to a queue
    written in `condor_q -long` form (no schedd runs here; see recorded/README.md)."""
    source = condor_source(schedd="dune-schedd", constraint='AcctGroup == "group_dune.prod"')
    constraint, projection = htcondor.query(source)
    assert constraint == ('(AcctGroup == "group_dune.prod") && '
                          '(JobStatus == 1 || JobStatus == 2)')
    assert projection == ["ClusterId", "ProcId", "JobStatus", "RequestCpus"]
    ads = list(classad2.parseAds((RECORDED / "dune-queue.ads").read_text()))
    selected = [ad for ad in ads if classad2.ExprTree(constraint).eval(ad) is True]
    assert [(ad["ClusterId"], ad["ProcId"]) for ad in selected] == \
        [(7001, 0), (7001, 1), (7002, 0), (7003, 0)]  # held, completed, lsst left out
    assert htcondor.summarise(selected) == Counts(20, 8)  # an expression RequestCpus counts 4
    assert htcondor.summarise(ads) == Counts(21, 8)  # what the constraint keeps out matters


def test_htcondor_without_a_reachable_collector_is_a_reason() -> None:
    source = condor_source(collector="127.0.0.1:9", schedd="dune-schedd", timeout_seconds=20)
    with pytest.raises(Unavailable) as caught:
        htcondor.read(source)
    assert str(caught.value).startswith("htcondor: HTCondorException:")
    with pytest.raises(Unavailable) as caught:
        htcondor.read(condor_source(collector="127.0.0.1:9", constraint="((("))
    assert "does not parse" in str(caught.value)


# -- the shared cache -------------------------------------------------------------------------
def test_one_reading_per_interval_failures_kept_briefly_last_good_remembered(
        tmp_path: Path) -> None:
    source = DemandSource(source="command", argv=("q",), max_age_seconds=300)
    answers: list[Counts | Unavailable] = [Counts(8, 2), Unavailable("q: timed out after 10s"),
                                           Counts(0, 4)]
    asked: list[float] = []
    clock = [1000.0]

    def read(_: DemandSource) -> Counts:
        asked.append(clock[0])
        answer = answers.pop(0)
        if isinstance(answer, Unavailable):
            raise answer
        return answer

    def reading(community: str = "ska"):  # type: ignore[no-untyped-def]
        return cached_reading(tmp_path, community, source, read, lambda: clock[0])

    assert reading().waiting == 8
    clock[0] += 299
    other = reading("dune")  # another community, space or host naming the same source
    assert (other.waiting, other.community, asked) == (8, "dune", [1000.0])
    clock[0] += 2
    failed = reading()
    assert failed.unavailable == "q: timed out after 10s; last good reading 301s ago"
    clock[0] += FAILURE_REUSE_SECONDS - 1
    assert reading().unavailable.startswith("q: timed out")
    assert len(asked) == 2  # the failure was not retried by every pass
    clock[0] += 2
    assert reading().waiting == 0 and len(asked) == 3
    stored = json.loads(cache_file(tmp_path, source).read_text())
    assert stored["waiting"] == 0 and stored["format_version"] == 1
    cache_file(tmp_path, source).write_text("{half")
    answers.append(Counts(5))
    assert reading().waiting == 5  # a torn or foreign file is read past, not trusted


def test_the_cache_key_is_the_source_not_its_reader() -> None:
    a = DemandSource(source="slurm", partition="euclid", headroom=0.5)
    b = DemandSource(source="slurm", partition="euclid", max_age_seconds=10)
    assert a.key == b.key
    assert a.key != DemandSource(source="slurm", partition="other").key
