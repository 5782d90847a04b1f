"""The `command` source: run an executable (a site script, DIRAC's task-queue query, a
GlideinWMS frontend) that prints the demand object of `payload` on stdout."""

from __future__ import annotations

import os

from vcyclectl.config.demand import DemandSource
from vcyclectl.demand.payload import Counts, Unavailable, parse
from vcyclectl.demand.process import run_bounded


def read(source: DemandSource) -> Counts:
    """Run `argv` (no shell) within `timeout_seconds` and parse what it prints."""
    name = os.path.basename(source.argv[0])
    out = run_bounded(list(source.argv), source.timeout_seconds, name)
    try:
        return parse(out)
    except Unavailable as exc:
        raise Unavailable(f"{name}: {exc}") from None
