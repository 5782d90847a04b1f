"""`import vcycle`: files found where Vcycle reads them (standard layout) or elsewhere (flat
layouts, marked `# CHANGE:`), shared machinetypes as library entries, the EC2 credentials
file, and comments that never cut a path (issue 21)."""

from __future__ import annotations

import re
from pathlib import Path

from vcyclectl import config
from vcyclectl.migrate.files import VcycleFiles
from vcyclectl.migrate.vcycle import import_vcycle
from vcyclectl.migrate.yamlblock import Block, render

MT = """\
[machinetype {space} lhcb]
root_image = image:cernvm4
max_processors = 8
target_share = 2
user_data = lhcb.user_data
user_data_option_cvmfs_proxy = http://squid.example.org:3128
user_data_file_token = lhcb.token
user_data_proxy = True
"""
SPACE = """\
[space {space}]
api = openstack
url = https://keystone.{space}/v3
cred_id = id-{space}
cred_secret = secret-{space}
processors_limit = 40
"""
TEMPLATE = "#cloud-config\n# ##user_data_option_cvmfs_proxy## ##user_data_option_token##\n"


def site(tmp_path: Path, spaces: list[str], extra: str = "") -> Path:
    conf = tmp_path / "vcycle.conf"
    conf.write_text("".join(SPACE.format(space=s) + MT.format(space=s) for s in spaces) + extra)
    return conf


def standard_files(lib: Path, space: str, template: str = TEMPLATE) -> Path:
    """Vcycle's own layout: MTDIR/files/NAME, and the proxy's pems in MTDIR itself."""
    mt_dir = lib / "spaces" / space / "machinetypes" / "lhcb"
    (mt_dir / "files").mkdir(parents=True)
    (mt_dir / "files" / "lhcb.user_data").write_text(template)
    (mt_dir / "files" / "lhcb.token").write_text("token\n")
    (mt_dir / "x509cert.pem").write_text("cert\n")
    (mt_dir / "x509key.pem").write_text("key\n")
    return mt_dir


def marks(yaml_text: str) -> list[str]:
    """Each `# CHANGE:` comment, its wrapped lines joined."""
    out: list[str] = []
    current: list[str] | None = None
    for line in yaml_text.splitlines():
        text = line.strip()
        if text.startswith("# CHANGE:"):
            current = [text[2:]]
            out.append("")
        elif text.startswith("#") and current is not None and not text.startswith("# vcycle:"):
            current.append(text[2:])
        else:
            current = None
            continue
        out[-1] = " ".join(current)
    return out


def test_standard_layout_is_used_as_is_without_change_marks(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    mt_dir = standard_files(lib, "a.example.org")
    result = import_vcycle([site(tmp_path, ["a.example.org"])], vcycle_dir=lib,
                           feedback_url="https://serve.example.org", state_dir="/srv/vcyclectl")
    assert marks(result.yaml) == []
    assert f"user_data: {mt_dir}/files/lhcb.user_data" in result.yaml
    assert f"x509_cert: {mt_dir}/x509cert.pem" in result.yaml  # beside files/, as Vcycle reads
    assert f"token: {mt_dir}/files/lhcb.token" in result.yaml


def test_flat_layout_beside_vcycle_conf_is_found_and_marked(tmp_path: Path) -> None:
    conf = site(tmp_path, ["a.example.org"])
    for name, text in (("lhcb.user_data", TEMPLATE), ("lhcb.token", "t\n"),
                       ("x509cert.pem", "c\n"), ("x509key.pem", "k\n")):
        (tmp_path / name).write_text(text)
    lib = tmp_path / "empty-var-lib-vcycle"
    result = import_vcycle([conf], vcycle_dir=lib, feedback_url="https://serve.example.org",
                           state_dir="/srv/vcyclectl")
    found = marks(result.yaml)
    assert len(found) == 4, found
    standard = lib / "spaces/a.example.org/machinetypes/lhcb"
    assert f"CHANGE: user_data found at {tmp_path}/lhcb.user_data, not where Vcycle reads it " \
           f"({standard}/files/lhcb.user_data)" in found[0]
    assert f"user_data: {tmp_path}/lhcb.user_data" in result.yaml
    assert f"x509_key: {tmp_path}/x509key.pem" in result.yaml
    out = tmp_path / "out"
    out.mkdir()
    (out / "vcyclectl.yaml").write_text(result.yaml)
    assert config.load(out / "vcyclectl.yaml").spaces["a.example.org"].machinetypes["lhcb"] \
        .user_data == str(tmp_path / "lhcb.user_data")


def test_flat_var_lib_vcycle_per_machinetype_folder(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    (lib / "lhcb").mkdir(parents=True)
    (lib / "lhcb" / "lhcb.user_data").write_text(TEMPLATE)
    files = VcycleFiles(lib)
    found = files.named_file("a.example.org", "lhcb", "lhcb.user_data", "user_data")
    assert found.path == lib / "lhcb" / "lhcb.user_data" and found.change is not None


def test_files_found_nowhere_keep_the_standard_path_marked(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    result = import_vcycle([site(tmp_path, ["a.example.org"])], vcycle_dir=lib,
                           feedback_url="https://serve.example.org", state_dir="/srv/v")
    found = marks(result.yaml)
    assert len(found) == 4 and all("was not found on this host" in m for m in found)
    assert f"user_data: {lib}/spaces/a.example.org/machinetypes/lhcb/files/lhcb.user_data" \
        in result.yaml


def test_every_guessed_value_is_marked(tmp_path: Path) -> None:
    conf = tmp_path / "vcycle.conf"
    conf.write_text("[space a.example.org]\napi = openstack\n"
                    "[machinetype a.example.org m]\nuser_data = /nowhere/m.user_data\n")
    result = import_vcycle([conf], vcycle_dir=tmp_path)
    found = " | ".join(marks(result.yaml))
    for guessed in ("guessed from this host's name",  # feedback_url
                    "the default, not from Vcycle",  # state_dir
                    "creates nothing until you set it",  # processors_limit from the quota
                    "set openstack.auth_url", "no credentials",
                    "user_data /nowhere/m.user_data is not readable"):
        assert guessed in found, guessed


def test_spaces_sharing_a_machinetype_share_one_library_entry(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    one = standard_files(lib, "one.example.org")
    standard_files(lib, "two.example.org")  # the same files, copied per space by Vcycle
    three = standard_files(lib, "three.example.org", template=TEMPLATE + "# other\n")
    extra = "[machinetype two.example.org lhcb]\nmax_processors = 4\n"
    conf = site(tmp_path, ["one.example.org", "two.example.org", "three.example.org"], extra)
    result = import_vcycle([conf], vcycle_dir=lib, feedback_url="https://serve.example.org")
    assert result.yaml.index("\nmachinetypes:\n  lhcb:\n") < result.yaml.index("\nspaces:\n")
    assert result.yaml.count("from: lhcb") == 3
    out = tmp_path / "out"
    out.mkdir()
    (out / "vcyclectl.yaml").write_text(result.yaml)
    cfg = config.load(out / "vcyclectl.yaml")
    mts = {name: space.machinetypes["lhcb"] for name, space in cfg.spaces.items()}
    assert {m.image for m in mts.values()} == {"cernvm4"}
    assert mts["two.example.org"].max_processors == 4  # what differs stays with the space
    assert mts["one.example.org"].max_processors == 8
    # identical copies of a file become one; a different copy stays the space's own
    assert mts["one.example.org"].user_data == mts["two.example.org"].user_data == \
        str(one / "files" / "lhcb.user_data")
    assert mts["three.example.org"].user_data == str(three / "files" / "lhcb.user_data")
    assert mts["one.example.org"].user_data_options == {
        "cvmfs_proxy": "http://squid.example.org:3128"}
    # the pems are per space (each space's own copy, all identical here: shared)
    assert len({m.user_data_files["x509_cert"] for m in mts.values()}) == 1


def test_ec2_keys_go_to_a_credentials_file_the_config_names(tmp_path: Path) -> None:
    conf = tmp_path / "vcycle.conf"
    conf.write_text("[space aws.example.org]\napi = ec2\nregion = eu-west-2\n"
                    "access_key = AKIAEXAMPLE\nsecret_key = SECRETKEY\nprocessors_limit = 4\n")
    result = import_vcycle([conf], feedback_url="https://serve.example.org")
    assert "credentials_file: secrets/aws.example.org.aws-credentials" in result.yaml
    assert "AWS_SHARED_CREDENTIALS_FILE=" not in result.yaml
    out = tmp_path / "out"
    out.mkdir()
    (out / "vcyclectl.yaml").write_text(result.yaml)
    opts = config.load(out / "vcyclectl.yaml").spaces["aws.example.org"].cloud_options
    assert opts.credentials_file == str(out / "secrets" / "aws.example.org.aws-credentials")
    assert opts.profile == "vcyclectl-aws.example.org"


def test_comments_never_cut_a_path_or_a_hostname(tmp_path: Path) -> None:
    path = "/var/lib/vcycle/spaces/cumulus-north.example-site.ac.uk/machinetypes/" \
           "lhcb-multicore-test/files/very-long-name.user_data"
    block = Block()
    block.set("user_data", path, f"CHANGE: user_data found at {path}, not where Vcycle reads "
              f"it ({path.replace('files/', '')}): check it is the file Vcycle used")
    text = render(Block(items=[("spaces", Block(items=[("a", block)]))]))
    comment_words = [w for line in text.splitlines() if line.strip().startswith("#")
                     for w in line.split()]
    assert path + "," in comment_words
    assert all(not re.fullmatch(r"[a-z-]+\.example-", w) for w in comment_words)
