"""Failures are never silent (issue 18): a failed space shows under `-q`, cron and systemd;
an unusable state directory is an error naming its path, not an empty fleet; `config
check` reports every error it finds, rendered `#cloud-config` templates included."""

from __future__ import annotations

import configparser
import os
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import REPO, Run, vcyclectl_command

VC = Callable[..., Run]

CONFIG = """\
state_dir: state
defaults: {min_pass_interval_seconds: 0}
spaces:
  alpha.local:
    cloud: local
    processors_limit: 4
    local: {processors: 100, boot_seconds: 30, job_seconds: 300, no_work_probability: 0}
    machinetypes:
      lhcb: {}
  beta.local:
    cloud: local
    processors_limit: 2
    local: {processors: 100, boot_seconds: 30, job_seconds: 300, no_work_probability: 0}
    machinetypes:
      dune: {}
"""
BROKEN_LISTING = CONFIG.replace("processors: 100, boot_seconds: 30, job_seconds: 300, "
                                "no_work_probability: 0}\n    machinetypes:\n      lhcb",
                                "processors: 100, api_error_probability: 1.0}\n"
                                "    machinetypes:\n      lhcb")


@pytest.fixture
def cfg(write_config: Callable[..., Path]) -> Path:
    return write_config(CONFIG)


@pytest.fixture
def broken(write_config: Callable[..., Path]) -> Path:
    assert BROKEN_LISTING != CONFIG
    return write_config(BROKEN_LISTING)


# -- a failed space under -q, cron and systemd ----------------------------------------------
def test_quiet_hides_chatter_but_never_a_failed_space(vc: VC, broken: Path) -> None:
    run = vc("-q", "--config", broken, "reconcile")
    assert run.code == 1
    assert run.out == ""
    lines = run.err.splitlines()
    assert "alpha.local: FAILED, listing failed, nothing done" in lines[0]
    assert any(" ERROR " in line and "space failed" in line and "space=alpha.local" in line
               for line in lines)
    assert "beta.local" not in run.err  # the healthy space's summary is chatter: hidden
    for fmt in ("table", "json"):
        plan = vc("-q", "--config", broken, "plan", "-o", fmt)
        assert plan.code == 1 and "alpha.local: FAILED, listing failed" in plan.err


def test_a_failed_space_reaches_journald_at_error_priority(broken: Path, tmp_path: Path) -> None:
    """Under systemd stderr is a journald stream (JOURNAL_STREAM names it): the failure
    lines carry `<3>`, so `journalctl -p err` and alerts on priority match them."""
    stderr_file = tmp_path / "stderr"
    with open(stderr_file, "wb") as handle:
        st = os.fstat(handle.fileno())
        proc = subprocess.run([*vcyclectl_command(), "-q", "--config", str(broken), "reconcile"],
                              stdout=subprocess.PIPE, stderr=handle, timeout=120,
                              env={**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    assert proc.returncode == 1
    lines = stderr_file.read_text().splitlines()
    assert lines and all(line.startswith("<3>") for line in lines)
    assert any("alpha.local: FAILED" in line for line in lines)


def test_systemd_unit_and_cron_let_a_failed_space_show() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(REPO / "cron" / "vcyclectl-reconcile.service")
    service = unit["Service"]
    assert "-q reconcile" in service["ExecStart"]
    success = service.get("SuccessExitStatus", "0").split()
    assert "1" not in success  # exit 1 (a space failed) leaves the unit failed
    cron = (REPO / "cron" / "vcyclectl.cron").read_text().splitlines()
    (job,) = [line for line in cron if line.startswith("*")]
    assert "-q reconcile" in job and "tee -a" in job  # what -q prints also reaches cron's mail


# -- the state directory -------------------------------------------------------------------
READ_ONLY = (["status"], ["list"], ["plan"], ["inspect", "vcyclectl-alpha-local-lhcb-x"],
             ["list", "--live"], ["undrain", "alpha.local"])


def test_missing_or_uninitialised_state_dir_is_an_error_not_an_empty_fleet(vc: VC, cfg: Path
                                                                          ) -> None:
    state = cfg.parent / "state"
    for command in READ_ONLY:
        run = vc("--config", cfg, *command)
        assert run.code == 2, (command, run)
        assert run.err == (f"vcyclectl: state directory {state} does not exist; "
                           "`vcyclectl reconcile` creates it on first use\n")
        assert run.out == ""
    state.mkdir()  # the empty mount point of an unmounted share
    for command in READ_ONLY:
        run = vc("--config", cfg, *command)
        assert run.code == 2 and f"state directory {state} is not initialised" in run.err
    assert list(state.iterdir()) == []  # nothing was written into it
    assert vc("--config", cfg, "reconcile").code == 0  # reconcile still initialises it
    assert vc("--config", cfg, "status").code == 0


def test_environment_errors_are_one_line_with_the_path(vc: VC, cfg: Path, tmp_path: Path
                                                       ) -> None:
    run = vc("--config", cfg, "--state-dir", "/dev/null/x", "status")
    assert run.code == 2
    assert run.err.startswith("vcyclectl: state directory /dev/null/x: cannot read "
                              "/dev/null/x/format.json: Not a directory")
    assert len(run.err.splitlines()) == 1 and "internal error" not in run.err
    odd = tmp_path / "odd"
    (odd / "format.json").mkdir(parents=True)
    for command in (["list"], ["reconcile"]):
        run = vc("--config", cfg, "--state-dir", odd, *command)
        assert run.code == 2 and f"{odd / 'format.json'}: Is a directory" in run.err
        assert "internal error" not in run.err and "report" not in run.err


def test_list_filters_that_cannot_match_are_usage_errors(vc: VC, cfg: Path) -> None:
    assert vc("--config", cfg, "reconcile").code == 0
    run = vc("--config", cfg, "list", "--state", "bogus")
    assert run.code == 2 and "--state 'bogus': not a machine state" in run.err
    run = vc("--config", cfg, "list", "--machinetype", "atlas")
    assert run.code == 2 and "--machinetype 'atlas': no such machinetype" in run.err
    run = vc("--config", cfg, "list", "--space", "beta.local", "--machinetype", "lhcb")
    assert run.code == 2  # lhcb exists, but not in the space asked for
    assert vc("--config", cfg, "list", "--state", "starting", "-m", "lhcb").code == 0


def test_state_dir_and_output_from_the_environment(vc: VC, cfg: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "elsewhere"
    monkeypatch.setenv("VCYCLECTL_STATE_DIR", str(other))
    monkeypatch.setenv("VCYCLECTL_OUTPUT", "names")
    assert vc("--config", cfg, "reconcile").code == 0
    assert (other / "format.json").exists() and not (cfg.parent / "state").exists()
    names = vc("--config", cfg, "list").out.split()
    assert len(names) == 6 and all(n.startswith("vcyclectl-") for n in names)
    assert vc("--config", cfg, "list", "-o", "json").out.startswith("[")  # the flag wins
    monkeypatch.setenv("VCYCLECTL_OUTPUT", "xml")
    run = vc("--config", cfg, "list")
    assert run.code == 2 and "VCYCLECTL_OUTPUT" in run.err


# -- config check --------------------------------------------------------------------------
def test_config_check_reports_every_error(vc: VC, write_config: Callable[..., Path],
                                          tmp_path: Path) -> None:
    (tmp_path / "ok.user_data").write_text("#cloud-config\nhostname: ##user_data_space##\n")
    (tmp_path / "typo.user_data").write_text("#!/bin/sh\necho ##user_data_option_nope##\n"
                                             "echo ##user_data_frobnicate##\n")
    (tmp_path / "broken.user_data").write_text("#cloud-config\nruncmd:\n  - [echo, hi\n")
    config = write_config("""\
        state_dir: state
        spaces:
          alpha.local:
            processors_limit: -1
            cloud: local
            machinetypes:
              lhcb: {user_data: ok.user_data}
          beta.local:
            cloud: local
            machinetypes:
              dune: {min_procesors: 2}
              atlas: {min_processors: 4, max_processors: 2}
        """)
    run = vc("--config", config, "config", "check")
    assert run.code == 2
    assert run.err.splitlines() == [
        f"vcyclectl: {config}:4: spaces.alpha.local.processors_limit: must be at least 0, "
        "got -1",
        f"vcyclectl: {config}:11: spaces.beta.local.machinetypes.dune.min_procesors: unknown "
        "key (did you mean 'min_processors'?)",
        f"vcyclectl: {config}:12: spaces.beta.local.machinetypes.atlas.min_processors: "
        "min_processors (4) is more than max_processors (2)",
    ]
    config = write_config("""\
        state_dir: state
        spaces:
          alpha.local:
            cloud: local
            machinetypes:
              lhcb: {user_data: ok.user_data}
              typo: {user_data: typo.user_data}
              broken: {user_data: broken.user_data}
        """)
    run = vc("--config", config, "config", "check")
    assert run.code == 2
    key = "spaces.alpha.local.machinetypes"
    lines = run.err.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"vcyclectl: {tmp_path / 'typo.user_data'}:2: {key}.typo."
                               "user_data: ##user_data_option_nope##")
    assert lines[1].startswith(f"vcyclectl: {tmp_path / 'typo.user_data'}:3: {key}.typo."
                               "user_data: ##user_data_frobnicate##: unknown substitution")
    assert lines[2].startswith(f"vcyclectl: {tmp_path / 'broken.user_data'}:3: {key}.broken."
                               "user_data: #cloud-config is not valid YAML once rendered")


def test_config_check_renders_cloud_config_before_parsing(vc: VC, tmp_path: Path,
                                                          write_config: Callable[..., Path]
                                                          ) -> None:
    """The template is valid YAML as written; the value substituted into it is not."""
    (tmp_path / "t.user_data").write_text(
        "#cloud-config\nhostname: ##user_data_machine_hostname##\nwrite_files:\n"
        "  - path: /etc/motd\n    content: ##user_data_option_motd##\n")
    text = """\
        state_dir: state
        spaces:
          alpha.local:
            cloud: local
            machinetypes:
              lhcb: {user_data: t.user_data, user_data_options: {motd: "MOTD"}}
        """
    good = write_config(text.replace("MOTD", "welcome"))
    assert vc("--config", good, "config", "check").code == 0
    bad = write_config(text.replace("MOTD", "note: read this"))
    run = vc("--config", bad, "config", "check")
    assert run.code == 2
    assert run.err == (f"vcyclectl: {tmp_path / 't.user_data'}:5: spaces.alpha.local."
                       "machinetypes.lhcb.user_data: #cloud-config is not valid YAML once "
                       "rendered: mapping values are not allowed here\n")
    (tmp_path / "t.user_data").write_text("#cloud-config\n- just a list\n")
    run = vc("--config", good, "config", "check")
    assert run.code == 2 and "#cloud-config must be a YAML mapping" in run.err


def test_state_dir_oddities_are_one_clear_line(vc: VC, write_config: Callable[..., Path],
                                               tmp_path: Path) -> None:
    """Issue 22: these were "internal error … please report it" (or a wrong message)."""
    import json as json_

    (tmp_path / "afile").write_text("")
    cfg = write_config("state_dir: afile\nspaces:\n  a.b: {cloud: local, machinetypes: {m: {}}}\n")
    run = vc("--config", cfg, "config", "check")
    assert run.code == 2 and f"{cfg}:1: state_dir: " in run.err and "is a file" in run.err
    cfg = write_config("state_dir: st\nspaces:\n  a.b: {cloud: local, machinetypes: {m: {}}}\n")
    assert vc("--config", cfg, "reconcile").code == 0
    fmt = tmp_path / "st" / "format.json"
    good = json_.loads(fmt.read_text())
    for bad, says in ((dict(good, format_version="1"), "must be a whole number, got '1'"),
                      ({k: v for k, v in good.items() if k != "id"}, "has no state id")):
        fmt.write_text(json_.dumps(bad))
        run = vc("--config", cfg, "status")
        assert run.code == 2 and says in run.err and "internal error" not in run.err, run.err
    fmt.write_text(json_.dumps(good))
    assert vc("--config", cfg, "status").code == 0
