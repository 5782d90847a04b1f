"""Rendering for people (tables) and for scripts (json, yaml, tsv, names): one `-o` contract.

Only data goes to stdout. A table is plain space-aligned columns, kubectl style, with no
box-drawing characters and no title lines: piped or logged every column is there for
`grep`/`awk`; on a terminal it is fitted to the width without ever breaking a row or a
machine name across lines. rich is
imported only for a progress bar or `inspect` on a terminal, so `-o json` never pays for
it.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Mapping, Sequence, TextIO

#: Every output format a command may give; each command accepts the subset it can give
#: (`commands.formats`), and refuses the rest with exit 2.
FORMATS = ("table", "wide", "json", "yaml", "tsv", "names")
#: Space between plain columns, as kubectl.
GAP = "   "


def write_json(data: Any, stream: TextIO | None = None, *, compact: bool = False) -> None:
    """JSON on stdout; `compact` is one line (one document per refresh of `--watch`)."""
    out = stream or sys.stdout
    if compact:
        json.dump(data, out, separators=(",", ":"), default=str)
    else:
        json.dump(data, out, indent=2, sort_keys=False, default=str)
    out.write("\n")


def write_yaml(data: Any, stream: TextIO | None = None) -> None:
    """The same document as `-o json`, in YAML (values that JSON would stringify too)."""
    import yaml

    plain = json.loads(json.dumps(data, default=str))
    (stream or sys.stdout).write(yaml.safe_dump(plain, sort_keys=False,
                                                default_flow_style=False, allow_unicode=True))


def write_data(data: Any, fmt: str, stream: TextIO | None = None) -> bool:
    """Write `data` when `fmt` is a document format (json, yaml); False when it is not."""
    if fmt == "json":
        write_json(data, stream)
    elif fmt == "yaml":
        write_yaml(data, stream)
    else:
        return False
    return True


def write_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str, *,
               name_key: str = "name", headers: bool = True,
               wide: Sequence[str] | None = None, stream: TextIO | None = None) -> None:
    """One list of records in the chosen format; `columns` order tsv and the table, and
    `wide` (default: `columns`) the `-o wide` table."""
    out = stream or sys.stdout
    if write_data(list(rows), fmt, out):
        return
    if fmt == "tsv":
        if headers:
            out.write("\t".join(columns) + "\n")
        for row in rows:
            out.write("\t".join(_cell(row.get(c)) for c in columns) + "\n")
    elif fmt == "names":
        for row in rows:
            out.write(f"{row.get(name_key)}\n")
    else:
        table(rows, list(wide or columns) if fmt == "wide" else columns, headers=headers,
              no_wrap=(name_key,), stream=out)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_cell(v) for v in value)
    return str(value).replace("\t", " ").replace("\n", " ")


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], *, headers: bool = True,
          no_wrap: Sequence[str] = ("name",), stream: TextIO | None = None) -> None:
    """Plain space-aligned columns, one line per row. On a terminal the table is fitted to
    its width (COLUMNS): columns that do not fit are left out (said on stderr), the last
    one (free text) cut with "…" instead when there is room; the first column (a name) is
    never cut. Piped, nothing is cut: `awk` gets every column."""
    out = stream or sys.stdout
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    if not cells:
        return
    header = [c.upper() for c in columns]
    width = None
    if out.isatty():
        import shutil

        width = shutil.get_terminal_size().columns
    lines = ([header] if headers else []) + cells
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    shown, cut = _fit(widths, width)
    if len(shown) < len(columns) and headers:
        hidden = [c for i, c in enumerate(columns) if i not in shown]
        sys.stderr.write(f"(left out at {width} columns: {', '.join(hidden)}; -o tsv or json "
                         "show every column)\n")
    for line in lines:
        values = [_clip(line[i], cut) if i == shown[-1] and cut else line[i].ljust(widths[i])
                  for i in shown]
        out.write(GAP.join(values).rstrip() + "\n")


#: A column narrower than this is left out rather than cut.
MIN_CUT = 8


def _fit(widths: Sequence[int], limit: int | None) -> tuple[list[int], int]:
    """The columns that fit in `limit` characters, in order, and the width the last column
    (free text, as a reason) is cut to when it is shown cut (0: not cut). The first column
    is always shown whole; a column that does not fit is left out and the next ones tried."""
    if limit is None:
        return list(range(len(widths))), 0
    used = widths[0]
    shown = [0]
    for i in range(1, len(widths)):
        room = limit - used - len(GAP)
        if widths[i] <= room:
            shown.append(i)
            used += len(GAP) + widths[i]
        elif i == len(widths) - 1 and room >= MIN_CUT:
            shown.append(i)
            return shown, room
    return shown, 0


def _clip(value: str, width: int) -> str:
    return value if len(value) <= width else value[:width - 1] + "…"


def key_values(data: Mapping[str, Any], *, stream: TextIO | None = None) -> None:
    """A two-column view of one object (inspect): plain when piped."""
    out = stream or sys.stdout
    pairs = []
    for key, value in data.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value, indent=1, default=str)
        pairs.append((key, _cell(value) if not isinstance(value, str) else value))
    if not out.isatty():
        width = max((len(k) for k, _ in pairs), default=0)
        for key, value in pairs:
            lines = value.splitlines() or [""]
            out.write(f"{key.ljust(width)}{GAP}{lines[0]}".rstrip() + "\n")
            for more in lines[1:]:
                out.write(f"{'':{width}}{GAP}{more}".rstrip() + "\n")
        return
    from rich.table import Table

    grid = Table(show_header=False, show_edge=False, box=None)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in pairs:
        grid.add_row(key, value)
    _console(out).print(grid)


def _console(stream: TextIO | None) -> Any:
    """A console that wraps to the terminal (rich reads COLUMNS)."""
    from rich.console import Console

    return Console(file=stream or sys.stdout, highlight=False)


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


@contextmanager
def working(description: str) -> Iterator[None]:
    """A spinner and the elapsed time on stderr while long work runs (`simulate`,
    `schedule`), on a terminal only: never in a pipe, a log or under cron."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        progress.add_task(description, total=None)
        yield


def progress_for_terminal() -> Any:
    from vcyclectl.core.progress import NoProgress

    return RichProgress() if sys.stderr.isatty() else NoProgress()
