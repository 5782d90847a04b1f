"""Live upgrades (docs/state.md, "Upgrades"): the previous release and the working tree take
turns on one state directory, and an older vcyclectl refuses a newer state directory.

The previous release is installed from the local git history, never from the network: the
tag (or, in a clone without tags, the commit `releases.txt` records for it) is exported with
`git archive`, and its pure-Python package is put in its own virtualenv whose only other
path is this environment's site-packages (its dependencies; not the working tree, whose
editable hook lives in a .pth file that a plain path entry does not run).
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import REPO, Run, run_process
from tests.e2e.fleet import cloud_view
from vcyclectl.state.store import FORMAT_VERSION, StateDir

PREVIOUS = "v0.1.0"
SPACES = ("alpha.local", "beta.local")
LIMIT = 6
CONFIG = """\
state_dir: state
defaults:
  backoff_seconds: 0
  max_wallclock_seconds: 3600
spaces:
""" + "".join(f"""\
  {space}:
    cloud: local
    processors_limit: {LIMIT}
    intent_timeout_seconds: 1
    local: {{processors: 100, boot_seconds: 0.1, job_seconds: 0.6, no_work_probability: 0.2,
             failure_probability: 0.1}}
    machinetypes:
      lhcb: {{target_share: 2}}
      atlas: {{target_share: 1}}
""" for space in SPACES)


def release_commit(tag: str) -> str:
    """The tag's commit, or the one `releases.txt` records when this clone has no tags."""
    found = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", "-q",
                            f"{tag}^{{commit}}"], capture_output=True, text=True)
    if found.returncode == 0:
        return found.stdout.strip()
    for line in (Path(__file__).parent / "releases.txt").read_text().splitlines():
        name, _, commit = line.partition(" ")
        if name == tag:
            return commit.strip()
    raise AssertionError(f"release {tag} is neither a tag here nor in releases.txt")


def release_archive(tag: str) -> bytes:
    """The release's `vcyclectl/` package as a tar: from git history, or, in a clone that has
    neither the tag nor its commit (a shallow clone), from the copy kept beside this test
    (`releases/TAG.tar.gz`, made with `git archive --format=tar.gz TAG vcyclectl`)."""
    try:
        commit = release_commit(tag)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "vcyclectl"],
                                 capture_output=True, check=True)
        return archive.stdout
    except (AssertionError, subprocess.CalledProcessError, FileNotFoundError):
        import gzip

        return gzip.decompress((Path(__file__).parent / "releases" / f"{tag}.tar.gz")
                               .read_bytes())


def test_the_kept_copy_of_the_release_is_the_tagged_one() -> None:
    """The fallback copy must be the release itself: where git history has the tag, the
    two archives hold the same files with the same bytes."""
    import gzip
    import io
    import tarfile

    def files(data: bytes) -> dict[str, bytes]:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            return {m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
                    for m in tar.getmembers() if m.isfile()}

    kept = files(gzip.decompress((Path(__file__).parent / "releases" / f"{PREVIOUS}.tar.gz")
                                 .read_bytes()))
    assert "vcyclectl/state/store.py" in kept
    found = subprocess.run(["git", "-C", str(REPO), "archive", release_commit(PREVIOUS),
                            "vcyclectl"], capture_output=True)
    if found.returncode == 0:  # a clone with history: the copy must match it exactly
        assert files(found.stdout) == kept


@dataclass(frozen=True)
class Release:
    """A previous release installed under tmp: its package folder and how to run it (from
    that folder: Python puts the current directory first on the path, and the working tree
    must not be it)."""

    lib: Path
    python: Path

    def __call__(self, *args: str | Path) -> Run:
        proc = subprocess.run([str(self.python), "-m", "vcyclectl", *(str(a) for a in args)],
                              capture_output=True, text=True, timeout=120, cwd=self.lib)
        return Run(proc.returncode, proc.stdout, proc.stderr)

    @property
    def format_version(self) -> int:
        """The newest `format_version` it understands (read from its source, not run)."""
        tree = ast.parse((self.lib / "vcyclectl" / "state" / "store.py").read_text())
        for node in tree.body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == \
                    "FORMAT_VERSION" and isinstance(node.value, ast.Constant):
                return int(node.value.value)
        raise AssertionError("no FORMAT_VERSION in the previous release")


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> Release:
    """`vcyclectl` as released in PREVIOUS, in its own virtualenv."""
    root = tmp_path_factory.mktemp("previous-release")
    lib = root / "lib"
    lib.mkdir()
    subprocess.run(["tar", "-x", "-C", str(lib)], input=release_archive(PREVIOUS), check=True)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True)
    (Path(site.stdout.strip()) / "previous-release.pth").write_text(
        f"{lib}\n{sysconfig.get_paths()['purelib']}\n")
    where = subprocess.run([str(python), "-c", "import vcyclectl; print(vcyclectl.__file__)"],
                           capture_output=True, text=True, check=True, cwd=lib).stdout.strip()
    assert where == str(lib / "vcyclectl" / "__init__.py"), where
    return Release(lib, python)


def current(*args: str | Path) -> Run:
    return run_process(*args)


def check_fleet(state: Path, what: str) -> None:
    """After any pass by either version: within the limit, no duplicate, no machine without
    a record."""
    for space in SPACES:
        machines = cloud_view(state, space).list_machines()
        names = [m.name for m in machines]
        assert len(names) == len(set(names)), f"{what}: duplicate machines in {space}"
        assert sum(m.processors for m in machines) <= LIMIT, f"{what}: over the limit"
        records = StateDir(state).space(space).records()
        assert set(names) <= set(records), f"{what}: {set(names) - set(records)} leaked"


def one_pass(runner: Callable[..., Run], cfg: Path, who: str, passes: dict[str, list[str]],
             step: int) -> None:
    # The previous release has no min_pass_interval_seconds (its config must stay readable to
    # it), so this tree would skip a space passed seconds ago: --force, as an operator would.
    run = runner("--config", cfg, "reconcile", *(["--force"] if who == "current" else []))
    assert run.code == 0, f"pass {step} by {who}: {run.err}"
    state = cfg.parent / "state"
    for space in SPACES:
        last = StateDir(state).space(space).last_pass() or {}
        assert last.get("outcome") == "done", (who, step, last)
        assert last.get("pass_id") not in passes[space], f"pass {step} by {who} not recorded"
        passes[space].append(str(last["pass_id"]))
    check_fleet(state, f"pass {step} by {who}")


def test_previous_release_and_working_tree_take_turns(
        previous: Release, write_config: Callable[..., Path]) -> None:
    """One host at a time, alternately the previous release and this tree, several passes
    each: every pass is recorded, and the fleet never leaks, duplicates or overflows."""
    cfg = write_config(CONFIG)
    state = cfg.parent / "state"
    passes: dict[str, list[str]] = {s: [] for s in SPACES}
    same_format = previous.format_version == FORMAT_VERSION
    step = 0
    for turn in range(4):
        who, runner = (("previous", previous) if turn % 2 == 0 else ("current", current))
        if who == "previous" and turn and not same_format:
            # this tree wrote a newer format: the release must refuse it (test below)
            break
        for _ in range(3):
            step += 1
            one_pass(runner, cfg, who, passes, step)
            time.sleep(0.3)  # machines end between passes: every turn has work to do
    for space in SPACES:  # every pass (by either version) is in the event log
        logged = {e.get("pass") for e in StateDir(state).space(space).events()}
        assert logged, space
        assert len(passes[space]) == step
    for who, runner in (("previous", previous), ("current", current)):
        for command in (["list", "-o", "json"], ["status", "-o", "json"]):
            run = runner("--config", cfg, *command)
            if who == "previous" and not same_format:
                continue
            assert run.code == 0, (who, command, run.err)
            json.loads(run.out)
    time.sleep(1.2)  # unconfirmed intents expire; then two clean passes settle everything
    for _ in range(2):
        assert current("--config", cfg, "reconcile", "--force").code == 0
    check_fleet(state, "after settling")
    for space in SPACES:
        on_cloud = {m.name for m in cloud_view(state, space).list_machines()}
        records = StateDir(state).space(space).records()
        orphans = {n for n, r in records.items() if n not in on_cloud and r.deleting_at is None}
        assert not orphans, orphans


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def test_an_older_release_refuses_a_newer_state_directory_and_touches_nothing(
        previous: Release, write_config: Callable[..., Path], tmp_path: Path) -> None:
    cfg = write_config(CONFIG)
    assert current("--config", cfg, "reconcile").code == 0
    newer = tmp_path / "newer"
    shutil.copytree(tmp_path / "state", newer / "state")
    fmt = newer / "state" / "format.json"
    info = json.loads(fmt.read_text())
    info["format_version"] = previous.format_version + 1
    fmt.write_text(json.dumps(info) + "\n")
    newer_cfg = newer / "vcyclectl.yaml"
    newer_cfg.write_text(CONFIG)
    before = snapshot(newer)
    for command in (["reconcile"], ["plan"], ["list"], ["status"], ["drain", SPACES[0]],
                    ["undrain", SPACES[0]], ["doctor"]):
        run = previous("--config", newer_cfg, *command)
        assert run.code == 1, (command, run.code, run.err)
        assert f"format_version {previous.format_version + 1} is newer than this vcyclectl " \
               "understands" in run.err and "upgrade vcyclectl" in run.err, (command, run.err)
        assert "Traceback" not in run.err and "internal error" not in run.err
        assert snapshot(newer) == before, f"{command} changed the state directory"
