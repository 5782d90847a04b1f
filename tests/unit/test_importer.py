"""`vcyclectl import vcycle` on realistic Vcycle configurations: the YAML it writes loads and
passes `config check`, secrets land only in 0600 files, and every option that could not be
carried over is named in a comment with the reason."""

from __future__ import annotations

import json
import stat
import textwrap
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import Run
from vcyclectl import config
from vcyclectl.vm import userdata
from vcyclectl.migrate.vcycle import import_vcycle

VCYCLE_CONF = """\
# /etc/vcycle.conf at an example GridPP site
[space cumulus.example.ac.uk]
api = openstack
url = https://keystone.example.ac.uk:5000/v3
project_name = gridpp-vcycle
domain_name = default
region = RegionOne
zones = nova-a nova-b
security_groups = default,grid-workers
network_uuid = 0b5c4a2e-6bd2-4a5c-9a6e-2f1f3c1d4e5f
cred_id = 4f1b9c1d2e3f4a5b6c7d8e9f0a1b2c3d
cred_secret = s3cr3t-app-cred-XYZ
processors_limit = 400
max_starting_processors = 64
flavor_names = m1.xlarge m1.large
gocdb_sitename = UKI-EXAMPLE
vacmon_hostport = vacmon.example.ac.uk:8884
cleanup_hours = 48

[machinetype cumulus.example.ac.uk lhcb]
root_image = image:cernvm4-micro-2020
target_share = 3
hs06_per_processor = 10.5
min_processors = 4
max_processors = 8
backoff_seconds = 600
fizzle_seconds = 600
max_wallclock_seconds = 172800
heartbeat_file = vm-heartbeat
heartbeat_seconds = 900
user_data = user_data
user_data_option_cvmfs_proxy = http://squid.example.ac.uk:3128
user_data_option_dirac_site = VAC.Example.uk
user_data_proxy = True
accounting_fqan = /lhcb/Role=NULL/Capability=NULL
joboutputs_days = 7

[machinetype cumulus.example.ac.uk atlas]
root_image = https://cernvm.cern.ch/releases/ucernvm-prod.iso
target_share = 1
max_wallclock_seconds = 86400
user_data = atlas.user_data
user_data_option_queue = UKI-EXAMPLE_VAC
user_data_option_condor_password = hunter2-pool-password
user_data_file_idtoken = atlas.idtoken
"""

VCYCLE_D_EC2 = """\
# /etc/vcycle.d/aws.conf
[space aws.example.ac.uk]
api = ec2
url = https://ec2.eu-west-2.amazonaws.com/
region = eu-west-2
access_key = AKIAEXAMPLEKEY000001
secret_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
processors_limit = 32
shutdown_time = 1893456000

[machinetype aws.example.ac.uk lhcb]
root_image = image:ami-0123456789abcdef0
target_share = 1
max_wallclock_seconds = 86400
user_data = user_data
user_data_option_cvmfs_proxy = http://squid.example.ac.uk:3128

[vacuum_pipe cumulus.example.ac.uk dune]
vacuum_pipe_url = https://pipes.example.org/dune.pipe
target_share = 4
user_data_option_cvmfs_proxy = http://squid.example.ac.uk:3128

[space azure.example.ac.uk]
api = azure
"""

LHCB_TEMPLATE = """\
#cloud-config
hostname: ##user_data_machine_hostname##
write_files:
  - path: /etc/cvmfs/default.local
    content: CVMFS_HTTP_PROXY="##user_data_option_cvmfs_proxy##"
  - path: /var/lib/pilot/site
    content: ##user_data_option_dirac_site##
  - path: /var/lib/pilot/proxy.pem
    content: |
      ##user_data_option_x509_proxy##
"""
ATLAS_TEMPLATE = """\
#cloud-config
write_files:
  - path: /etc/condor/tokens.d/pool
    content: ##user_data_option_idtoken##
  - path: /etc/condor/queue
    content: ##user_data_option_queue## ##user_data_option_condor_password##
  - path: /etc/vcycle-url
    content: ##user_data_url##
"""


@pytest.fixture
def vcycle_site(tmp_path: Path) -> tuple[list[Path], Path]:
    """Vcycle's /etc files and /var/lib/vcycle machinetype files, as a site has them."""
    from tests.unit.test_x509proxy import make_ca_and_host

    etc = tmp_path / "etc"
    (etc / "vcycle.d").mkdir(parents=True)
    (etc / "vcycle.conf").write_text(VCYCLE_CONF)
    (etc / "vcycle.d" / "aws.conf").write_text(VCYCLE_D_EC2)
    lib = tmp_path / "var-lib-vcycle"
    lhcb = lib / "spaces/cumulus.example.ac.uk/machinetypes/lhcb/files"
    atlas = lib / "spaces/cumulus.example.ac.uk/machinetypes/atlas/files"
    aws = lib / "spaces/aws.example.ac.uk/machinetypes/lhcb/files"
    for folder in (lhcb, atlas, aws):
        folder.mkdir(parents=True)
    (lhcb / "user_data").write_text(LHCB_TEMPLATE)
    _, cert, key = make_ca_and_host(lhcb)
    cert.rename(lhcb / "x509cert.pem")
    key.rename(lhcb / "x509key.pem")
    (atlas / "atlas.user_data").write_text(ATLAS_TEMPLATE)
    (atlas / "atlas.idtoken").write_text("eyJhbGciOiJIUzI1NiJ9.pool.token\n")
    (aws / "user_data").write_text("#cloud-config\n# ##user_data_option_cvmfs_proxy##\n")
    return [etc / "vcycle.conf", etc / "vcycle.d" / "aws.conf"], lib


SECRETS = ("s3cr3t-app-cred-XYZ", "hunter2-pool-password", "AKIAEXAMPLEKEY000001",
           "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


def test_import_writes_a_loadable_config_with_secrets_in_files(
        tmp_path: Path, vcycle_site: tuple[list[Path], Path],
        vc: Callable[..., Run]) -> None:
    files, lib = vcycle_site
    out = tmp_path / "out"
    run = vc("import", "vcycle", *files, "--output-dir", out, "--vcycle-dir", lib,
             "--feedback-url", "https://vcyclectl.example.ac.uk")
    assert run.code == 0, run.err
    text = (out / "vcyclectl.yaml").read_text()
    for secret in SECRETS:
        assert secret not in text
        assert secret not in run.out + run.err
    secrets = out / "secrets"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    for path in secrets.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (secrets / "cumulus.example.ac.uk.openstack-application-credential-secret") \
        .read_text() == "s3cr3t-app-cred-XYZ\n"
    assert (secrets / "cumulus.example.ac.uk.atlas.condor_password").read_text() == \
        "hunter2-pool-password\n"
    assert "aws_secret_access_key = wJalrXUtnFEMI" in \
        (secrets / "aws.example.ac.uk.aws-credentials").read_text()

    # every option that did not carry over is named, with why
    for expected in ("joboutputs_days = 7", "root_image = https://cernvm.cern.ch",
                     "shutdown_time", "[space azure.example.ac.uk] api = azure",
                     ):
        assert f"# vcycle: {expected}" in text, expected
    assert "atlas.user_data: ##user_data_url##: not carried over" in text

    cfg = config.load(out / "vcyclectl.yaml")
    # issue 21: cleanup_hours and vacmon_hostport carry over to their top-level keys
    assert cfg.joboutputs_keep_seconds == 48 * 3600.0
    assert cfg.vacmon_hostport == ("vacmon.example.ac.uk:8884",)
    assert "# vcycle: vacmon_hostport" not in text and "# vcycle: cleanup_hours" not in text
    cumulus = cfg.spaces["cumulus.example.ac.uk"]
    # APEL accounting carries over: the site name, and each machinetype's FQAN
    assert "# vcycle: gocdb_sitename" not in text and "# vcycle: accounting_fqan" not in text
    assert cfg.accounting is not None
    settings = cfg.accounting.settings("cumulus.example.ac.uk", "lhcb")
    assert settings is not None and settings.gocdb_sitename == "UKI-EXAMPLE"
    assert cumulus.machinetypes["lhcb"].accounting_fqan == "/lhcb/Role=NULL/Capability=NULL"
    assert cumulus.cloud == "openstack" and cumulus.processors_limit == 400
    assert cumulus.max_starting_processors == 64
    opts = cumulus.cloud_options
    assert opts.auth_url == "https://keystone.example.ac.uk:5000/v3"
    assert opts.application_credential_id == "4f1b9c1d2e3f4a5b6c7d8e9f0a1b2c3d"
    assert Path(opts.application_credential_secret_file).read_text().strip() == \
        "s3cr3t-app-cred-XYZ"
    assert opts.availability_zones == ["nova-a", "nova-b"]
    assert opts.security_groups == ["default", "grid-workers"]
    assert opts.network == "0b5c4a2e-6bd2-4a5c-9a6e-2f1f3c1d4e5f"
    lhcb = cumulus.machinetypes["lhcb"]
    assert lhcb.image == "cernvm4-micro-2020" and lhcb.flavors == ("m1.xlarge", "m1.large")
    assert (lhcb.min_processors, lhcb.max_processors, lhcb.target_share) == (4, 8, 3)
    assert lhcb.hs06_per_processor == 10.5 and lhcb.max_wallclock_seconds == 172800
    assert lhcb.heartbeat_file == "vm-heartbeat" and lhcb.heartbeat_seconds == 900
    assert lhcb.user_data_options == {"cvmfs_proxy": "http://squid.example.ac.uk:3128",
                                      "dirac_site": "VAC.Example.uk"}
    assert set(lhcb.user_data_files) == {"x509_cert", "x509_key"}
    dune = cumulus.machinetypes  # the pipe is not fetched yet: its entry expands to nothing
    assert "dune" not in dune and cumulus.pipes[0].location == "https://pipes.example.org/dune.pipe"
    aws = cfg.spaces["aws.example.ac.uk"]
    assert aws.cloud == "ec2" and aws.cloud_options.profile == "vcyclectl-aws.example.ac.uk"
    assert aws.cloud_options.region == "eu-west-2" and aws.cloud_options.endpoint_url is None
    assert aws.machinetypes["lhcb"].image == "ami-0123456789abcdef0"
    assert "azure.example.ac.uk" not in cfg.spaces

    # the lhcb template (with its proxy) renders; the atlas one is refused for ##user_data_url##
    template = userdata.load_template(cumulus, lhcb)
    rendered = userdata.render(template, config=cfg, space=cumulus, mt=lhcb, machine="m")
    assert "BEGIN CERTIFICATE" in rendered and "VAC.Example.uk" in rendered
    check = vc("--config", out / "vcyclectl.yaml", "config", "check")
    assert check.code == 2 and "##user_data_url##" in check.err
    shown = vc("--config", out / "vcyclectl.yaml", "config", "show")
    assert shown.code == 0
    for secret in SECRETS:
        assert secret not in shown.out


def test_fixed_template_passes_config_check(tmp_path: Path,
                                            vcycle_site: tuple[list[Path], Path],
                                            vc: Callable[..., Run]) -> None:
    files, lib = vcycle_site
    atlas = lib / "spaces/cumulus.example.ac.uk/machinetypes/atlas/files/atlas.user_data"
    atlas.write_text(ATLAS_TEMPLATE.replace("##user_data_url##", "##user_data_space##"))
    out = tmp_path / "out"
    assert vc("import", "vcycle", *files, "-d", out, "--vcycle-dir", lib).code == 0
    check = vc("--config", out / "vcyclectl.yaml", "config", "check")
    assert check.code == 0, check.err
    assert "3 user_data templates" in check.err


def test_secrets_are_never_printed_to_stdout(vcycle_site: tuple[list[Path], Path],
                                             vc: Callable[..., Run]) -> None:
    files, lib = vcycle_site
    run = vc("import", "vcycle", *files, "--vcycle-dir", lib)
    assert run.code == 2 and "--output-dir" in run.err
    assert run.out == ""


def test_pipe_section_becomes_a_vacuum_pipe_entry_that_expands(
        tmp_path: Path, vc: Callable[..., Run]) -> None:
    (tmp_path / "vcycle.conf").write_text(textwrap.dedent(f"""\
        [space cloud.example.org]
        api = openstack
        url = https://keystone.example.org/v3
        username = vcycle
        password = pw-not-in-yaml
        project_name = vo
        domain_name = grid
        processors_limit = 100

        [vacuum_pipe cloud.example.org dune]
        vacuum_pipe_url = {tmp_path / 'dune.pipe'}
        target_share = 6
        heartbeat_seconds = 600
        """))
    (tmp_path / "dune.pipe").write_text(json.dumps({"machinetypes": [
        {"suffix": "gwms", "target_share": 2, "user_data": "dune.user_data"},
        {"suffix": "test", "target_share": 1, "user_data": "dune.user_data"}]}))
    (tmp_path / "dune.user_data").write_text("#cloud-config\n")
    out = tmp_path / "out"
    run = vc("import", "vcycle", tmp_path / "vcycle.conf", "-d", out)
    assert run.code == 0, run.err
    cfg = config.load(out / "vcyclectl.yaml")
    space = cfg.spaces["cloud.example.org"]
    assert space.cloud_options.user_domain_name == "grid"
    assert Path(space.cloud_options.password_file).read_text() == "pw-not-in-yaml\n"
    assert sorted(space.machinetypes) == ["dune-gwms", "dune-test"]
    assert space.machinetypes["dune-gwms"].target_share == 4.0
    assert space.machinetypes["dune-test"].heartbeat_seconds == 600


def test_unreadable_or_non_ini_input_is_a_usage_error(tmp_path: Path,
                                                      vc: Callable[..., Run]) -> None:
    assert vc("import", "vcycle", tmp_path / "missing.conf").code == 2
    (tmp_path / "bad.conf").write_text("no section header here\n")
    run = vc("import", "vcycle", tmp_path / "bad.conf")
    assert run.code == 2 and "not a Vcycle (INI) file" in run.err


def test_library_call_without_secrets_gives_yaml_only(tmp_path: Path) -> None:
    (tmp_path / "v.conf").write_text("[space s.example.org]\napi = ec2\nregion = us-east-1\n"
                                     "processors_limit = 4\n")
    result = import_vcycle([tmp_path / "v.conf"], feedback_url="https://x.example.org")
    assert result.secrets == {}
    assert "cloud: ec2" in result.yaml and "region: us-east-1" in result.yaml


def test_a_guessed_feedback_url_is_marked_change(tmp_path: Path,
                                                 vcycle_site: tuple[list[Path], Path]) -> None:
    """Issue 21: `feedback_url: https://HOST` was written without a `# CHANGE:` mark."""
    files, lib = vcycle_site
    guessed = import_vcycle(files, vcycle_dir=lib).yaml
    given = import_vcycle(files, vcycle_dir=lib, feedback_url="https://f.example.org").yaml
    lines = guessed.splitlines()
    line = [i for i, text in enumerate(lines) if text.startswith("feedback_url:")][0]
    above = []
    for text in reversed(lines[:line]):
        if not text.startswith("#"):
            break
        above.insert(0, text)
    assert above[0].startswith("# CHANGE: guessed"), above
    assert "CHANGE: guessed" not in given
