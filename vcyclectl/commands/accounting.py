"""`vcyclectl accounting`: what was or will be published to APEL, per site, VO and
machinetype, and `--republish MONTH` (docs/accounting.md). Thin: the store and the
messages live in `vcyclectl.policy.accounting`."""

from __future__ import annotations

import re
from typing import Optional

import typer

from vcyclectl.commands.context import app_context, info
from vcyclectl.commands.formats import ROWS, no_headers_option, output_option

COLUMNS = ["month", "site", "vo", "space", "machinetype", "jobs", "fizzles", "wall_hours",
           "hs06_hours", "queued_jobs"]
MONTH = r"\d{4}-(0[1-9]|1[0-2])"


def _month(value: str | None, flag: str) -> str | None:
    from vcyclectl.errors import UsageError

    if value is not None and not re.fullmatch(MONTH, value):
        raise UsageError(f"{flag}: not a month: {value!r} (write 2026-03)")
    return value


def accounting(
    ctx: typer.Context,
    month: Optional[str] = typer.Option(None, "--month", metavar="YYYY-MM",
                                        help="Only this month."),
    republish: Optional[str] = typer.Option(
        None, "--republish", metavar="YYYY-MM",
        help="Queue this month's summary (and sync) messages again."),
    output: str = output_option(ROWS, extra_help="json and yaml add the budget agreement "
                                                 "with --month"),
    no_headers: bool = no_headers_option(),
) -> None:
    """APEL accounting: jobs, wall hours and HS06 hours per month, site, VO, space and
    machinetype; fizzles are counted but never published.

    \b
    Examples:
      vcyclectl accounting
      vcyclectl accounting --month 2026-03 -o json
      vcyclectl accounting --republish 2026-03
    """
    from vcyclectl.commands.output import write_data, write_rows
    from vcyclectl.policy import accountingviews as acc

    app = app_context(ctx)
    config = app.config()
    month = _month(month, "--month")
    again = _month(republish, "--republish")
    if config.accounting is None:
        info(app, "accounting is off: no `accounting:` block with a gocdb_sitename")
    if again is not None:
        count = acc.republish(config, again)
        info(app, f"{again}: {count} message(s) queued again")
        return
    rows = acc.accounting_rows(config, month)
    if output in ("json", "yaml"):
        write_data({"rows": rows, "budget": acc.budget_agreement(config, month)
                    if month else []}, output)
        return
    write_rows(rows, COLUMNS, output, name_key="machinetype", headers=not no_headers)
