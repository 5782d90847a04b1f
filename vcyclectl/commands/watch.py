"""`--watch` for `list` and `status`: show, wait, show again, until Ctrl-C.

On a terminal each refresh redraws the screen in place (drawn off-screen first, so it does
not flicker); piped, each refresh is appended: with `-o json` one compact JSON document per
line (JSON lines, for `jq`), with `-o yaml` one `---` document, else the rows and a blank
line. Ctrl-C (SIGINT) ends it cleanly: exit 0, no traceback.
"""

from __future__ import annotations

import io
import json
import sys
import time
from typing import Any, Callable, TextIO

#: Seconds between refreshes when `--watch` is given without a number.
DEFAULT_SECONDS = 2.0
#: Commands whose `--watch`/`-w` may come without a number (see `optional_value`).
WATCHING = ("list", "status")
#: Home the cursor and clear the screen.
CLEAR = "\x1b[H\x1b[2J"


class _Screen(io.StringIO):
    """A buffer that says it is a terminal, so a table is drawn for one, off-screen."""

    def isatty(self) -> bool:
        return True


def repeat(show: Callable[[TextIO], Any], every: float | None, fmt: str) -> None:
    """Call `show(stream)` once, or every `every` seconds until interrupted."""
    if every is None:
        show(sys.stdout)
        return
    out = sys.stdout
    terminal = out.isatty() and fmt in ("table", "wide")
    try:
        while True:
            buffer: io.StringIO = _Screen() if terminal else io.StringIO()
            show(buffer)
            text = buffer.getvalue()
            if terminal:
                text = CLEAR + text
            elif fmt == "json":
                text = json.dumps(json.loads(text), separators=(",", ":")) + "\n"
            elif fmt == "yaml":
                text = "---\n" + text
            else:
                text += "\n"
            out.write(text)
            out.flush()
            time.sleep(every)
    except KeyboardInterrupt:
        if terminal:
            out.write("\n")
        out.flush()


def optional_value(args: list[str]) -> list[str]:
    """`--watch` may stand alone (`vcyclectl status --watch`): give it the default number.

    typer's click has no options with an optional value, so the argument list is completed
    here, only for the commands in WATCHING and never after `--`."""
    out: list[str] = []
    command_seen = False
    for i, arg in enumerate(args):
        out.append(arg)
        if arg == "--":
            out.extend(args[i + 1:])
            break
        command_seen = command_seen or arg in WATCHING
        if command_seen and arg in ("--watch", "-w"):
            following = args[i + 1] if i + 1 < len(args) else ""
            if not _number(following):
                out.append(f"{DEFAULT_SECONDS:g}")
    return out


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
