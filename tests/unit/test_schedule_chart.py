"""The schedule page's chart as a person reads it: a y axis that hugs the peak with 1-2-5
ticks (it ran to 2000 for a peak near 1,100), labelled axes, spend in the budget's currency,
priority at the bottom and backfill on top, partial weeks flagged, and each campaign's asked
against planned processors."""

from __future__ import annotations

import re

from vcyclectl.policy.plotstyle import nice_axis
from vcyclectl.policy.schedule import Schedule, html_page, markdown
from vcyclectl.policy.schedulechart import campaign_chart, weekly_chart


def week(name: str, start: str, lhcb: float, ska: float, spend: float,
         days: float = 7.0) -> dict[str, object]:
    return {"week": name, "from": start, "days": days, "partial": days < 7,
            "communities": {"lhcb": {"processors": lhcb, "processor_hours": 0, "spend": 0},
                            "ska": {"processors": ska, "processor_hours": 0, "spend": 0}},
            "spend": spend}


SCHEDULE = Schedule(
    generated_at=0.0, start=0.0, end=86400.0 * 30, communities=("lhcb", "ska"),
    weeks=(week("2026-W49", "2026-11-30", 1000, 40, 2450.6, days=4.0),
           week("2026-W50", "2026-12-07", 1050, 48, 2870.0),
           week("2026-W51", "2026-12-14", 900, 200, 2869.9),
           week("2026-W52", "2026-12-21", 700, 100, 1200.0, days=2.5)),
    campaigns=({"name": "ska-2026-12-14", "community": "ska", "from": "2026-12-14T00:00:00Z",
                "to": "2026-12-21T00:00:00Z", "last_day": "2026-12-20",
                "asked_processors": 240, "asked_share": None, "planned_processors": 200.0},),
    budgets=({"name": "commercial", "amount": 50000.0, "currency": "GBP", "from": "2026-12-01",
              "to": "2027-03-31", "planned_spend": 9390.5},),
    stack=("ska", "lhcb"), backfill=("lhcb",))


def y_ticks(svg: str) -> list[float]:
    """The processor axis' tick labels (right-aligned texts left of the first panel)."""
    first_panel = svg.split('class="spend-tick"')[0]
    return [float(t.replace(",", "")) for t in
            re.findall(r'text-anchor="end" class="tick">([\d,.]+)</text>', first_panel)]


def test_the_axis_of_a_peak_near_1100_is_1_2_5_and_hugs_it() -> None:
    top, step = nice_axis(1100.0)
    assert (top, step) == (1200.0, 200.0)
    for peak in (1098.0, 1100.0, 1137.0, 37.5, 4.2, 250_000.0):
        top, step = nice_axis(peak)
        assert top <= 1.25 * peak and f"{step:.0e}"[0] in "125"
    top, step = nice_axis(0.37, whole=False)  # money: steps below 1 allowed
    assert top <= 0.37 * 1.25 and step < 1


def test_weekly_chart_ticks_labels_currency_and_stacking() -> None:
    svg = weekly_chart(SCHEDULE)
    ticks = y_ticks(svg)
    peak = 1050 + 48
    assert max(ticks) == 1200 and max(ticks) <= 1.25 * peak  # not 2000
    steps = {b - a for a, b in zip(ticks, ticks[1:], strict=False)}
    assert steps == {200.0}
    assert "processors (weekly average)" in svg and "week starting (UTC)" in svg
    assert "GBP a week" in svg and "planned spend per week, in GBP" in svg
    assert "lhcb (backfill)" in svg
    # every bar is stacked bottom-up: ska (priority) first, backfill last
    order = re.findall(r'data-community="(\w+)"', svg)
    assert order == ["ska", "lhcb"] * 4


def test_partial_weeks_are_flagged() -> None:
    svg = weekly_chart(SCHEDULE)
    assert svg.count('class="partial-week"') == 2
    assert "11-30*" in svg and "12-21*" in svg and "12-07*" not in svg
    assert "partial week: 4 days" in svg
    assert "2026-W49 (partial: 4 days)" in markdown(SCHEDULE)
    assert "spend (GBP)" in markdown(SCHEDULE)


def test_campaign_asked_against_planned() -> None:
    svg = campaign_chart(SCHEDULE)
    assert "asked 240" in svg and "planned 200.0" in svg
    asked = re.search(r'<rect x="200" y="\d+" width="([\d.]+)"[^>]*class="asked"', svg)
    planned = re.search(r'<rect x="200" y="\d+" width="([\d.]+)"[^>]*class="planned"', svg)
    assert asked and planned
    assert float(planned[1]) / float(asked[1]) == \
        __import__("pytest").approx(200 / 240, rel=0.01)
    page = html_page(SCHEDULE)
    assert "<th>asked processors</th>" in page and "<td>240</td>" in page
