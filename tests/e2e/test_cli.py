"""Every command end to end on the `local` cloud, through the same `main()` the console
script runs (in-process for speed; a few as real processes)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import Run, run_process
from vcyclectl.state.lock import SpaceLock

CONFIG = """\
state_dir: state
defaults:
  min_pass_interval_seconds: 0   # passes follow each other quickly here
  backoff_seconds: 0
  fizzle_seconds: 0
spaces:
  alpha.local:
    cloud: local
    processors_limit: 8
    local: {processors: 100, boot_seconds: 30, job_seconds: 300, no_work_probability: 0}
    machinetypes:
      lhcb: {target_share: 3, user_data: t.user_data,
             user_data_options: {pool_password: s3cret-value, proxy: "http://squid:3128"}}
      atlas: {target_share: 1}
  beta.local:
    cloud: local
    processors_limit: 2
    local: {processors: 100, boot_seconds: 30, job_seconds: 300, no_work_probability: 0}
    machinetypes:
      dune: {}
"""

VC = Callable[..., Run]


@pytest.fixture
def cfg(write_config: Callable[..., Path], tmp_path: Path) -> Path:
    (tmp_path / "t.user_data").write_text(
        "#cloud-config\nhostname: ##user_data_machine_hostname##\n"
        "# ##user_data_option_proxy## ##user_data_option_pool_password##\n")
    return write_config(CONFIG)


def test_reconcile_creates_and_speaks_only_on_stderr(vc: VC, cfg: Path) -> None:
    run = vc("--config", cfg, "reconcile")
    assert run.code == 0, run.err
    assert run.out == ""
    assert "alpha.local: created 8" in run.err and "beta.local: created 2" in run.err


def test_list_outputs_for_scripts(vc: VC, cfg: Path) -> None:
    vc("--config", cfg, "reconcile")
    machines = json.loads(vc("--config", cfg, "list", "--output", "json").out)
    assert len(machines) == 10
    for m in machines:
        assert {"name", "space", "machinetype", "state", "processors", "created_at",
                "draining"} <= set(m)
        assert m["state"] in ("creating", "starting")
        assert m["created_at"].endswith("Z") and m["draining"] is False
    names = vc("--config", cfg, "list", "-s", "alpha.local", "-m", "lhcb", "-o", "names").out
    assert len(names.split()) == 6 and all(n.startswith("vcyclectl-alpha-local-lhcb-")
                                           for n in names.split())
    tsv = vc("--config", cfg, "list", "-o", "tsv").out.splitlines()
    assert tsv[0].split("\t")[:4] == ["name", "space", "machinetype", "state"]
    assert len(tsv) == 11
    live = json.loads(vc("--config", cfg, "list", "--live", "-o", "json").out)
    assert sorted(m["name"] for m in live) == sorted(m["name"] for m in machines)
    assert all(m["state"] == "starting" for m in live)


def test_plan_shows_reasons_and_changes_nothing(vc: VC, cfg: Path) -> None:
    assert vc("--config", cfg, "reconcile", "beta.local").code == 0  # the state dir exists
    run = vc("--config", cfg, "plan", "alpha.local", "--output", "json")
    assert run.code == 0
    (plan,) = json.loads(run.out)
    assert plan["space"] == "alpha.local" and len(plan["actions"]) == 8
    assert all(a["action"] == "create" and "below its share" in a["reason"]
               for a in plan["actions"])
    assert not (cfg.parent / "state" / "spaces" / "alpha.local").exists()  # writes nothing


def test_inspect_and_not_found(vc: VC, cfg: Path) -> None:
    vc("--config", cfg, "reconcile")
    name = vc("--config", cfg, "list", "-o", "names").out.split()[0]
    data = json.loads(vc("--config", cfg, "inspect", name, "--output", "json").out)
    assert data["name"] == name and data["events"][0]["event"] == "create"
    run = vc("--config", cfg, "inspect", "vcyclectl-nope-xxxx")
    assert run.code == 4 and "no machine named" in run.err


def test_drain_and_undrain(vc: VC, cfg: Path) -> None:
    assert vc("--config", cfg, "drain", "alpha.local/atlas", "--reason", "upgrade").code == 0
    vc("--config", cfg, "reconcile")
    machines = json.loads(vc("--config", cfg, "list", "-o", "json").out)
    assert not [m for m in machines if m["machinetype"] == "atlas"]
    status = json.loads(vc("--config", cfg, "status", "-o", "json").out)
    atlas = next(r for r in status if r["machinetype"] == "atlas")
    assert atlas["drained"] is True
    assert vc("--config", cfg, "undrain", "alpha.local/atlas").code == 0
    assert vc("--config", cfg, "drain", "alpha.local/nope").code == 4
    assert vc("--config", cfg, "drain", "vcyclectl-unknown-abc").code == 4


def test_drained_machine_is_shown_draining_and_deleted_after_grace(vc: VC,
                                                                   write_config: Callable[..., Path]) -> None:
    cfg = write_config(CONFIG.replace("  fizzle_seconds: 0", "  fizzle_seconds: 0\n"
                                      "  drain_grace_seconds: 0.5"))
    vc("--config", cfg, "reconcile", "beta.local")
    name = vc("--config", cfg, "list", "-o", "names").out.split()[0]
    assert vc("--config", cfg, "drain", name).code == 0
    rows = {m["name"]: m for m in json.loads(vc("--config", cfg, "list", "-o", "json").out)}
    assert rows[name]["draining"] is True
    time.sleep(0.6)
    vc("--config", cfg, "reconcile", "beta.local")  # deletes it
    vc("--config", cfg, "reconcile", "beta.local")  # sees it gone and forgets the record
    inspected = json.loads(vc("--config", cfg, "inspect", name, "-o", "json").out)
    assert inspected["state"] == "ended"
    assert inspected["shutdown_message"] == "100 Shutdown as requested"
    # Issue 22: the drain mark of a machine that is gone goes with it (marks never pile up).
    assert not list((cfg.parent / "state/spaces/beta.local/drains").glob("machine-*.json"))


def test_status_json(vc: VC, cfg: Path) -> None:
    vc("--config", cfg, "reconcile")
    rows = json.loads(vc("--config", cfg, "status", "--output", "json").out)
    lhcb = next(r for r in rows if r["machinetype"] == "lhcb")
    assert lhcb["processors"] == 6 and lhcb["processors_limit"] == 8
    assert lhcb["target_share"] == 0.75 and lhcb["actual_share"] == 0.75
    assert lhcb["states"] == {"starting": 6} and lhcb["lock"] == "free"
    assert lhcb["last_pass_outcome"] == "done" and lhcb["backoff_until"] is None


def test_config_check_and_show(vc: VC, cfg: Path) -> None:
    run = vc("--config", cfg, "config", "check")
    assert run.code == 0 and "ok: 2 spaces, 3 machinetypes, 1 user_data templates" in run.err
    shown = vc("--config", cfg, "config", "show").out
    assert "s3cret-value" not in shown and "pool_password: '***'" in shown
    assert "http://squid:3128" in shown


def test_bad_config_exits_2_with_location_and_no_traceback(vc: VC,
                                                          write_config: Callable[..., Path]) -> None:
    bad = write_config(CONFIG.replace("processors_limit: 8", "processors_limit: -8"))
    for command in (["reconcile"], ["list"], ["config", "check"], ["status"]):
        run = vc("--config", bad, *command)
        assert run.code == 2
        assert f"{bad}:9: spaces.alpha.local.processors_limit: must be at least 0" in run.err
        assert "Traceback" not in run.err
    assert not (bad.parent / "state").exists()  # nothing was touched


def test_unknown_template_option_is_caught_by_config_check(vc: VC, cfg: Path) -> None:
    (cfg.parent / "t.user_data").write_text("line one\n##user_data_option_missing##\n")
    run = vc("--config", cfg, "config", "check")
    assert run.code == 2
    assert f"{cfg.parent / 't.user_data'}:2:" in run.err and "missing" in run.err


def test_usage_errors_exit_2(vc: VC, cfg: Path) -> None:
    assert vc("--config", cfg, "reconcile", "no.such.space").code == 2
    assert vc("--config", cfg, "list", "--output", "xml").code == 2
    assert vc("--config", cfg, "frobnicate").code == 2


def test_state_dir_flag_overrides(vc: VC, cfg: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-state"
    assert vc("--config", cfg, "--state-dir", other, "reconcile").code == 0
    assert (other / "format.json").exists() and not (cfg.parent / "state").exists()
    assert len(vc("--config", cfg, "--state-dir", other, "list", "-o", "names").out.split()) == 10


def test_locked_space_is_skipped_or_waited_for(vc: VC, cfg: Path) -> None:
    vc("--config", cfg, "reconcile")
    lock = SpaceLock(cfg.parent / "state" / "spaces" / "alpha.local")
    lock.acquire()
    try:
        run = vc("--config", cfg, "reconcile")
        assert run.code == 0 and "alpha.local: skipped, locked by" in run.err
        status = json.loads(vc("--config", cfg, "status", "-o", "json").out)
        assert all(r["lock"] != "free" for r in status if r["space"] == "alpha.local")
        started = time.monotonic()
        run = vc("--config", cfg, "reconcile", "alpha.local", "--wait", "0.5")
        assert run.code == 3 and time.monotonic() - started >= 0.5
    finally:
        lock.release()
    assert vc("--config", cfg, "reconcile", "alpha.local", "--wait", "5").code == 0


def test_failed_listing_touches_nothing_and_others_go_on(vc: VC, cfg: Path,
                                                        write_config: Callable[..., Path]) -> None:
    assert vc("--config", cfg, "reconcile").code == 0
    before = (cfg.parent / "state" / "spaces" / "alpha.local" / "records.jsonl").read_bytes()
    broken = write_config(CONFIG.replace(
        "local: {processors: 100, boot_seconds: 30, job_seconds: 300, no_work_probability: 0}\n"
        "    machinetypes:\n      lhcb",
        "local: {processors: 100, boot_seconds: 30, api_error_probability: 1.0}\n"
        "    machinetypes:\n      lhcb").replace("processors_limit: 2", "processors_limit: 4"))
    run = vc("--config", broken, "reconcile")
    assert run.code == 1
    assert "alpha.local: FAILED, listing failed, nothing done" in run.err
    assert "beta.local: created 2" in run.err  # the healthy space was still reconciled
    after = (cfg.parent / "state" / "spaces" / "alpha.local" / "records.jsonl").read_bytes()
    assert after == before


def test_real_process_version_and_module_entry(cfg: Path) -> None:
    assert run_process("--version").out.startswith("vcyclectl ")
    run = run_process("--config", cfg, "reconcile", "--output", "json")
    assert run.code == 0, run.err
    results = json.loads(run.out)
    assert {r["space"]: r["outcome"] for r in results} == {"alpha.local": "done",
                                                           "beta.local": "done"}


def test_a_listing_that_lost_the_whole_fleet_is_not_trusted(vc: VC, cfg: Path,
                                                             write_config: Callable[..., Path]) -> None:
    cfg = write_config(CONFIG.replace("processors_limit: 8", "processors_limit: 12"))
    assert vc("--config", cfg, "reconcile", "alpha.local").code == 0
    assert vc("--config", cfg, "reconcile", "alpha.local").code == 0  # records now confirmed
    (cfg.parent / "state" / "local" / "alpha.local" / "machines.jsonl").unlink()  # cloud "empty"
    run = vc("--config", cfg, "reconcile", "alpha.local")
    assert run.code == 1 and "lists none of the 12 machines" in run.err
    assert len(vc("--config", cfg, "list", "-o", "names").out.split()) == 12  # nothing forgotten
    run = vc("--config", cfg, "reconcile", "alpha.local", "--accept-empty-listing")
    assert run.code == 0 and "forgot 12" in run.err and "created 12" in run.err


def test_a_small_fleet_missing_from_the_listing_is_not_trusted_either(vc: VC, cfg: Path) -> None:
    """The guard once needed 10 machines: a fleet of 2 vanished silently (issue 22)."""
    assert vc("--config", cfg, "reconcile", "beta.local").code == 0
    assert vc("--config", cfg, "reconcile", "beta.local").code == 0  # records now confirmed
    (cfg.parent / "state" / "local" / "beta.local" / "machines.jsonl").unlink()
    run = vc("--config", cfg, "reconcile", "beta.local")
    assert run.code == 1 and "lists none of the 2 machines" in run.err
    assert len(vc("--config", cfg, "list", "-o", "names").out.split()) == 2


def test_a_lost_format_json_is_refused_not_replaced(vc: VC, cfg: Path) -> None:
    """`rm STATE/format.json` once made a new state id: the old fleet (tagged with the old
    id) was never seen again and a second one was created beside it (issue 22)."""
    state = cfg.parent / "state"
    assert vc("--config", cfg, "reconcile").code == 0
    old_id = json.loads((state / "format.json").read_text())["id"]
    (state / "format.json").unlink()
    for args in (("reconcile",), ("plan",)):
        run = vc("--config", cfg, *args)
        assert run.code == 1, run.err
        assert "refusing to make a new state id" in run.err and old_id in run.err
    assert not (state / "format.json").exists()
    local = (state / "local" / "alpha.local" / "machines.jsonl").read_text().splitlines()
    assert len(local) == 8  # nothing created beside the old fleet
    (state / "format.json").write_text(json.dumps({"format_version": 1, "id": old_id}))
    run = vc("--config", cfg, "reconcile")  # restored as the message says: all is well
    assert run.code == 0 and "created 0" in run.err and "forgot 0" in run.err


def test_doctor_checks_each_space_against_its_cloud(vc: VC, cfg: Path,
                                                     write_config: Callable[..., Path]) -> None:
    vc("--config", cfg, "reconcile")
    rows = json.loads(vc("--config", cfg, "doctor", "-o", "json").out)
    assert [(r["space"], r["ok"], r["machines"]) for r in rows] == [("alpha.local", True, 8),
                                                                     ("beta.local", True, 2)]
    broken = write_config(CONFIG.replace("atlas: {target_share: 1}",
                                         "atlas: {target_share: 1, min_processors: 8}"))
    run = vc("--config", broken, "doctor", "alpha.local", "-o", "json")
    assert run.code == 1
    (row,) = json.loads(run.out)
    assert row["ok"] is False and "atlas: no flavor fits" in row["warnings"][0]


STALL_CONFIG = """\
state_dir: state
defaults:
  min_pass_interval_seconds: 0   # passes follow each other quickly here
  backoff_seconds: 0
  fizzle_seconds: 0
  heartbeat_seconds: 10
spaces:
  alpha.local:
    cloud: local
    processors_limit: 6
    local: {processors: 100, boot_seconds: 0, job_seconds: 3600, no_work_probability: 0}
    machinetypes:
      lhcb: {}
"""


def test_a_stall_after_the_listing_deletes_nothing(vc: VC, write_config: Callable[..., Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A 12 s stall after the listing (the fault-injection hook; SIGSTOP, a paused VM or a
    slow filesystem in life) once counted as heartbeat age: all 6 heartbeating machines
    were deleted with `700 Heartbeat file not updated` (issue 22)."""
    cfg = write_config(STALL_CONFIG)
    assert vc("--config", cfg, "reconcile").code == 0
    assert vc("--config", cfg, "reconcile").code == 0  # running now, heartbeating
    before = sorted(vc("--config", cfg, "list", "-o", "names").out.split())
    assert len(before) == 6
    monkeypatch.setenv("VCYCLECTL_FAULT_STALL_AFTER_LISTING", "12")
    # Planned against the observation's own time: a stall is not heartbeat age.
    (plan,) = json.loads(vc("--config", cfg, "plan", "-o", "json").out)
    assert [a for a in plan["actions"] if a["action"] == "delete"] == []
    # Acting on an observation 12 s old (bound: half of heartbeat_seconds, at least 5 s)
    # is refused: the space fails this pass, nothing is deleted or created.
    run = vc("--config", cfg, "reconcile")
    assert run.code == 1 and "stalled between listing and acting" in run.err, run.err
    monkeypatch.delenv("VCYCLECTL_FAULT_STALL_AFTER_LISTING")
    after = json.loads(vc("--config", cfg, "list", "-o", "json").out)
    assert sorted(m["name"] for m in after) == before
    assert all(m["state"] == "running" for m in after)
    assert vc("--config", cfg, "reconcile").code == 0  # the next pass is a normal one
    assert sorted(vc("--config", cfg, "list", "-o", "names").out.split()) == before


SKEW_CONFIG = """\
state_dir: state
defaults:
  min_pass_interval_seconds: 0   # passes follow each other quickly here
  backoff_seconds: 0
  fizzle_seconds: 0
  max_wallclock_seconds: 3600
spaces:
  alpha.local:
    cloud: local
    processors_limit: 4
    local: {processors: 100, boot_seconds: 0, job_seconds: 36000, no_work_probability: 0}
    machinetypes:
      lhcb: {}
"""


def test_a_host_clock_two_hours_fast_deletes_nothing(vc: VC, write_config: Callable[..., Path],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """One host's clock 2 h fast once deleted every running machine as `700 Exceeded
    max_wallclock_seconds` (issue 22). The pass compares its clock with the mtime the state
    directory's filesystem stamps and withholds time-based deletions beyond the bound."""
    from vcyclectl import config as config_module
    from vcyclectl.reconcile import reconcile_space
    from vcyclectl.state.store import StateDir
    from vcyclectl.commands.views import doctor_rows

    cfg = write_config(SKEW_CONFIG)
    assert vc("--config", cfg, "reconcile").code == 0
    assert vc("--config", cfg, "reconcile").code == 0
    before = sorted(vc("--config", cfg, "list", "-o", "names").out.split())
    assert len(before) == 4
    config = config_module.load(cfg)
    space = config.spaces["alpha.local"]
    state_id = StateDir(config.state_dir).open(create=False)

    def fast() -> float:
        return time.time() + 7200

    capsys.readouterr()
    result = reconcile_space(config, space, state_id, clock=fast)
    assert (result.outcome, result.deleted, result.created) == ("done", 0, 0), result.summary()
    assert result.plan is not None
    assert any("time-based deletions withheld" in n and "7200s ahead" in n
               for n in result.plan.notes), result.plan.notes
    assert "clock skew" in capsys.readouterr().err
    assert sorted(vc("--config", cfg, "list", "-o", "names").out.split()) == before
    status = json.loads(vc("--config", cfg, "status", "-o", "json").out)
    assert status[0]["clock_skew_seconds"] == pytest.approx(7200, abs=5)
    (row,) = doctor_rows(config, [space], clock=fast)
    assert row["ok"] is False and any("7200s ahead" in w for w in row["warnings"])
    (row,) = doctor_rows(config, [space])  # this host's real clock agrees
    assert row["ok"] is True and abs(row["clock_skew_seconds"]) < 5
    assert vc("--config", cfg, "reconcile").code == 0  # an honest clock: nothing to end yet
    assert sorted(vc("--config", cfg, "list", "-o", "names").out.split()) == before


def test_a_bad_record_or_drain_mark_is_skipped_and_named(vc: VC, cfg: Path) -> None:
    """Issue 22: one bad line in records.jsonl or a bad drain file made list, status and
    plan fail for every space with "internal error: TypeError". Now the entry is skipped
    with its file and line, and every space is still shown."""
    assert vc("--config", cfg, "reconcile").code == 0
    folder = cfg.parent / "state" / "spaces" / "alpha.local"
    with open(folder / "records.jsonl", "a") as journal:
        journal.write('{"put": {"name": "vcyclectl-alpha-local-atlas-broken0001", '
                      '"space": "alpha.local"}}\n')                       # fields missing
        journal.write('{"put": {"name": "vcyclectl-alpha-local-atlas-broken0002", '
                      '"space": "alpha.local", "machinetype": "atlas", "state": "running", '
                      '"processors": "many", "created_at": "yesterday"}}\n')  # wrong types
    (folder / "drains" / "machinetype-atlas.json").write_text('{"since": "soon"}')
    lines = (folder / "records.jsonl").read_text().count("\n")
    for args in (("list",), ("status",), ("plan",)):
        run = vc("--config", cfg, *args, "-o", "json")
        assert run.code == 0, (args, run.err)
        assert "internal error" not in run.err
    run = vc("-v", "--config", cfg, "list", "-o", "json")
    assert f"records.jsonl line={lines - 1}" in run.err.replace('"', "")
    names = [m["name"] for m in json.loads(run.out)]
    assert len(names) == 10 and not any("broken" in n for n in names)
    spaces = {r["space"] for r in json.loads(vc("--config", cfg, "status", "-o", "json").out)}
    assert spaces == {"alpha.local", "beta.local"}
