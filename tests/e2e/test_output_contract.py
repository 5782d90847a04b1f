"""Issue 18, output: one `-o` contract walked over every command and format, tables that
read (plain when piped, fitted on an 80-column terminal without breaking a name), the plan's
summary, `inspect`'s times, `list -o wide`, and `--help` of every command."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from tests.conftest import Run, vcyclectl_command

CONFIG = """\
state_dir: state
defaults:
  min_pass_interval_seconds: 0
  backoff_seconds: 0
  fizzle_seconds: 0
  drain_grace_seconds: 0
spaces:
  alpha.local:
    cloud: local
    processors_limit: 6
    local: {processors: 100, boot_seconds: 0, job_seconds: 3000, no_work_probability: 0}
    machinetypes:
      lhcb: {target_share: 3}
      atlas: {target_share: 1}
  beta.local:
    cloud: local
    processors_limit: 2
    local: {processors: 100, boot_seconds: 0, job_seconds: 3000, no_work_probability: 0}
    machinetypes:
      dune: {}
"""

VC = Callable[..., Run]
ALL = ("table", "wide", "json", "yaml", "tsv", "names", "markdown", "html")
ROWS = {"table", "json", "yaml", "tsv", "names"}
#: What each command that prints data gives (the contract); everything else is exit 2.
GIVES: dict[tuple[str, ...], set[str]] = {
    ("list",): ROWS | {"wide"},
    ("status",): ROWS | {"html"},
    ("plan",): ROWS,
    ("inspect", "MACHINE"): ROWS,
    ("reconcile", "--dry-run"): {"table", "json", "yaml"},
    ("doctor",): ROWS,
    ("budget",): ROWS,
    ("accounting",): ROWS,
    ("simulate", "--from", "2026-01-01", "--to", "2026-01-02", "--no-plot", "--step", "3600",
     "--out", "SIM"): ROWS,
    ("schedule", "--from", "2026-01-01", "--weeks", "1", "--step", "7200"):
        {"markdown", "table", "json", "yaml", "html"},
    ("config", "show"): {"yaml", "json"},
}
#: Commands that print no data, so take no -o (`render` prints the user_data file itself).
NO_DATA = {"drain", "undrain", "serve", "config check", "import vcycle", "render",
           "config schema"}  # the schema is a JSON Schema document, always JSON
BOX = set("─│┃━┏┓┗┛┡┩╇╈┼┬┴├┤═║╔╗╚╝")


@pytest.fixture
def cfg(write_config: Callable[..., Path], vc: VC) -> Path:
    path = write_config(CONFIG)
    assert vc("--config", path, "reconcile").code == 0
    return path


def machine(vc: VC, cfg: Path) -> str:
    return vc("--config", cfg, "list", "-o", "names").out.split()[0]


def parses(fmt: str, out: str) -> None:
    """The output is what the format promises."""
    if fmt == "json":
        json.loads(out)
    elif fmt == "yaml":
        assert yaml.safe_load(out) is not None
    elif fmt == "tsv":
        widths = {len(line.split("\t")) for line in out.splitlines()}
        assert len(widths) == 1, out
    elif fmt == "names":
        assert all(line and "\t" not in line and " " not in line for line in out.splitlines())
    elif fmt in ("table", "wide") and out:
        assert not BOX & set(out)


def test_every_command_gives_its_formats_and_refuses_the_rest(vc: VC, cfg: Path,
                                                              tmp_path: Path) -> None:
    name = machine(vc, cfg)
    for command, gives in GIVES.items():
        args = [name if a == "MACHINE" else str(tmp_path / "sim") if a == "SIM" else a
                for a in command]
        for fmt in ALL:
            extra = ["--out", str(tmp_path / "page.html")] if fmt == "html" and \
                command[0] == "status" else []
            run = vc("--config", cfg, *args, "-o", fmt, *extra)
            if fmt in gives:
                assert run.code == 0, (command, fmt, run.err)
                parses(fmt, run.out)
            else:
                assert run.code == 2, (command, fmt, run)
                assert f"cannot give '{fmt}'" in run.err and run.out == ""
                assert all(g in run.err for g in gives)  # and it names what it gives


def test_every_data_command_takes_output_and_schedule_format_is_an_alias(vc: VC, cfg: Path
                                                                         ) -> None:
    from typer.main import get_command

    from vcyclectl.cli import app

    def leaves(group: Any, prefix: str = "") -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, sub in group.commands.items():
            if hasattr(sub, "commands"):
                found.update(leaves(sub, f"{prefix}{name} "))
            else:
                found[f"{prefix}{name}"] = sub
        return found

    for name, command in leaves(get_command(app)).items():
        options = {o for p in command.params for o in getattr(p, "opts", [])}
        assert ("--output" in options) == (name not in NO_DATA), name
    schedule = ("--config", cfg, "schedule", "--from", "2026-01-01", "--weeks", "1")
    assert vc(*schedule, "--format", "json").out == vc(*schedule, "-o", "json").out
    assert vc(*schedule, "-f", "tsv").code == 2


def test_the_global_output_and_the_environment(vc: VC, cfg: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    name = machine(vc, cfg)
    assert vc("--config", cfg, "-o", "names", "inspect", name).out == f"{name}\n"
    run = vc("--config", cfg, "-o", "wide", "status")  # asked on the command line: refused
    assert run.code == 2 and "status cannot give 'wide' (from the global -o)" in run.err
    monkeypatch.setenv("VCYCLECTL_OUTPUT", "wide")  # a standing preference: where it can
    assert vc("--config", cfg, "list").out.splitlines()[0].split()[-1] == "END_REASON"
    status = vc("--config", cfg, "status")
    assert status.code == 0 and status.out.startswith("SPACE ")
    assert vc("--config", cfg, "config", "show").out.startswith("state_dir:")


def test_tables_are_plain_columns_without_titles_when_piped(vc: VC, cfg: Path) -> None:
    names = vc("--config", cfg, "list", "-o", "names").out.split()
    for command, first in ((["list"], "NAME"), (["status"], "SPACE"), (["plan"], "0"),
                           (["-v", "plan"], "SPACE"), (["budget"], None),
                           (["doctor"], "SPACE")):
        out = vc("--config", cfg, *command).out
        assert not BOX & set(out), command
        if first:
            assert out.splitlines()[0].split()[0] == first, (command, out)
    listing = vc("--config", cfg, "list").out.splitlines()
    assert len(listing) == len(names) + 1
    assert [line.split()[0] for line in listing[1:]] == names  # one row per line, whole
    header = listing[0]
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    for row in listing[1:]:  # space-aligned: every cell starts under its header
        assert [m.start() for m in re.finditer(r"\S+", row)] == starts
    bare = vc("--config", cfg, "list", "--no-headers").out.splitlines()
    assert [line.split() for line in bare] == [line.split() for line in listing[1:]]
    tsv = vc("--config", cfg, "list", "-o", "tsv", "--no-headers").out.splitlines()
    assert len(tsv) == len(names) and tsv[0].split("\t")[0] == names[0]
    status = vc("--config", cfg, "status", "--no-headers").out.splitlines()
    assert len(status) == 3 and not any(line.startswith("SPACE") for line in status)


def test_list_wide_shows_where_and_why(vc: VC, cfg: Path) -> None:
    name = vc("--config", cfg, "list", "-s", "beta.local", "-o", "names").out.split()[0]
    reports = cfg.parent / "state" / "spaces" / "beta.local" / "joboutputs" / name
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "heartbeat").write_text("")
    (reports / "shutdown_message").write_text("300 No more work available from task queue")
    wide = vc("--config", cfg, "list", "-o", "wide").out.splitlines()
    assert wide[0].split() == ["NAME", "SPACE", "MACHINETYPE", "STATE", "PROCESSORS",
                               "CREATED_AT", "DRAINING", "FLAVOR", "ZONE", "CLOUD_ID",
                               "HEARTBEAT_AGE", "END_REASON"]
    (row,) = [line for line in wide if line.startswith(name)]
    assert re.search(r"\s\d+s\s+300 No more work available from task queue$", row), row
    rows = {r["name"]: r for r in json.loads(vc("--config", cfg, "list", "-o", "json").out)}
    assert rows[name]["cloud_id"] and row.split()[9] == rows[name]["cloud_id"]
    assert "heartbeat_age" not in rows[name]  # json keeps its fields; wide is for people


def test_plan_summary_and_bookkeeping_only_with_verbose(vc: VC, cfg: Path) -> None:
    fleet = len(vc("--config", cfg, "list", "-o", "names").out.split())
    plan = vc("--config", cfg, "plan")  # boot_seconds 0: every machine now reports running
    assert plan.code == 0
    lines = plan.out.splitlines()
    assert lines == [f"0 to create, 0 to delete, {fleet} unchanged"]  # nothing else to do
    verbose = vc("-v", "--config", cfg, "plan").out.splitlines()
    assert sum(" update " in line and "cloud state changed" in line
               for line in verbose) == fleet
    assert verbose[0].split() == ["SPACE", "ACTION", "NAME", "MACHINETYPE", "PROCESSORS",
                                  "REASON"]
    assert verbose[-1] == lines[-1]
    documents = json.loads(vc("--config", cfg, "plan", "-o", "json").out)
    assert sum(a["action"] == "update" for d in documents for a in d["actions"]) == fleet
    names = vc("--config", cfg, "plan", "-o", "names")
    assert names.out == "" and lines[-1] in names.err
    old = vc("--config", cfg, "list", "-s", "beta.local", "-o", "names").out.split()[0]
    assert vc("--config", cfg, "drain", old).code == 0  # no grace: deleted and replaced
    after = vc("--config", cfg, "plan").out.splitlines()
    assert after[-1] == f"1 to create, 1 to delete, {fleet - 1} unchanged", after


ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_inspect_shows_every_time_in_iso_8601_utc(vc: VC, cfg: Path) -> None:
    """People see ISO 8601 everywhere; scripts keep the stored record's epoch seconds."""
    name = machine(vc, cfg)
    vc("--config", cfg, "reconcile")  # events of a second pass too
    data = json.loads(vc("--config", cfg, "inspect", name, "-o", "json").out)
    assert ISO.match(data["created_at"])
    assert isinstance(data["record"]["created_at"], float)  # json fields keep their types
    from vcyclectl.commands.views import iso_times

    data = iso_times(data)  # what the table shows
    times: list[str] = []

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif key.endswith(("_at", "_until", "_since")) or key in ("at", "time", "since"):
            assert value is None or (isinstance(value, str) and ISO.match(value)), (key, value)
            times.append(key)

    walk(data)
    assert "created_at" in times and len(times) >= 4  # the record's and the events' too
    table = vc("--config", cfg, "inspect", name).out
    assert data["record"]["created_at"] in table
    assert not re.search(r"\b1[7-9]\d{8}(\.\d+)?\b", table)  # no epoch seconds anywhere
    tsv = dict(line.split("\t", 1) for line in
               vc("--config", cfg, "inspect", name, "-o", "tsv", "--no-headers").out.splitlines())
    assert tsv["name"] == name and ISO.match(tsv["created_at"])


def test_at_80_columns_on_a_terminal_no_machine_name_is_broken(cfg: Path) -> None:
    """Run under a pseudo-terminal, as a person would see it."""
    import pty

    names = run_out(cfg, "list", "-o", "names").split()
    for command in (["list"], ["list", "-o", "wide"], ["plan"], ["status"]):
        master, slave = pty.openpty()
        env = {**os.environ, "COLUMNS": "80", "LINES": "40", "TERM": "xterm"}
        proc = subprocess.run([*vcyclectl_command(), "--config", str(cfg), *command],
                              stdout=slave, stderr=subprocess.PIPE, env=env, timeout=60)
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(master)
        assert proc.returncode == 0, proc.stderr
        screen = b"".join(chunks).decode().replace("\r\n", "\n")
        lines = screen.splitlines()
        assert lines and all(len(line) <= 80 for line in lines), (command, screen)
        assert not BOX & set(screen)
        if command[0] == "list":
            firsts = [line.split()[0] for line in lines[1:]]
            assert firsts == names, (command, screen)  # whole, one per line
            assert b"left out at 80 columns" in proc.stderr


def run_out(cfg: Path, *args: str) -> str:
    proc = subprocess.run([*vcyclectl_command(), "--config", str(cfg), *args],
                          capture_output=True, text=True, timeout=60, check=True)
    return proc.stdout


def test_every_command_help_shows_examples_choices_and_defaults() -> None:
    from typer.main import get_command

    from vcyclectl.cli import app

    def walk(group: Any, path: list[str]) -> list[list[str]]:
        found = []
        for name, sub in group.commands.items():
            found.extend(walk(sub, path + [name]) if hasattr(sub, "commands") else
                         [path + [name]])
        return found

    root = get_command(app)
    commands = walk(root, [])
    assert len(commands) >= 16
    for path in commands:
        proc = subprocess.run([*vcyclectl_command(), *path, "--help"], capture_output=True,
                              text=True, timeout=60, env={**os.environ, "COLUMNS": "100"})
        assert proc.returncode == 0, path
        text = proc.stdout
        assert "\nExamples:\n" in text.replace("  Examples:", "Examples:"), path
        assert f"vcyclectl {' '.join(path)}" in text.split("Examples:")[1], path
        assert not re.search(r"<str>|<path>|\bTEXT\b", text), (path, text)
        command: Any = root
        for part in path:
            command = command.commands[part]
        for param in command.params:
            if param.param_type_name != "option" or param.name == "help":
                continue
            default = param.default
            if getattr(param, "is_flag", False) or default in (None, "", [], ()):
                continue
            options = text.split("\nOptions:\n", 1)[1]
            line = options.split(param.opts[-1], 1)[1].split("\n  -", 1)[0]
            assert "default" in line, (path, param.opts, line)
    output = subprocess.run([*vcyclectl_command(), "list", "--help"], capture_output=True,
                            text=True, timeout=60).stdout
    assert "[table|wide|json|yaml|tsv|names]" in output
    assert "[creating|starting|running|stopped|failed|deleting|unknown]" in output


def test_an_unusable_state_directory_is_one_line_for_every_reader(vc: VC, cfg: Path) -> None:
    """Issue 18's failure rules hold for every reader, `--watch` too (status is tested in
    test_failures)."""
    for command in (["list"], ["plan"], ["list", "--live"], ["list", "--watch", "1"],
                    ["status", "--watch", "1", "-o", "json"], ["inspect", machine(vc, cfg)]):
        run = vc("--config", cfg, "--state-dir", "/dev/null/x", *command)
        assert run.code == 2, (command, run)
        assert run.err == ("vcyclectl: state directory /dev/null/x: cannot read "
                           "/dev/null/x/format.json: Not a directory\n"), command
        assert run.out == ""
