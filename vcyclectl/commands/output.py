"""Rendering for people (rich tables) and for scripts (json, tsv, names).

Only data goes to stdout; rich is imported only when a table is drawn or a progress bar is
shown on a terminal, so `--output json` never pays for it.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Mapping, Sequence, TextIO

FORMATS = ("table", "json", "tsv", "names")


def write_json(data: Any, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    json.dump(data, out, indent=2, sort_keys=False, default=str)
    out.write("\n")


def write_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str, *,
               title: str | None = None, name_key: str = "name",
               stream: TextIO | None = None) -> None:
    """One list of records in the chosen format; `columns` order tsv and table."""
    out = stream or sys.stdout
    if fmt == "json":
        write_json(list(rows), out)
    elif fmt == "tsv":
        out.write("\t".join(columns) + "\n")
        for row in rows:
            out.write("\t".join(_cell(row.get(c)) for c in columns) + "\n")
    elif fmt == "names":
        for row in rows:
            out.write(f"{row.get(name_key)}\n")
    else:
        table(rows, columns, title=title, stream=out)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_cell(v) for v in value)
    return str(value).replace("\t", " ").replace("\n", " ")


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], *, title: str | None = None,
          stream: TextIO | None = None) -> None:
    from rich.table import Table

    grid = Table(title=title, show_edge=False, header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*(_cell(row.get(c)) for c in columns))
    _console(stream).print(grid)


def key_values(data: Mapping[str, Any], *, stream: TextIO | None = None) -> None:
    """A two-column view of one object (inspect)."""
    from rich.table import Table

    grid = Table(show_header=False, show_edge=False, box=None)
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for key, value in data.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value, indent=1, default=str)
        grid.add_row(key, _cell(value) if not isinstance(value, str) else value)
    _console(stream).print(grid)


def _console(stream: TextIO | None) -> Any:
    """A console that wraps to the terminal, or not at all when piped or logged."""
    from rich.console import Console

    out = stream or sys.stdout
    if out.isatty():
        return Console(file=out)
    return Console(file=out, width=240, soft_wrap=True)


class RichProgress:
    """A progress bar on stderr, used only when stderr is a terminal (never under cron)."""

    def __init__(self) -> None:
        from rich.progress import Progress

        self._progress = Progress(transient=True)
        self._task: Any = None

    def start(self, description: str, total: int) -> None:
        if total < 20:
            self._task = None
            return
        self._progress.start()
        self._task = self._progress.add_task(description, total=total)

    def advance(self, amount: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)

    def finish(self) -> None:
        if self._task is not None:
            self._progress.stop()
            self._task = None


def progress_for_terminal() -> Any:
    from vcyclectl.core.progress import NoProgress

    return RichProgress() if sys.stderr.isatty() else NoProgress()
