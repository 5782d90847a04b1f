"""The table renderer's fitting rules, `inspect`'s time conversion and the format choice."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from vcyclectl.commands.output import GAP, MIN_CUT, _fit, write_rows
from vcyclectl.commands.views import age, iso_times


@given(st.lists(st.integers(1, 60), min_size=1, max_size=12), st.integers(20, 300))
def test_a_fitted_table_never_exceeds_the_width_and_keeps_the_first_column(
        widths: list[int], limit: int) -> None:
    shown, cut = _fit(widths, limit)
    assert shown[0] == 0 and shown == sorted(set(shown))
    total = sum(cut if i == shown[-1] and cut else widths[i] for i in shown) + \
        len(GAP) * (len(shown) - 1)
    assert total <= max(limit, widths[0])  # only a first column wider than the screen
    if cut:
        assert shown[-1] == len(widths) - 1 and MIN_CUT <= cut < widths[-1]


def test_unlimited_width_shows_everything() -> None:
    assert _fit([5, 50, 500], None) == ([0, 1, 2], 0)


def test_a_column_that_does_not_fit_is_skipped_and_later_ones_tried() -> None:
    assert _fit([10, 60, 5, 20], 40) == ([0, 2, 3], 40 - 10 - 3 - 5 - 3)
    assert _fit([10, 60, 5, 6], 40) == ([0, 2, 3], 0)
    assert _fit([10, 5, 60], 40) == ([0, 1, 2], 40 - 10 - 3 - 5 - 3)


def test_piped_tables_are_plain_and_aligned() -> None:
    out = io.StringIO()
    rows = [{"name": "a", "n": 1, "ok": True}, {"name": "bbbb", "n": None, "ok": False}]
    write_rows(rows, ["name", "n", "ok"], "table", stream=out)
    assert out.getvalue() == ("NAME   N   OK\n"
                              "a      1   true\n"
                              "bbbb       false\n")
    out = io.StringIO()
    write_rows(rows, ["name", "n"], "tsv", headers=False, stream=out)
    assert out.getvalue() == "a\t1\nbbbb\t\n"
    out = io.StringIO()
    write_rows(rows, ["name"], "yaml", stream=out)
    assert out.getvalue().startswith("- name: a\n  n: 1\n  ok: true\n")


def test_iso_times_converts_time_fields_at_any_depth_and_nothing_else() -> None:
    data = {"created_at": 0, "processors": 4, "record": {"stopped_at": 86400.5, "hs06": 10.0},
            "events": [{"t": 60, "event": "create"}], "flag": True, "since_at": None}
    assert iso_times(data) == {
        "created_at": "1970-01-01T00:00:00Z", "processors": 4,
        "record": {"stopped_at": "1970-01-02T00:00:00Z", "hs06": 10.0},
        "events": [{"t": "1970-01-01T00:01:00Z", "event": "create"}], "flag": True,
        "since_at": None}


def test_ages_read_like_kubectl() -> None:
    assert [age(s) for s in (0, 59, 119, 120, 7199, 7200, 172800, -5)] == \
        ["0s", "59s", "119s", "2m", "119m", "2h", "2d", "0s"]
