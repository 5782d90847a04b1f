"""Failures are never silent (issue 18): `config check` reports every error it finds,
rendered `#cloud-config` templates included."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from tests.conftest import Run

VC = Callable[..., Run]


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
            machinetypes:
              lhcb: {user_data: ok.user_data}
          beta.local:
            machinetypes:
              dune: {min_procesors: 2}
              atlas: {min_processors: 4, max_processors: 2}
        """)
    run = vc("--config", config, "config", "check")
    assert run.code == 2
    assert run.err.splitlines() == [
        f"vcyclectl: {config}:4: spaces.alpha.local.processors_limit: must be at least 0, "
        "got -1",
        f"vcyclectl: {config}:9: spaces.beta.local.machinetypes.dune.min_procesors: unknown "
        "key (did you mean 'min_processors'?)",
        f"vcyclectl: {config}:10: spaces.beta.local.machinetypes.atlas.min_processors: "
        "min_processors (4) is more than max_processors (2)",
    ]
    config = write_config("""\
        state_dir: state
        spaces:
          alpha.local:
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
