"""What the cloud drivers' end-to-end tests share: a one-space config around a cloud block,
and the real `vcyclectl` command run against it."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.conftest import Run, run_process

USER_DATA = "#!/bin/sh\necho ##user_data_machinetype## ##user_data_machine_hostname##\n"


def space_config(tmp_path: Path, space: str, cloud: str, block: str, machinetype: str, *,
                 user_data: str = USER_DATA, drain_grace_seconds: float | None = 0) -> Path:
    """A config with one space of `cloud` (block: its cloud block's YAML lines) and one
    machinetype `lhcb` (its YAML lines); 8 processors, no backoff so that a machine ended
    behind vcyclectl's back is simply replaced."""
    (tmp_path / "lhcb.user_data").write_text(user_data)
    grace = "" if drain_grace_seconds is None else f"  drain_grace_seconds: {drain_grace_seconds:g}\n"
    path = tmp_path / "vcyclectl.yaml"
    path.write_text(
        f"state_dir: {tmp_path / 'state'}\n"
        "defaults:                 # a machine killed early is no abort here: replace it\n"
        "  backoff_seconds: 0\n"
        "  fizzle_seconds: 0\n"
        "  min_pass_interval_seconds: 0\n"
        "  max_wallclock_seconds: 3600\n"
        f"{grace}"
        "spaces:\n"
        f"  {space}:\n"
        f"    cloud: {cloud}\n"
        "    processors_limit: 8\n"
        "    max_starting_processors: 8\n"
        f"    {cloud}:\n"
        f"{textwrap.indent(textwrap.dedent(block).strip(), ' ' * 6)}\n"
        "    machinetypes:\n"
        "      lhcb:\n"
        f"{textwrap.indent(textwrap.dedent(machinetype).strip(), ' ' * 8)}\n")
    return path


def vcyclectl(config: Path, *args: str, timeout: float = 180) -> Run:
    """Run the installed command; it must succeed."""
    result = run_process("--config", config, *args, timeout=timeout)
    assert result.code == 0, result.err
    return result
