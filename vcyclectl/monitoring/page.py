"""The status page: one self-contained HTML file (inline CSS and SVG, no script, no
external asset) for `vcyclectl status --output html --out FILE` and `serve`'s `/`.

Read-only and public: it shows counts, limits, shares, times, host names and shutdown
message codes; never a token, a credential, user_data or a cloud option.
"""

from __future__ import annotations

from collections import Counter
from html import escape
from typing import Any

from vcyclectl.core.times import iso
from vcyclectl.monitoring.chart import Series, step_chart
from vcyclectl.monitoring.fleet import DAY, Fleet, SpaceView

WINDOWS = ((DAY, "last 24 hours"), (7 * DAY, "last 7 days"))
#: An end code at least this common among a machinetype's ends is called out.
DOMINANT = 0.8

CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 margin:24px;color:#1a1a1a;background:#fff;max-width:1100px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 6px}
.meta{color:#555;margin:0 0 10px}
table{border-collapse:collapse;margin:6px 0 14px;min-width:60%}
th,td{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f3f3f3;font-weight:600} td.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:inline-block;width:90px;height:9px;background:#eee;margin-left:6px;
 vertical-align:middle}
.bar span{display:block;height:9px;background:#0072B2}
.flag{padding:1px 6px;border-radius:3px;font-size:12px;font-weight:600}
.warn{background:#E69F00;color:#000} .bad{background:#D55E00;color:#fff}
.ok{background:#009E73;color:#fff} .muted{color:#777}
.callout{border-left:4px solid #D55E00;background:#fff4ec;padding:6px 10px;margin:6px 0}
svg.chart{display:block;margin:8px 0 16px;max-width:100%;height:auto}
svg .grid{stroke:#e3e3e3;stroke-width:1} svg .axis{stroke:#444;stroke-width:1}
svg .tick,svg .legend{font-size:11px;fill:#333} svg .axis-label{font-size:12px;fill:#333}
svg .chart-title{font-size:13px;font-weight:600;fill:#1a1a1a}
"""


def render(fleet: Fleet, *, title: str = "vcyclectl status", host: str = "") -> str:
    """The whole page as a string."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{escape(title)}</h1>",
             f'<p class="meta">{len(fleet.spaces)} space(s), generated {iso(fleet.now)}'
             f'{" on " + escape(host) if host else ""}. Times are UTC.</p>']
    parts.extend(callouts(fleet))
    for seconds, label in WINDOWS:
        if fleet.history_seconds >= seconds:
            parts.append(step_chart(fleet_series(fleet, seconds), fleet.now - seconds,
                                    fleet.now, title=f"Machines per machinetype, {label}"))
    for view in fleet.spaces:
        parts.append(space_section(view, fleet.now))
    if fleet.budgets:
        parts.append(budget_section(fleet.budgets))
    parts.append("</body></html>")
    return "\n".join(parts)


def live_count(view: SpaceView, machinetype: str) -> int:
    return sum(1 for r in view.records.values() if r.machinetype == machinetype
               and r.deleting_at is None and not r.finished)


def fleet_series(fleet: Fleet, seconds: float) -> list[Series]:
    """Machines per space/machinetype over the window, walked back from now through the
    journals: a create or adoption adds one from its time, an ended machine (finished
    journal) counts until it ended."""
    out: list[Series] = []
    start = fleet.now - seconds
    for view in fleet.spaces:
        for row in view.rows:
            mt = row["machinetype"]
            value = float(live_count(view, mt))
            points: list[tuple[float, float]] = []  # (time, the value from that time on)
            for when, machinetype, delta in reversed(view.changes):
                if machinetype != mt or when < start:
                    continue
                if not points or points[-1][0] != when:  # one step per instant
                    points.append((when, value))
                value = max(0.0, value - delta)
            points.append((start, value))
            points.reverse()
            label = mt if len(fleet.spaces) == 1 else f"{view.name}/{mt}"
            out.append(Series(label, tuple(points)))
    return out


DRAINED_FLAG = '; <span class="flag warn">space drained</span>'


def space_section(view: SpaceView, now: float) -> str:
    last = view.last_pass
    when = last.get("finished_at")
    outcome = str(last.get("outcome") or "never")
    flag = "ok" if outcome == "done" else "bad"
    age = f" ({(now - when) / 60:.0f} min ago)" if isinstance(when, (int, float)) else ""
    head = (f'<h2>{escape(view.name)}</h2><p class="meta">last pass: '
            f'{escape(iso(when) or "never")}{age} <span class="flag {flag}">{escape(outcome)}'
            f'</span>{" by " + escape(str(last["host"])) if last.get("host") else ""}; '
            f'lock: {escape(view.lock)}'
            f'{DRAINED_FLAG if view.drained else ""}</p>')
    rows = ["<table><thead><tr><th>machinetype</th><th>machines by state</th>"
            "<th>processors / limit</th><th>share target / actual</th><th>backoff</th>"
            "<th>drained</th><th>heartbeats fresh / expected</th>"
            "<th>ended, last 24 h (shutdown code)</th></tr></thead><tbody>"]
    for row in view.rows:
        mt = row["machinetype"]
        states = ", ".join(f"{k} {v}" for k, v in sorted(row["states"].items())) or "none"
        limit = row["processors_limit"]
        fill = min(100.0, 100.0 * row["processors"] / limit) if limit else 0.0
        hb = view.heartbeats.get(mt)
        beats = f"{hb.fresh} / {hb.checked}" if hb and hb.checked else \
            '<span class="muted">not checked</span>'
        backoff = f'<span class="flag warn">until {escape(row["backoff_until"])}</span>' \
            if row["backoff_until"] else "no"
        drained = '<span class="flag warn">drained</span>' if row["drained"] else "no"
        rows.append(
            f'<tr data-machinetype="{escape(mt)}"><td><b>{escape(mt)}</b></td>'
            f"<td>{escape(states)}</td>"
            f'<td class="num">{row["processors"]} / {limit}<span class="bar">'
            f'<span style="width:{fill:.0f}%"></span></span></td>'
            f'<td class="num">{row["target_share"]:.0%} / {row["actual_share"]:.0%}</td>'
            f"<td>{backoff}</td><td>{drained}</td><td>{beats}</td>"
            f"<td>{end_codes_text(view.end_codes.get(mt))}</td></tr>")
    rows.append("</tbody></table>")
    return head + "\n".join(rows)


def end_codes_text(codes: Counter[str] | None) -> str:
    if not codes:
        return '<span class="muted">none</span>'
    total = sum(codes.values())
    return ", ".join(f"{escape(code)} &times;{n}" for code, n in codes.most_common()) + \
        f' <span class="muted">({total})</span>'


def callouts(fleet: Fleet) -> list[str]:
    """A line for each machinetype whose recent ends are dominated by one abort code
    (300-699): "lhcb: 12 of 12 machines ended with 500 in the last 24 hours"."""
    out = []
    for view in fleet.spaces:
        for mt, codes in sorted(view.end_codes.items()):
            total = sum(codes.values())
            code, n = codes.most_common(1)[0]
            if code.isdigit() and 300 <= int(code) < 700 and n / total >= DOMINANT:
                out.append(f'<p class="callout"><b>{escape(view.name)}/{escape(mt)}</b>: '
                           f"{n} of {total} machines ended with shutdown code "
                           f"<b>{escape(code)}</b> in the last 24 hours.</p>")
    return out


def budget_section(rows: list[dict[str, Any]]) -> str:
    out = ["<h2>Budget</h2><table><thead><tr><th>budget</th><th>space</th><th>spent</th>"
           "<th>amount</th><th>burn / paced per hour</th><th>forecast at end</th></tr>"
           "</thead><tbody>"]
    for row in rows:
        if row.get("community") != "*":
            continue
        burn, paced = row.get("burn_rate_per_hour"), row.get("paced_rate_per_hour")
        ahead = paced is not None and burn is not None and burn > paced > 0
        pace = (f"{burn:g} / {paced:g}" if paced is not None else f"{burn:g} / -") + \
            (' <span class="flag bad">ahead of pace</span>' if ahead else "")
        currency = escape(str(row.get("currency", "")))
        amount = row.get("amount")
        other = "".join(f'<br><small>{v["spent"]:,.2f} {escape(code)} at {v["rate"]:g}</small>'
                        for code, v in (row.get("in_other_currencies") or {}).items())
        out.append(f"<tr><td>{escape(str(row['budget']))}</td><td>{escape(str(row['space']))}"
                   f'</td><td class="num">{row["spent"]:g} {currency}{other}</td>'
                   f'<td class="num">{"" if amount is None else f"{amount:g} {currency}"}</td>'
                   f'<td class="num">{pace}</td><td class="num">{row["forecast_at_end"]:g} '
                   f"{currency}</td></tr>")
    out.append("</tbody></table>")
    return "\n".join(out)

