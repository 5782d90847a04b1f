"""A step chart of the fleet over time as inline SVG, generated here: no library, no script,
no external asset, so the page is one self-contained file any browser draws.

The y axis has 1-2-5 ticks and its top within 1.25x the peak; series take the Okabe-Ito
palette, which stays distinguishable with the common colour-vision deficiencies, and each
series also has its own dash pattern so colour is never the only cue.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from html import escape
from typing import Callable

from vcyclectl.policy.plotstyle import DASHES, MAX_TICKS, PALETTE, nice_axis

__all__ = ["DASHES", "MAX_TICKS", "PALETTE", "Series", "nice_axis", "step_chart"]


@dataclass(frozen=True)
class Series:
    label: str
    points: tuple[tuple[float, float], ...]  # (time, value), time ascending, a step function


def _time_ticks(start: float, end: float) -> list[tuple[float, str]]:
    span = end - start
    step = 4 * 3600.0 if span <= 2 * 86400 else 86400.0
    fmt = "%H:%M" if span <= 2 * 86400 else "%d %b"
    first = math.ceil(start / step) * step
    ticks = []
    t = first
    while t <= end + 1e-6:
        ticks.append((t, time.strftime(fmt, time.gmtime(t))))
        t += step
    return ticks


def step_chart(series: list[Series], start: float, end: float, *, title: str,
               y_label: str = "machines", width: int = 760, height: int = 260) -> str:
    """An SVG step chart of `series` over [start, end], with axes, ticks and a legend."""
    left, right, top_pad, bottom = 56, 16, 28, 58
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    peak = max((v for s in series for _, v in s.points), default=0.0)
    y_top, y_step = nice_axis(peak)

    def x(t: float) -> float:
        return left + (min(max(t, start), end) - start) / (end - start) * plot_w

    def y(v: float) -> float:
        return top_pad + plot_h - v / y_top * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
           f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'aria-label="{escape(title)}">',
           f'<title>{escape(title)}</title>',
           f'<text x="{left}" y="16" class="chart-title">{escape(title)}</text>']
    n = 0
    while n * y_step <= y_top + 1e-9:
        v = n * y_step
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                   f'class="grid"/>')
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" '
                   f'class="tick">{v:g}</text>')
        n += 1
    for t, label in _time_ticks(start, end):
        out.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top_pad + plot_h}" '
                   f'y2="{top_pad + plot_h + 4}" class="axis"/>')
        out.append(f'<text x="{x(t):.1f}" y="{top_pad + plot_h + 17}" text-anchor="middle" '
                   f'class="tick">{escape(label)}</text>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top_pad}" y2="{top_pad + plot_h}" '
               f'class="axis"/>')
    out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{top_pad + plot_h}" '
               f'y2="{top_pad + plot_h}" class="axis"/>')
    out.append(f'<text transform="translate(14 {top_pad + plot_h / 2:.0f}) rotate(-90)" '
               f'text-anchor="middle" class="axis-label">{escape(y_label)}</text>')
    out.append(f'<text x="{left + plot_w / 2:.0f}" y="{top_pad + plot_h + 34}" '
               f'text-anchor="middle" class="axis-label">time (UTC)</text>')
    legend_x = left
    for i, s in enumerate(series):
        colour, dash = PALETTE[i % len(PALETTE)], DASHES[i % len(DASHES)]
        path = _step_path(s, x, y, end)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2.5"'
                   f'{dash_attr} class="series" data-series="{escape(s.label)}"/>')
        ly = height - 8
        out.append(f'<line x1="{legend_x}" x2="{legend_x + 22}" y1="{ly - 4}" y2="{ly - 4}" '
                   f'stroke="{colour}" stroke-width="3"{dash_attr}/>')
        out.append(f'<text x="{legend_x + 27}" y="{ly}" class="legend">{escape(s.label)}</text>')
        legend_x += 34 + 7 * len(s.label)
    out.append("</svg>")
    return "\n".join(out)


def _step_path(s: Series, fx: Callable[[float], float], fy: Callable[[float], float],
               end: float) -> str:
    parts: list[str] = []
    last_v: float | None = None
    for t, v in s.points:
        if last_v is None:
            parts.append(f"M{fx(t):.1f},{fy(v):.1f}")
        else:
            parts.append(f"H{fx(t):.1f}V{fy(v):.1f}")
        last_v = v
    if last_v is not None:
        parts.append(f"H{fx(end):.1f}")
    return "".join(parts)
