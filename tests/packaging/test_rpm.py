"""The EL9 RPM (issue 18): built here with Debian's rpmbuild from packaging/rpm/vcyclectl.spec
(offline: pip only fills the wheelhouse, from its cache), its file list checked with
`rpm -qlp`, and the virtualenv it carries run from an extracted copy.

The build uses `EXTRAS=serve` and a fast payload to stay quick; a site builds `all` (the
default) the same way with `packaging/rpm/build.sh OUTDIR`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

RPM_TOOLS = "rpmbuild, rpm and rpm2cpio (Debian: apt-get install rpm; tests/packaging/install.sh)"


@pytest.fixture(scope="module")
def rpm_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for tool in ("rpmbuild", "rpm", "rpm2cpio"):
        assert shutil.which(tool), f"{tool} is needed: {RPM_TOOLS}"
    out = tmp_path_factory.mktemp("rpm")
    done = subprocess.run(
        ["sh", str(REPO / "packaging" / "rpm" / "build.sh"), str(out), "--nodeps",
         "--define", "_binary_payload w1.gzdio"],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "PYTHON": sys.executable, "EXTRAS": "serve"})
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = sorted(out.glob("RPMS/*/vcyclectl-*.rpm"))
    return built


def _query(rpm: Path, *args: str) -> str:
    return subprocess.run(["rpm", "-qp", *args, str(rpm)], capture_output=True, text=True,
                          check=True, timeout=120).stdout


def test_rpm_file_list(rpm_file: Path) -> None:
    files = set(_query(rpm_file, "--list").splitlines())
    expected = {
        "/usr/bin/vcyclectl", "/opt/vcyclectl/bin/vcyclectl", "/opt/vcyclectl/bin/python",
        "/opt/vcyclectl/pyvenv.cfg",
        "/etc/vcyclectl", "/etc/vcyclectl/conf.d", "/etc/vcyclectl/vcyclectl.yaml",
        "/usr/lib/systemd/system/vcyclectl-reconcile.service",
        "/usr/lib/systemd/system/vcyclectl-reconcile.timer",
        "/usr/lib/systemd/system/vcyclectl-serve.service",
        "/usr/lib/sysusers.d/vcyclectl.conf", "/usr/lib/tmpfiles.d/vcyclectl.conf",
        "/etc/logrotate.d/vcyclectl", "/var/lib/vcyclectl", "/var/log/vcyclectl",
        "/usr/share/doc/vcyclectl/README.md", "/usr/share/doc/vcyclectl/config.md",
        "/usr/share/doc/vcyclectl/serve.md", "/usr/share/doc/vcyclectl/troubleshooting.md",
    }
    assert expected <= files, sorted(expected - files)
    assert any(f.endswith("/site-packages/vcyclectl/cli.py") for f in files)
    assert any(f.endswith("/site-packages/gunicorn/__init__.py") for f in files)
    assert any(f.endswith("/LICENSE") and "licenses" in f for f in files)
    outside = {f for f in files if not f.startswith(("/opt/vcyclectl", "/usr/share/doc/",
                                                      "/usr/share/licenses/"))}
    assert outside == {f for f in expected if not f.startswith(("/opt/", "/usr/share/"))}


def test_rpm_metadata_owners_and_config_files(rpm_file: Path) -> None:
    assert _query(rpm_file, "--queryformat", "%{LICENSE}") == "Apache-2.0"
    links = dict(line.split(" ", 1) for line in _query(
        rpm_file, "--queryformat", "[%{FILENAMES} %{FILELINKTOS}\n]").splitlines())
    assert links["/usr/bin/vcyclectl"] == "/opt/vcyclectl/bin/vcyclectl"
    owners = dict(line.rsplit(" ", 1) for line in _query(
        rpm_file, "--queryformat", "[%{FILENAMES} %{FILEUSERNAME}\n]").splitlines())
    assert owners["/var/lib/vcyclectl"] == owners["/var/log/vcyclectl"] == "vcyclectl"
    assert set(_query(rpm_file, "--configfiles").split()) == {
        "/etc/vcyclectl/vcyclectl.yaml", "/etc/logrotate.d/vcyclectl"}
    scripts = _query(rpm_file, "--scripts")
    assert "useradd -r -g vcyclectl" in scripts and "systemd-tmpfiles --create" in scripts


def _extract_newc(archive: bytes, into: Path) -> None:
    """Unpack a cpio archive in the `newc` format rpm2cpio writes (no cpio on Debian by
    default): regular files, directories and symlinks, with their modes."""
    at = 0
    while True:
        header = archive[at:at + 110]
        assert header[:6] == b"070701", "not a newc cpio archive"
        mode, size, name_size = (int(header[6 + 8 * i:14 + 8 * i], 16) for i in (1, 6, 11))
        name = archive[at + 110:at + 110 + name_size - 1].decode()
        at = (at + 110 + name_size + 3) & ~3
        data = archive[at:at + size]
        at = (at + size + 3) & ~3
        if name == "TRAILER!!!":
            return
        target = into / name.lstrip("./")
        target.parent.mkdir(parents=True, exist_ok=True)
        kind = mode & 0o170000
        if kind == 0o040000:
            target.mkdir(exist_ok=True)
        elif kind == 0o120000:
            target.symlink_to(data.decode())
        elif kind == 0o100000:
            target.write_bytes(data)
            target.chmod(mode & 0o7777)


def test_rpm_venv_runs_and_points_at_opt(rpm_file: Path, tmp_path: Path) -> None:
    """Extracted anywhere, the packaged virtualenv runs vcyclectl (a venv finds its
    packages next to its interpreter), and nothing in it names the build directory."""
    payload = subprocess.run(["rpm2cpio", str(rpm_file)], capture_output=True, check=True,
                             timeout=300).stdout
    _extract_newc(payload, tmp_path)
    venv = tmp_path / "opt" / "vcyclectl"
    assert (venv / "bin" / "vcyclectl").read_text().splitlines()[0] == \
        "#!/opt/vcyclectl/bin/python"
    assert "BUILDROOT" not in (venv / "pyvenv.cfg").read_text()
    config = tmp_path / "etc" / "vcyclectl" / "vcyclectl.yaml"
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "vcyclectl", "--config",
                           str(config), "--state-dir", str(tmp_path / "state"), "config",
                           "check"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ok: 0 spaces" in done.stderr
    for unit in ("vcyclectl-reconcile.service", "vcyclectl-serve.service"):
        shipped = tmp_path / "usr" / "lib" / "systemd" / "system" / unit
        assert shipped.read_text() == (REPO / "cron" / unit).read_text()
