"""APEL accounting: config blocks, message texts, and exactly-once records from the finished
journal, with a pass killed at every step of the hand-off and a rotated journal."""

from __future__ import annotations

import json
import os
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tests.apelqueue import jobs_in, latest, read_queue
from vcyclectl import config as configmod
from vcyclectl.config import Config
from vcyclectl.errors import ConfigError
from vcyclectl.policy import accountbook, accounting, accountingviews, apel
from vcyclectl.state.files import append_lines
from vcyclectl.state.store import StateDir

SPACE = "acct.example.org"
YAML = f"""\
state_dir: state
accounting:
  gocdb_sitename: UKI-TEST
  messages: both
  summaries_every_seconds: 0
defaults:
  fizzle_seconds: 60
spaces:
  {SPACE}:
    cloud: local
    machinetypes:
      lhcb: {{hs06_per_processor: 10, accounting_fqan: /lhcb/Role=pilot/Capability=NULL}}
      atlas:
        hs06_per_processor: 12.5
        accounting_vo: atlas
        accounting: {{messages: summaries}}
  other.example.org:
    cloud: local
    accounting: {{gocdb_sitename: UKI-OTHER}}
    machinetypes:
      dune: {{}}
"""


def load(tmp_path: Path, text: str = YAML) -> Config:
    path = tmp_path / "vcyclectl.yaml"
    path.write_text(textwrap.dedent(text))
    return configmod.load(path)


def finished(name: str, mt: str, start: float, seconds: float, processors: int = 2,
             hs06pp: float = 10.0, price: float | None = 0.1) -> dict[str, Any]:
    return {"name": name, "space": SPACE, "machinetype": mt, "processors": processors,
            "hs06": processors * hs06pp, "created_at": start - 30, "started_at": start,
            "stopped_at": start + seconds, "finished_at": start + seconds + 5,
            "price_per_hour": price}


NOW = time.time() - 86400 * 2  # well inside the past, so no month is in the future


def lines(n: int, *, first: int = 0, fizzles: int = 0) -> list[dict[str, Any]]:
    out = [finished(f"m{i:03d}", "lhcb" if i % 2 else "atlas", NOW + i, 600 + i,
                    hs06pp=10.0 if i % 2 else 12.5) for i in range(first, first + n)]
    out += [finished(f"f{i:03d}", "lhcb", NOW + i, 5) for i in range(first, first + fizzles)]
    return out


def run(cfg: Config, now: float = NOW + 3600) -> None:
    space = cfg.spaces[SPACE]
    store = StateDir(cfg.state_dir).space(SPACE)
    store.ensure()
    accounting.account_space(cfg, space, store, now)


def add(cfg: Config, entries: list[dict[str, Any]]) -> None:
    store = StateDir(cfg.state_dir).space(SPACE)
    store.ensure()
    append_lines(store.finished_file, entries)


def queue_dir(cfg: Config) -> Path:
    return Path(cfg.state_dir) / "apel-outgoing"


# -- config ---------------------------------------------------------------------------------
def test_blocks_merge_from_top_level_to_machinetype(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    assert cfg.accounting is not None
    lhcb = cfg.accounting.settings(SPACE, "lhcb")
    atlas = cfg.accounting.settings(SPACE, "atlas")
    assert lhcb is not None and lhcb.gocdb_sitename == "UKI-TEST" and lhcb.messages == "both"
    assert atlas is not None and atlas.messages == "summaries"
    assert atlas.gocdb_sitename == "UKI-TEST"
    assert lhcb.outgoing_dir(cfg.state_dir) == cfg.state_dir / "apel-outgoing"
    other = cfg.accounting.settings("other.example.org", "dune")
    assert other is not None and other.gocdb_sitename == "UKI-OTHER"
    # a machinetype no longer configured still gets its space's block
    gone = cfg.accounting.settings(SPACE, "retired")
    assert gone is not None and gone.gocdb_sitename == "UKI-TEST"
    assert cfg.spaces[SPACE].machinetypes["atlas"].accounting_vo == "atlas"


def test_no_sitename_means_off_and_no_block_means_none(tmp_path: Path) -> None:
    cfg = load(tmp_path,
               "state_dir: s\nspaces:\n  a.local: {cloud: local, machinetypes: {x: {}}}\n")
    assert cfg.accounting is None
    cfg = load(tmp_path, "state_dir: s\naccounting: {messages: both}\n"
                         "spaces:\n  a.local: {cloud: local, machinetypes: {x: {}}}\n")
    assert cfg.accounting is not None and cfg.accounting.settings("a.local", "x") is None


def test_bad_accounting_keys_name_file_line_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, YAML.replace("messages: both", "messages: everything"))
    assert "accounting.messages" in str(err.value) and ":4" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load(tmp_path, YAML.replace("accounting: {messages: summaries}",
                                    "accounting: {gocdb_site: X}"))
    assert "machinetypes.atlas.accounting.gocdb_site" in str(err.value)
    assert "gocdb_sitename" in str(err.value)  # did you mean


# -- message texts --------------------------------------------------------------------------
def test_individual_message_has_the_v03_fields_in_order() -> None:
    job = apel.Job(name="m1", space=SPACE, machinetype="lhcb", site="UKI-TEST", start=1000,
                   end=4600, processors=4, hs06_per_processor=10.5, cpu=14400,
                   fqan="/lhcb/Role=pilot/Capability=NULL")
    text = apel.individual_message([job, job])
    assert text.startswith("APEL-individual-job-message: v0.3\n")
    assert text.count("\n%%\n") == 2
    header, records = apel.parse_message(text)
    rec = records[0]
    assert list(rec) == ["Site", "SubmitHost", "LocalJobId", "LocalUserId", "Queue",
                         "GlobalUserName", "FQAN", "VO", "WallDuration", "CpuDuration",
                         "Processors", "NodeCount", "InfrastructureDescription",
                         "InfrastructureType", "StartTime", "EndTime", "ServiceLevelType",
                         "ServiceLevel"]
    assert rec["WallDuration"] == "3600" and rec["VO"] == "lhcb"
    assert rec["ServiceLevelType"] == "HEPSPEC" and rec["ServiceLevel"] == "10.5"
    assert rec["GlobalUserName"] == "/DC=org/DC=example/DC=acct"
    assert rec["SubmitHost"] == f"{SPACE}/vcyclectl"


def test_summary_rows_group_and_add_up() -> None:
    jobs = [apel.Job(name=f"m{i}", space=SPACE, machinetype="lhcb", site="S",
                     start=1_700_000_000 + i, end=1_700_003_600 + i * 10, processors=2,
                     hs06_per_processor=10.0, cpu=7200, vo="lhcb") for i in range(5)]
    jobs.append(apel.Job(name="x", space=SPACE, machinetype="atlas", site="S",
                         start=1_700_000_000, end=1_700_000_100, processors=1,
                         hs06_per_processor=12.0, cpu=100, vo="atlas"))
    header, records = apel.parse_message(apel.summary_message(apel.summarise(jobs)))
    assert header == "APEL-summary-job-message: v0.2"
    assert sorted(int(r["NumberOfJobs"]) for r in records) == [1, 5]
    lhcb = next(r for r in records if r["VO"] == "lhcb")
    assert int(lhcb["WallDuration"]) == sum(j.wall for j in jobs[:5])
    assert lhcb["Month"] == "11" and lhcb["Year"] == "2023"
    assert int(lhcb["EarliestEndTime"]) == 1_700_003_600
    assert int(lhcb["LatestEndTime"]) == 1_700_003_640
    sync = apel.parse_message(apel.sync_message({("S", SPACE, "2023-11"): 6}))
    assert sync == ("APEL-sync-message: v0.1", [{"Site": "S", "SubmitHost": f"{SPACE}/vcyclectl",
                                                 "NumberOfJobs": "6", "Month": "11",
                                                 "Year": "2023"}])


# -- exactly once ---------------------------------------------------------------------------
def check_exactly_once(cfg: Config, expected: set[str]) -> None:
    messages = read_queue(queue_dir(cfg))
    ids = [r["LocalJobId"] for r in jobs_in(messages)]
    assert len(ids) == len(set(ids)), "a job was queued twice"
    assert set(ids) == {n for n in expected if n.startswith("m") and
                        int(n[1:]) % 2 == 1}, "lhcb only: atlas publishes summaries only"
    summary = latest(messages, "APEL-summary-job-message")
    assert sum(int(r["NumberOfJobs"]) for r in summary) == len(expected)


def test_each_machine_that_ran_is_queued_once_and_fizzles_never(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    add(cfg, lines(10, fizzles=3))
    run(cfg)
    run(cfg)  # nothing new: nothing queued again but a due summary
    add(cfg, lines(4, first=10))
    run(cfg)
    expected = {f"m{i:03d}" for i in range(14)}
    check_exactly_once(cfg, expected)
    ids = {r["LocalJobId"] for r in jobs_in(read_queue(queue_dir(cfg)))}
    assert not any(i.startswith("f") for i in ids)
    rows = accountingviews.accounting_rows(cfg, apel.month_of(NOW + 600))
    assert sum(r["fizzles"] for r in rows) == 3 and sum(r["jobs"] for r in rows) == 14
    assert not list((StateDir(cfg.state_dir).space(SPACE).path / "accounting" / "staging")
                    .glob("*.msg"))


class Killed(BaseException):
    """A SIGKILL stand-in: not an Exception, so nothing on the way catches it."""


CRASH_POINTS = ["stage", "append", "save_state", "add_path_link", "settled"]


@pytest.mark.parametrize("where", CRASH_POINTS)
def test_a_pass_killed_at_any_step_never_duplicates_nor_loses(tmp_path: Path, where: str,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    cfg = load(tmp_path)
    add(cfg, lines(6, fizzles=1))
    run(cfg)
    add(cfg, lines(6, first=6))
    with monkeypatch.context() as patch:
        arm(patch, where)
        with pytest.raises(Killed):
            run(cfg)
    if where == "add_path_link":  # ssmsend may even have consumed other messages meanwhile
        read_queue(queue_dir(cfg), consume=False)
    run(cfg)
    run(cfg)
    check_exactly_once(cfg, {f"m{i:03d}" for i in range(12)})


def arm(patch: pytest.MonkeyPatch, where: str) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise Killed(where)

    if where == "stage":  # staging written, jobs not yet appended
        real_stage = accounting.stage_batches

        def stage(*args: Any, **kwargs: Any) -> Any:
            real_stage(*args, **kwargs)
            raise Killed(where)
        patch.setattr(accounting, "stage_batches", stage)
    elif where == "append":  # jobs appended, watermark not saved
        real_save = accountbook.Book.save_state
        patch.setattr(accountbook.Book, "save_state", boom)
        del real_save
    elif where == "save_state":  # watermark saved, not handed off
        patch.setattr(accounting, "settle", boom)
    elif where == "add_path_link":  # linked into the queue, staging name not yet unlinked
        from dirq.QueueSimple import QueueSimple

        def linked_only(self: Any, path: str) -> Any:
            _dir = self._add_dir()
            os.makedirs(f"{self.path}/{_dir}", exist_ok=True)
            os.link(path, f"{self.path}/{_dir}/{'%013x' % 1}{'0'}")
            raise Killed(where)
        patch.setattr(QueueSimple, "add_path", linked_only)
    elif where == "settled":  # handed off, `queued` not written
        real_append = accountbook.Book.append

        def append(self: Any, month: str, entries: list[dict[str, Any]]) -> None:
            if entries and "queued" in entries[0]:
                raise Killed(where)
            real_append(self, month, entries)
        patch.setattr(accountbook.Book, "append", append)


def test_a_rotated_journal_is_never_emitted_again(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    cfg = load(tmp_path)
    add(cfg, lines(8))
    run(cfg)
    store = StateDir(cfg.state_dir).space(SPACE)
    # rotation: the old lines move away, the journal starts again, shorter than the watermark
    store.finished_file.rename(store.path / "finished.1.jsonl")
    add(cfg, lines(2, first=6))  # two lines the old journal had too (a rotated copy)
    run(cfg)
    add(cfg, lines(3, first=8))
    run(cfg)
    check_exactly_once(cfg, {f"m{i:03d}" for i in range(11)})
    # replaced by a journal of the same length or longer with another first line
    state = json.loads((store.path / "accounting" / "state.json").read_text())
    assert state["head"] == accounting.journal_head(store.finished_file)


def test_summaries_wait_for_their_interval_and_go_once_a_month_is_over(tmp_path: Path) -> None:
    cfg = load(tmp_path, YAML.replace("summaries_every_seconds: 0",
                                      "summaries_every_seconds: 86400"))
    add(cfg, lines(2))
    month = apel.month_of(NOW + 600)
    start, end = apel.month_bounds(month)
    run(cfg, now=start + 1)
    add(cfg, lines(2, first=2))
    run(cfg, now=start + 2)  # changed, but the last summary is a second old
    summaries = [m for m in read_queue(queue_dir(cfg)) if m[0].startswith("APEL-summary")]
    assert len(summaries) == 1
    run(cfg, now=end + 1)  # the month is over: re-issued complete
    messages = read_queue(queue_dir(cfg))
    assert sum(1 for m in messages if m[0].startswith("APEL-summary")) == 2
    assert sum(int(r["NumberOfJobs"]) for r in latest(messages, "APEL-summary")) == 4
    assert sum(int(r["NumberOfJobs"]) for r in latest(messages, "APEL-sync")) == 2  # lhcb


def test_republish_queues_a_month_again(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    add(cfg, lines(5))
    run(cfg)
    before = len(read_queue(queue_dir(cfg)))
    assert accountingviews.republish(cfg, apel.month_of(NOW + 600)) == 2  # summary + sync
    assert len(read_queue(queue_dir(cfg))) == before + 2
