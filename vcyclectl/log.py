"""Logging: a constant message plus key=value fields, one pass id per invocation.

Logs go to stderr only (stdout is for data). Two levels: normal (warnings) and `-v` (debug).
Never pass secrets as fields: nothing here can tell them apart, though every line is also
run through `redact_text`. The `logging` module is imported on the first message, not at
start-up: read-only commands rarely log at all.

Three formats (`--log-format`, `$VCYCLECTL_LOG_FORMAT`; `auto` picks `journal` when stderr
is a journald stream, else `text`):
- `text`: `TIME LEVEL pass=ID message key=value ...`, for people and cron mail;
- `json`: one JSON object per line (`time`, `level`, `pass`, `message` and the fields), for
  log collectors (Fluent Bit, Vector, Loki's promtail);
- `journal`: each record sent to journald natively, with `PRIORITY`, `PASS_ID` and every
  field as its own journal field (`SPACE=`, `MACHINE=`, ...), so `journalctl -p err` and
  `journalctl SPACE=cumulus.example.org` work; if the journal socket cannot be reached, the
  text line on stderr with a `<N>` priority prefix (sd-daemon(3)), which journald reads too.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging

PASS_ID = os.urandom(4).hex()
FORMATS = ("auto", "text", "json", "journal")
#: Where journald takes native messages (systemd.journal-fields(7), sd_journal_send(3)).
JOURNAL_SOCKET = "/run/systemd/journal/socket"

_LEVEL: dict[str, Any] = {"verbose": False, "quiet": False, "format": "auto"}
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


def log_format() -> str:
    """The format in use: `auto` resolved against where stderr goes."""
    chosen = str(_LEVEL["format"])
    if chosen == "auto":
        return "journal" if stderr_is_journal() else "text"
    return chosen


def logger() -> "logging.Logger":
    """The configured `vcyclectl` logger, set up on first use."""
    global _logger
    if _logger is None:
        import logging

        made = logging.getLogger("vcyclectl")
        made.handlers[:] = [make_handler()]
        made.propagate = False
        made.setLevel(logging.DEBUG if _LEVEL["verbose"] else
                      logging.ERROR if _LEVEL["quiet"] else logging.WARNING)
        if logging.lastResort is not None:  # SDKs' own warnings (keystoneauth's)
            logging.lastResort.addFilter(_redact_record)
        _logger = made
    return _logger


def make_handler() -> "logging.Handler":
    """A handler writing records in the chosen format; `serve` gives it to gunicorn too, so
    its access and error logs read like every other line."""
    import logging

    chosen = log_format()
    if chosen == "journal":
        return _journal_handler()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_formatter(chosen))
    return handler


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


def _log(level: int, message: str, values: dict[str, Any]) -> None:
    kept = {k: v for k, v in values.items() if v is not None}
    logger().log(level, "%s %s", message, fields(**kept),
                 extra={"vc_message": message, "vc_fields": kept})


def info(message: str, **values: Any) -> None:
    if _LEVEL["verbose"]:
        _log(20, message, values)


def debug(message: str, **values: Any) -> None:
    if _LEVEL["verbose"]:
        _log(10, message, values)


def warning(message: str, **values: Any) -> None:
    if not _LEVEL["quiet"]:
        _log(30, message, values)


def error(message: str, **values: Any) -> None:
    """Something failed: logged even with `-q`, which hides chatter, never a failure."""
    _log(40, message, values)


#: syslog priorities, by level name: journald's PRIORITY and the `<N>` line prefix.
_PRIORITY = {"CRITICAL": 2, "ERROR": 3, "WARNING": 4, "INFO": 6, "DEBUG": 7}


def record_fields(record: "logging.LogRecord") -> tuple[str, dict[str, Any]]:
    """A record's constant message and its fields; a record from another library (gunicorn,
    an SDK) is all message."""
    message = getattr(record, "vc_message", None)
    if message is None:
        return record.getMessage(), {}
    return str(message), dict(getattr(record, "vc_fields", {}))


def _formatter(chosen: str) -> "logging.Formatter":
    import json
    import logging
    from datetime import datetime, timezone

    from vcyclectl.redact import redact_text

    class TextFormatter(logging.Formatter):
        """`TIME LEVEL pass=ID message key=value`; every line goes through `redact_text`."""

        def format(self, record: logging.LogRecord) -> str:
            return redact_text(super().format(record))

    class JsonFormatter(logging.Formatter):
        """One JSON object per record: time (ISO 8601 UTC), level, pass, message, fields."""

        def format(self, record: logging.LogRecord) -> str:
            message, values = record_fields(record)
            out: dict[str, Any] = {
                "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                    timespec="milliseconds").replace("+00:00", "Z"),
                "level": record.levelname.lower(), "pass": PASS_ID,
                "message": redact_text(message)}
            for key, value in values.items():
                text = value if isinstance(value, (int, float, bool)) else redact_text(str(value))
                out.setdefault(key, text)
            if record.exc_info and _LEVEL["verbose"]:
                out["traceback"] = redact_text(self.formatException(record.exc_info))
            return json.dumps(out, ensure_ascii=False)

    if chosen == "json":
        return JsonFormatter()
    return TextFormatter(f"%(asctime)s %(levelname)s pass={PASS_ID} %(message)s")


def _journal_handler() -> "logging.Handler":
    import logging
    import socket
    import struct

    from vcyclectl.redact import redact_text

    fallback = logging.StreamHandler(sys.stderr)
    fallback.setFormatter(_formatter("text"))

    def field(name: str, value: str) -> bytes:
        """One field of the native protocol; a value with a newline goes length-prefixed."""
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            return name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        return name.encode() + b"=" + data + b"\n"

    class JournalHandler(logging.Handler):
        """Sends each record to journald with its fields (systemd.journal-fields(7)); when
        the socket cannot be reached, the `<N>`-prefixed text line on stderr instead."""

        def emit(self, record: logging.LogRecord) -> None:
            priority = _PRIORITY.get(record.levelname, 6)
            message, values = record_fields(record)
            text = redact_text(f"{message} {fields(**values)}".strip())
            parts = [field("MESSAGE", text), field("PRIORITY", str(priority)),
                     field("SYSLOG_IDENTIFIER", "vcyclectl"), field("PASS_ID", PASS_ID)]
            for key, value in values.items():
                name = "".join(c if c.isalnum() else "_" for c in key.upper()).lstrip("_")
                if name and name[0].isalpha():
                    parts.append(field(name, redact_text(str(value))))
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                    sock.sendto(b"".join(parts), JOURNAL_SOCKET)
            except OSError:
                line = fallback.format(record)
                sys.stderr.write(f"<{priority}>{line}\n")
                sys.stderr.flush()

    return JournalHandler()


def _redact_record(record: "logging.LogRecord") -> bool:
    """A filter for handlers we do not format: the message, redacted, in place."""
    from vcyclectl.redact import redact_text

    record.msg = redact_text(record.getMessage())
    record.args = None
    return True


def setup(verbose: bool, quiet: bool, log_format: str = "auto") -> None:
    """Remember the levels (`-v`, `-q`) and the format; a logger already made is set up
    again with them."""
    global _logger
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    _LEVEL["verbose"], _LEVEL["quiet"], _LEVEL["format"] = verbose, quiet, log_format
    if _logger is not None:
        _logger = None
        logger()
