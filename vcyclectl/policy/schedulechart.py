"""The schedule page's pictures as inline SVG (no library, no script): stacked weekly
processors per community with spend per week on a currency axis, and each campaign's asked
against planned processors.

Read as a person would: 1-2-5 ticks with the top within 1.25x the peak, both axes
labelled, priority communities at the bottom and backfill on top (labelled as backfill),
the palette the status page and the `simulate` PNG use, and weeks the plan covers only in
part drawn hatched and marked, so a short first week does not read as a drop.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from vcyclectl.policy.plotstyle import colours, nice_axis

if TYPE_CHECKING:
    from vcyclectl.policy.schedule import Schedule

_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 20, 16, 50


def _ticks(top: float, step: float) -> list[float]:
    return [i * step for i in range(int(round(top / step)) + 1)]


def _money(v: float) -> str:
    return f"{v / 1000:g}k" if v >= 10_000 else f"{v:,.0f}"


def weekly_chart(schedule: "Schedule", width: int = 900, height: int = 300,
                 spend_height: int = 120) -> str:
    """Stacked bars of average processors per community per week, and under them, on the
    same weeks, spend per week on an axis in the budgets' currency."""
    weeks = schedule.weeks
    if not weeks:
        return ""
    stack = list(schedule.stack or schedule.communities)
    colour = colours(schedule.communities)
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    spend_top = height + 4
    spend_h = spend_height - 40
    totals = [sum(w["communities"][c]["processors"] for c in stack) for w in weeks]
    y_top, y_step = nice_axis(max(totals))
    s_top, s_step = nice_axis(max(w["spend"] for w in weeks), whole=False)
    s_step = s_step if s_top / s_step <= 4 else s_step * 2  # a short panel: fewer ticks
    bar = plot_w / len(weeks)
    legend_top = spend_top + spend_height
    legend_rows = (len(stack) + 3) // 4
    full_h = legend_top + 22 * legend_rows + 6
    currency = schedule.currency or "money"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="schedule-chart" '
           f'width="{width}" height="{full_h}" viewBox="0 0 {width} {full_h}" '
           f'font-family="sans-serif" font-size="12" aria-label="planned processors per '
           f'community per week, and spend per week in {escape(currency)}">',
           '<defs><pattern id="partial" width="6" height="6" patternUnits="userSpaceOnUse" '
           'patternTransform="rotate(45)"><rect width="3" height="6" fill="#fff" '
           'fill-opacity="0.55"/></pattern></defs>']

    def y(v: float) -> float:
        return _TOP + plot_h - v / y_top * plot_h

    def ys(v: float) -> float:
        return spend_top + spend_h - v / s_top * spend_h

    for v in _ticks(y_top, y_step):
        out.append(f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                   f'stroke="#e3e3e3"/><text x="{_LEFT - 6}" y="{y(v) + 4:.1f}" '
                   f'text-anchor="end" class="tick">{v:,.0f}</text>')
    for v in _ticks(s_top, s_step):
        out.append(f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{ys(v):.1f}" '
                   f'y2="{ys(v):.1f}" stroke="#e3e3e3"/><text x="{_LEFT - 6}" '
                   f'y="{ys(v) + 4:.1f}" text-anchor="end" class="tick spend-tick">'
                   f'{_money(v)}</text>')
    for i, w in enumerate(weeks):
        x = _LEFT + i * bar
        out.extend(_bar(w, stack, colour, x, bar, y, schedule.backfill))
        out.append(f'<rect x="{x + 1:.1f}" y="{ys(w["spend"]):.1f}" width="{max(bar - 2, 1):.1f}"'
                   f' height="{ys(0) - ys(w["spend"]):.1f}" fill="#555" class="spend"'
                   + (' fill-opacity="0.45"' if w.get("partial") else "")
                   + f'><title>{escape(w["week"])}: {w["spend"]:,.2f} {escape(currency)}'
                   + (f' (partial week: {w["days"]:g} days)' if w.get("partial") else "")
                   + '</title></rect>')
        if i % max(1, len(weeks) // 12) == 0 or w.get("partial"):
            mark = "*" if w.get("partial") else ""
            out.append(f'<text x="{x + bar / 2:.1f}" y="{_TOP + plot_h + 15}" '
                       f'text-anchor="middle" class="tick">{escape(w["from"][5:])}{mark}</text>')
    for top, bottom in ((_TOP, _TOP + plot_h), (spend_top, spend_top + spend_h)):
        out.append(f'<line x1="{_LEFT}" x2="{_LEFT}" y1="{top}" y2="{bottom}" stroke="#444"/>'
                   f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{bottom}" y2="{bottom}" '
                   f'stroke="#444"/>')
    out.append(f'<text transform="translate(16 {_TOP + plot_h / 2:.0f}) rotate(-90)" '
               f'text-anchor="middle" class="axis-label">processors (weekly average)</text>')
    out.append(f'<text transform="translate(16 {spend_top + spend_h / 2:.0f}) rotate(-90)" '
               f'text-anchor="middle" class="axis-label">{escape(currency)} a week</text>')
    out.append(f'<text x="{_LEFT + plot_w / 2:.0f}" y="{_TOP + plot_h + 34}" '
               f'text-anchor="middle" class="axis-label">week starting (UTC)'
               + (' · * partial week: the plan covers only part of it (hatched)' if any(
                   w.get("partial") for w in weeks) else '') + '</text>')
    out.append(f'<text x="{_LEFT + plot_w / 2:.0f}" y="{spend_top + spend_h + 18}" '
               f'text-anchor="middle" class="axis-label">planned spend per week, in '
               f'{escape(currency)}</text>')
    out.extend(_legend(schedule, stack, colour, legend_top))
    out.append("</svg>")
    return "\n".join(out)


def _bar(w: dict[str, Any], stack: list[str], colour: dict[str, str], x: float, bar: float,
         y: Any, backfill: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    base = 0.0
    partial = bool(w.get("partial"))
    for c in stack:
        value = w["communities"][c]["processors"]
        if value <= 0:
            continue
        top, bottom = y(base + value), y(base)
        note = " (backfill)" if c in backfill else ""
        days = f", partial week: {w['days']:g} days planned" if partial else ""
        out.append(f'<rect x="{x + 1:.1f}" y="{top:.1f}" width="{max(bar - 2, 1):.1f}" '
                   f'height="{bottom - top:.1f}" fill="{colour[c]}" data-community="{escape(c)}">'
                   f'<title>{escape(w["week"])} {escape(c)}{note}: {value:g} processors'
                   f'{days}</title></rect>')
        base += value
    if partial and base > 0:
        out.append(f'<rect x="{x + 1:.1f}" y="{y(base):.1f}" width="{max(bar - 2, 1):.1f}" '
                   f'height="{y(0) - y(base):.1f}" fill="url(#partial)" class="partial-week"/>')
        out.append(f'<text x="{x + bar / 2:.1f}" y="{y(base) - 4:.1f}" text-anchor="middle" '
                   f'class="partial-label">{w["days"]:g} d</text>')
    return out


def _legend(schedule: "Schedule", stack: list[str], colour: dict[str, str],
            top: float) -> list[str]:
    """Top of the stack first, as the bars read."""
    out: list[str] = []
    items = [(c, f"{c} (backfill)" if c in schedule.backfill else c) for c in reversed(stack)]
    for j, (c, text) in enumerate(items):
        x = _LEFT + (j % 4) * 190
        y = top + 22 * (j // 4) + 12
        out.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{colour[c]}"/>'
                   f'<text x="{x + 17}" y="{y}" class="legend">{escape(text)}</text>')
    return out


def campaign_chart(schedule: "Schedule", width: int = 900) -> str:
    """Per campaign in processors: what it asked (outline) and what the plan gives it on
    average over its window (filled), on one 1-2-5 axis."""
    rows = [c for c in schedule.campaigns if c.get("asked_processors") is not None]
    if not rows:
        return ""
    colour = colours(schedule.communities)
    left, row_h = 200, 46
    plot_w = width - left - 130
    peak = max(max(c["asked_processors"], c["planned_processors"] or 0) for c in rows)
    top, step = nice_axis(peak)
    height = 40 + row_h * len(rows) + 20
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="campaign-chart" '
           f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'font-family="sans-serif" font-size="12" '
           f'aria-label="campaigns: processors asked and planned">']

    def x(v: float) -> float:
        return left + v / top * plot_w

    for v in _ticks(top, step):
        out.append(f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="14" y2="{height - 34}" '
                   f'stroke="#e3e3e3"/><text x="{x(v):.1f}" y="{height - 20}" '
                   f'text-anchor="middle" class="tick">{v:,.0f}</text>')
    out.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 4}" text-anchor="middle" '
               f'class="axis-label">processors (average over the campaign\'s window)</text>')
    for i, c in enumerate(rows):
        y0 = 20 + i * row_h
        planned = c["planned_processors"] or 0.0
        fill = colour.get(c["community"], "#777")
        out.append(f'<text x="{left - 8}" y="{y0 + 14}" text-anchor="end" class="legend">'
                   f'{escape(c["name"])}</text>')
        out.append(f'<rect x="{left}" y="{y0}" width="{x(c["asked_processors"]) - left:.1f}" '
                   f'height="12" fill="none" stroke="{fill}" stroke-width="2" '
                   f'stroke-dasharray="5 3" class="asked"/>'
                   f'<text x="{x(c["asked_processors"]) + 6:.1f}" y="{y0 + 10}" class="tick">'
                   f'asked {c["asked_processors"]:,}</text>')
        out.append(f'<rect x="{left}" y="{y0 + 16}" width="{x(planned) - left:.1f}" '
                   f'height="12" fill="{fill}" class="planned"/>'
                   f'<text x="{x(planned) + 6:.1f}" y="{y0 + 26}" class="tick">'
                   f'planned {planned:,.1f}</text>')
    out.append("</svg>")
    return "\n".join(out)
