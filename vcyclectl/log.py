"""Logging: a constant message plus key=value fields, one pass id per invocation.

Logs go to stderr only (stdout is for data). Two levels: normal (warnings) and `-v` (debug).
Never pass secrets as fields: nothing here can tell them apart. The `logging` module is
imported on the first message, not at start-up: read-only commands rarely log at all.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging

PASS_ID = os.urandom(4).hex()

_LEVEL = {"verbose": False, "quiet": False}
_logger: "logging.Logger | None" = None


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


def logger() -> "logging.Logger":
    """The configured `vcyclectl` logger, set up on first use."""
    global _logger
    if _logger is None:
        import logging

        handler = logging.StreamHandler(sys.stderr)
        line = f"%(asctime)s %(levelname)s pass={PASS_ID} %(message)s"
        if stderr_is_journal():
            handler.addFilter(_add_syslog_priority)
            line = "<%(syslog_priority)d>" + line
        from vcyclectl.redact import redact_text

        class RedactingFormatter(logging.Formatter):
            """Every line we print goes through `redact_text`: no URL credential, no token."""

            def format(self, record: logging.LogRecord) -> str:
                return redact_text(super().format(record))

        handler.setFormatter(RedactingFormatter(line))
        if logging.lastResort is not None:  # SDKs' own warnings (keystoneauth's)
            logging.lastResort.addFilter(_redact_record)
        made = logging.getLogger("vcyclectl")
        made.handlers[:] = [handler]
        made.propagate = False
        made.setLevel(logging.DEBUG if _LEVEL["verbose"] else
                      logging.ERROR if _LEVEL["quiet"] else logging.WARNING)
        _logger = made
    return _logger


def stderr_is_journal() -> bool:
    """Whether stderr is a stream systemd connected to journald (`JOURNAL_STREAM`, which
    systemd sets to the stream's device:inode; systemd.exec(5))."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return expected == f"{st.st_dev}:{st.st_ino}"


#: syslog priorities journald reads from a `<N>` line prefix (SyslogLevelPrefix=yes).
_PRIORITY = {"CRITICAL": 2, "ERROR": 3, "WARNING": 4, "INFO": 6, "DEBUG": 7}


def _add_syslog_priority(record: "logging.LogRecord") -> bool:
    """Give each record the `<N>` prefix journald reads as its priority (its default
    SyslogLevelPrefix=yes), so `journalctl -p err` and alerts on priority see failures."""
    record.syslog_priority = _PRIORITY.get(record.levelname, 6)
    return True


def info(message: str, **values: Any) -> None:
    if _LEVEL["verbose"]:
        logger().info("%s %s", message, fields(**values))


def debug(message: str, **values: Any) -> None:
    if _LEVEL["verbose"]:
        logger().debug("%s %s", message, fields(**values))


def warning(message: str, **values: Any) -> None:
    if not _LEVEL["quiet"]:
        logger().warning("%s %s", message, fields(**values))


def error(message: str, **values: Any) -> None:
    """Something failed: logged even with `-q`, which hides chatter, never a failure."""
    logger().error("%s %s", message, fields(**values))


def _redact_record(record: "logging.LogRecord") -> bool:
    """A filter for handlers we do not format: the message, redacted, in place."""
    from vcyclectl.redact import redact_text

    record.msg = redact_text(record.getMessage())
    record.args = None
    return True


def setup(verbose: bool, quiet: bool) -> None:
    """Remember the levels (`-v`, `-q`); a logger already made is set up again with them."""
    global _logger
    _LEVEL["verbose"], _LEVEL["quiet"] = verbose, quiet
    if _logger is not None:
        _logger = None
        logger()
