"""Logging: a constant message plus key=value fields, one pass id per invocation.

Logs go to stderr only (stdout is for data). Two levels: normal (INFO) and `-v` (DEBUG).
Never pass secrets as fields: nothing here can tell them apart.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

LOGGER = logging.getLogger("vcyclectl")
PASS_ID = os.urandom(4).hex()


def fields(**values: Any) -> str:
    parts = []
    for key, value in values.items():
        if value is None:
            continue
        text = str(value)
        if " " in text or "=" in text or not text:
            text = '"' + text.replace('"', "'") + '"'
        parts.append(f"{key}={text}")
    return " ".join(parts)


def info(message: str, **values: Any) -> None:
    if LOGGER.isEnabledFor(logging.INFO):
        LOGGER.info("%s %s", message, fields(**values))


def debug(message: str, **values: Any) -> None:
    if LOGGER.isEnabledFor(logging.DEBUG):
        LOGGER.debug("%s %s", message, fields(**values))


def warning(message: str, **values: Any) -> None:
    LOGGER.warning("%s %s", message, fields(**values))


def setup(verbose: bool, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s pass={PASS_ID} %(message)s"))
    LOGGER.handlers[:] = [handler]
    LOGGER.propagate = False
    LOGGER.setLevel(logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING)
