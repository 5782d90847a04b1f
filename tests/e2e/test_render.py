"""`vcyclectl render SPACE/MACHINETYPE`: the user_data a new machine would get, as
`reconcile` renders it, with secrets hidden unless `--show-secrets` (issue 21)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import Run
from tests.unit.test_x509proxy import make_ca_and_host
from vcyclectl.vm import tokens

TEMPLATE = """\
#cloud-config
hostname: ##user_data_machine_hostname##
write_files:
  - path: /etc/site
    content: ##user_data_option_site## in ##user_data_space##/##user_data_machinetype##
  - path: /etc/mjf
    content: ##user_data_machinefeatures_url##
  - path: /etc/pool-password
    content: ##user_data_option_pool_password##
  - path: /etc/idtoken
    content: |
      ##user_data_option_idtoken##
  - path: /etc/proxy.pem
    content: |
      ##user_data_option_x509_proxy##
  - path: /etc/token
    content: ##user_data_machine_token##
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    make_ca_and_host(tmp_path)
    (tmp_path / "lhcb.user_data").write_text(TEMPLATE)
    (tmp_path / "idtoken").write_text("eyJ.idtoken-value.sig\n")
    config = tmp_path / "vcyclectl.yaml"
    config.write_text("""\
state_dir: state
feedback_url: https://serve.example.org
machinetypes:
  lhcb:
    user_data: lhcb.user_data
    user_data_options: {site: VAC.Example.uk, pool_password: hunter2-pool}
    user_data_files: {idtoken: idtoken, x509_cert: hostcert.pem, x509_key: hostkey.pem}
spaces:
  demo.example.org:
    cloud: local
    processors_limit: 4
    machinetypes:
      lhcb: {from: lhcb}
      plain: {}
""")
    return config


def test_render_shows_the_template_filled_with_secrets_hidden(
        site: Path, vc: Callable[..., Run]) -> None:
    run = vc("--config", site, "render", "demo.example.org/lhcb")
    assert run.code == 0, run.err
    name = re.search(r"hostname: (\S+)", run.out)
    assert name and name.group(1).startswith("vcyclectl-demo-example-org-lhcb-")
    assert "VAC.Example.uk in demo.example.org/lhcb" in run.out
    assert f"https://serve.example.org/machines/demo.example.org/{name.group(1)}/" \
           "machinefeatures" in run.out
    for secret in ("hunter2-pool", "idtoken-value", "BEGIN CERTIFICATE", "PRIVATE KEY"):
        assert secret not in run.out + run.err
    assert run.out.count("***") == 4  # password, idtoken, proxy, token
    assert "pool_password" in run.err and "x509_proxy" in run.err and "machine_token" in \
        run.err and "idtoken" in run.err
    assert "##" not in run.out  # every placeholder was filled


def test_show_secrets_prints_what_the_machine_gets(site: Path, vc: Callable[..., Run],
                                                   tmp_path: Path) -> None:
    assert vc("--config", site, "reconcile").code == 0  # the state dir and its token key
    name = "vcyclectl-demo-example-org-lhcb-abcdefghij"
    run = vc("--config", site, "render", "demo.example.org/lhcb", "--show-secrets",
             "--name", name)
    assert run.code == 0, run.err
    assert "hunter2-pool" in run.out and "idtoken-value" in run.out
    assert "BEGIN CERTIFICATE" in run.out and "PRIVATE KEY" in run.out  # a fresh proxy
    assert tokens.machine_token(tmp_path / "state", name) in run.out
    assert "***" not in run.out


def test_a_machinetype_without_template_says_so(site: Path, vc: Callable[..., Run]) -> None:
    run = vc("--config", site, "render", "demo.example.org/plain")
    assert run.code == 0 and run.out == "" and "no user_data template" in run.err


@pytest.mark.parametrize("target", ["demo.example.org/nope", "nope/lhcb", "demo.example.org",
                                    "lhcb"])
def test_an_unknown_target_is_a_usage_error(site: Path, vc: Callable[..., Run],
                                            target: str) -> None:
    run = vc("--config", site, "render", target)
    assert run.code == 2 and f"render target {target!r}" in run.err and run.out == ""


def test_a_broken_template_names_its_file_and_line(site: Path, vc: Callable[..., Run]) -> None:
    template = site.parent / "lhcb.user_data"
    template.write_text(TEMPLATE + "extra: ##user_data_option_missing##\n")
    run = vc("--config", site, "render", "demo.example.org/lhcb")
    assert run.code == 2 and run.out == ""
    assert f"{template}:18: " in run.err and "##user_data_option_missing##" in run.err
