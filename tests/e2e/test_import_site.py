"""A Vcycle site moves in one sitting (issue 21): import a site whose spaces share
machinetypes, with one space's files in Vcycle's standard layout and another's kept flat in
`/var/lib/vcycle`; change only the lines the import marked `# CHANGE:`; `config check`
passes; and a `reconcile` on local stand-ins of its spaces runs, with the shared
machinetypes in every space. The real `vcyclectl` command throughout."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import yaml

from tests.conftest import run_process
from tests.unit.test_x509proxy import make_ca_and_host

VCYCLE_CONF = """\
# /etc/vcycle.conf (Vcycle's format: vcycle.conf(5))
[space north.example.ac.uk]
api = openstack
url = https://keystone.north.example.ac.uk:5000/v3
project_name = gridpp
cred_id = 0123456789abcdef0123456789abcdef
cred_secret = north-app-cred-secret
processors_limit = 16
max_starting_processors = 16
flavor_names = m1.large

[space south.example.ac.uk]
api = openstack
url = https://keystone.south.example.ac.uk:5000/v3
username = vcycle
password = south-password
project_name = gridpp
domain_name = default
flavor_names = m1.large

[machinetype north.example.ac.uk lhcb]
root_image = image:cernvm4
min_processors = 4
max_processors = 4
target_share = 3
max_wallclock_seconds = 172800
heartbeat_file = heartbeat
heartbeat_seconds = 900
user_data = lhcb.user_data
user_data_option_dirac_site = VAC.Example.uk
user_data_proxy = True

[machinetype north.example.ac.uk atlas]
root_image = image:cernvm4
min_processors = 4
max_processors = 4
target_share = 1
user_data = atlas.user_data
user_data_file_token = atlas.token

[machinetype south.example.ac.uk lhcb]
root_image = image:cernvm4
min_processors = 4
max_processors = 4
target_share = 3
max_wallclock_seconds = 172800
heartbeat_file = heartbeat
heartbeat_seconds = 900
user_data = lhcb.user_data
user_data_option_dirac_site = VAC.Example.uk
user_data_proxy = True
"""

AWS_CONF = """\
# /etc/vcycle.d/aws.conf
[space aws.example.ac.uk]
api = ec2
region = eu-west-2
access_key = AKIAEXAMPLEKEY000001
secret_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
processors_limit = 8
shutdown_time = 1893456000

[machinetype aws.example.ac.uk lhcb]
root_image = image:ami-0123456789abcdef0
flavor_names = c5.xlarge
min_processors = 4
max_processors = 4
target_share = 3
max_wallclock_seconds = 172800
heartbeat_file = heartbeat
heartbeat_seconds = 900
user_data = lhcb.user_data
user_data_option_dirac_site = VAC.Example.uk
user_data_proxy = True
"""

LHCB = """\
#cloud-config
hostname: ##user_data_machine_hostname##
write_files:
  - path: /var/lib/pilot/site
    content: ##user_data_option_dirac_site##
  - path: /var/lib/pilot/proxy.pem
    content: |
      ##user_data_option_x509_proxy##
"""
ATLAS = "#cloud-config\nwrite_files:\n  - {path: /etc/token, content: ##user_data_option_token##}\n"

#: What the admin writes on each line the import marked `# CHANGE:` (by key); a marked line
#: whose key is not here was reviewed and kept as it is (a file found in a flat layout).
FIXES = {"feedback_url": "https://vcyclectl.example.ac.uk", "processors_limit": "8",
         "state_dir": "/srv/shared/vcyclectl"}


def vcycle_site(root: Path) -> tuple[list[Path], Path]:
    """north and south keep Vcycle's standard layout (identical copies, as Vcycle kept one per
    space); aws's files lie flat in /var/lib/vcycle: its own template, and copies of the same
    proxy certificate and key."""
    etc, lib = root / "etc", root / "var-lib-vcycle"
    (etc / "vcycle.d").mkdir(parents=True)
    (etc / "vcycle.conf").write_text(VCYCLE_CONF)
    (etc / "vcycle.d" / "aws.conf").write_text(AWS_CONF)
    lib.mkdir()
    _, cert, key = make_ca_and_host(lib)
    cert.rename(lib / "x509cert.pem")  # flat: what aws's lhcb uses
    key.rename(lib / "x509key.pem")
    (lib / "lhcb.user_data").write_text(LHCB + "# the aws copy\n")
    for space in ("north.example.ac.uk", "south.example.ac.uk"):
        mt_dir = lib / "spaces" / space / "machinetypes" / "lhcb"
        (mt_dir / "files").mkdir(parents=True)
        (mt_dir / "files" / "lhcb.user_data").write_text(LHCB)
        shutil.copy(lib / "x509cert.pem", mt_dir / "x509cert.pem")
        shutil.copy(lib / "x509key.pem", mt_dir / "x509key.pem")
    atlas = lib / "spaces/north.example.ac.uk/machinetypes/atlas/files"
    atlas.mkdir(parents=True)
    (atlas / "atlas.user_data").write_text(ATLAS)
    (atlas / "atlas.token").write_text("eyJhbGciOiJIUzI1NiJ9.token\n")
    return [etc / "vcycle.conf", etc / "vcycle.d" / "aws.conf"], lib


def change_only_marked_lines(text: str) -> tuple[str, list[str]]:
    """Edit the line after each `# CHANGE:` comment, as FIXES says; nothing else."""
    lines = text.splitlines()
    marked = False
    changed = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("# CHANGE:"):
            marked = True
        elif stripped.startswith("#"):
            continue
        elif marked:
            marked = False
            key = stripped.split(":", 1)[0]
            changed.append(key)
            if key in FIXES:
                lines[i] = re.sub(r":\s.*$", f": {FIXES[key]}", line)
    return "\n".join(lines) + "\n", changed


def local_stand_ins(config: Path, state: Path) -> Path:
    """The same spaces on the simulated `local` cloud: each cloud block swapped for a local
    one with the real flavors' names and sizes; everything else as imported."""
    data = yaml.safe_load(config.read_text())
    data["state_dir"] = str(state)
    for space in data["spaces"].values():
        for cloud in ("openstack", "ec2", "gce"):
            space.pop(cloud, None)
        space["cloud"] = "local"
        space["local"] = {"processors": 64, "boot_seconds": 0, "job_seconds": 3600,
                          "no_work_probability": 0,
                          "flavors": [{"name": "m1.large", "processors": 4},
                                      {"name": "c5.xlarge", "processors": 4}]}
    path = config.with_name("stand-ins.yaml")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_vcycle_site_moves_in_one_sitting(tmp_path: Path) -> None:
    files, lib = vcycle_site(tmp_path)
    out = tmp_path / "etc-vcyclectl"
    imported = run_process("import", "vcycle", *files, "-d", out, "--vcycle-dir", lib)
    assert imported.code == 0, imported.err
    config = out / "vcyclectl.yaml"
    text = config.read_text()
    assert "AKIAEXAMPLEKEY000001" not in text and "south-password" not in text

    # the shared machinetype is one library entry that every space names
    assert text.index("\nmachinetypes:\n  lhcb:\n") < text.index("\nspaces:\n")
    assert text.count("from: lhcb") == 3

    fixed, changed = change_only_marked_lines(text)
    assert {"state_dir", "feedback_url", "processors_limit"} <= set(changed)
    assert "user_data" in changed  # aws's template, found flat in /var/lib/vcycle: kept
    assert f"CHANGE: user_data found at {lib / 'lhcb.user_data'}," in \
        re.sub(r"\n *# ", " ", text)  # the comment's wrapped lines joined
    before, after = text.splitlines(), fixed.splitlines()
    assert len(before) == len(after)
    assert sum(a != b for a, b in zip(before, after, strict=True)) == 3  # only the fixes
    config.write_text(fixed)

    check = run_process("--config", config, "config", "check")
    assert check.code == 0, check.err
    assert "3 spaces, 4 machinetypes" in check.err

    shown = json.loads(run_process("--config", config, "config", "show", "-o", "json").out)
    aws_lhcb = shown["spaces"]["aws.example.ac.uk"]["machinetypes"]["lhcb"]
    assert aws_lhcb["image"] == "ami-0123456789abcdef0" and aws_lhcb["flavors"] == ["c5.xlarge"]
    assert aws_lhcb["user_data"] == str(lib / "lhcb.user_data")
    north_lhcb = shown["spaces"]["north.example.ac.uk"]["machinetypes"]["lhcb"]
    assert north_lhcb["user_data_options"] == {"dirac_site": "VAC.Example.uk"}
    assert shown["spaces"]["aws.example.ac.uk"]["ec2"]["credentials_file"] == \
        str(out / "secrets" / "aws.example.ac.uk.aws-credentials")

    stand_ins = local_stand_ins(config, tmp_path / "state")
    assert run_process("--config", stand_ins, "config", "check").code == 0
    done = run_process("--config", stand_ins, "reconcile")
    assert done.code == 0, done.err
    rows = json.loads(run_process("--config", stand_ins, "list", "-o", "json").out)
    by_space: dict[str, set[str]] = {}
    for row in rows:
        by_space.setdefault(row["space"], set()).add(row["machinetype"])
    assert by_space == {"north.example.ac.uk": {"lhcb", "atlas"},
                        "south.example.ac.uk": {"lhcb"}, "aws.example.ac.uk": {"lhcb"}}
    assert all(row["processors"] == 4 for row in rows)
