"""Running a source's executable (`squeue`, a site script) within its timeout."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Mapping

from vcyclectl.demand.payload import Unavailable


def run_bounded(argv: list[str], timeout: float, what: str,
                env: Mapping[str, str] | None = None) -> bytes:
    """stdout of `argv` (no shell), or `Unavailable` saying it could not run, timed out or
    failed (with the last line of its stderr). The process runs in its own session and the
    whole group is killed on timeout, so a script's children cannot hold the pass."""
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True,
                                env=dict(env) if env is not None else None)
    except OSError as exc:
        raise Unavailable(f"{what}: cannot run: {exc.strerror or exc}") from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        raise Unavailable(f"{what}: timed out after {timeout:g}s") from None
    if proc.returncode != 0:
        lines = err.decode("utf-8", "replace").strip().splitlines()
        raise Unavailable(f"{what}: exited with {proc.returncode}"
                          + (f": {lines[-1][:200]}" if lines else ""))
    return out
