"""Pure parts of monitoring: chart axes, end-reason labels, VacMon messages, pass counters
carried through the textfile."""

from __future__ import annotations

from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

from vcyclectl.monitoring.chart import PALETTE, Series, nice_axis, step_chart
from vcyclectl.monitoring.fleet import shutdown_code
from vcyclectl.monitoring.metrics import PassTotals, registry_of
from vcyclectl.monitoring.passes import end_reason
from vcyclectl.monitoring.vacmon import machine_message


def test_axis_ticks_are_1_2_5_and_the_top_hugs_the_peak() -> None:
    for peak in [*range(1, 3000), 12345, 99999, 100001]:
        top, step = nice_axis(peak)
        mantissa = step / 10 ** (len(str(int(step))) - 1)
        assert mantissa in (1, 2, 5), (peak, step)
        assert top >= peak and top % step == 0 and top / step <= 10
        assert top <= 1.25 * peak or peak < 4, (peak, top, step)  # 1..3: whole machines
    assert nice_axis(0) == (1.0, 1.0)


def test_chart_has_labelled_axes_and_one_path_per_series() -> None:
    svg = step_chart([Series("lhcb", ((0.0, 3.0), (3600.0, 5.0))),
                      Series("atlas", ((0.0, 1.0),))], 0.0, 86400.0, title="fleet")
    assert svg.count('class="series"') == 2
    assert "time (UTC)" in svg and ">machines<" in svg
    assert PALETTE[0] in svg and PALETTE[1] in svg


def test_end_reasons_are_a_small_fixed_set() -> None:
    assert end_reason({"event": "delete", "reason": "stopped (500 Problem)",
                       "abort": True}) == "stopped_abort"
    assert end_reason({"event": "delete", "reason": "ran 90000s, over max_wallclock_seconds"
                       " (86400)", "message": "700 Exceeded max_wallclock_seconds"}) == \
        "wallclock"
    assert end_reason({"event": "delete", "reason": "heartbeat never, limit 600s"}) == \
        "heartbeat"
    assert end_reason({"event": "delete", "reason": "pre-empted by the cloud",
                       "preempted": True}) == "preempted"
    assert shutdown_code("500 Problem detected with environment") == "500"
    assert shutdown_code(None) == "none" and shutdown_code("weird") == "other"


def test_vacmon_message_has_vcycles_fields() -> None:
    msg = machine_message({"name": "vcyclectl-a-lhcb-x", "space": "cloud.example.org",
                           "machinetype": "lhcb", "processors": 4, "hs06": 40.0,
                           "created_at": 100.0, "started_at": 110.0, "stopped_at": 410.0,
                           "message": "500 Problem", "cloud_id": "u-1", "reason": "stopped"},
                          factory="host1", now=500.0)
    assert msg["message_type"] == "machine_status" and msg["site"] == "example.org"
    assert msg["vacquery_version"] == "VacQuery 01.02" and msg["factory"] == "host1"
    assert msg["cpu_seconds"] == 300 and msg["num_processors"] == 4
    assert msg["shutdown_message"] == "500 Problem" and msg["uuid"] == "u-1"


def test_pass_counters_survive_a_round_trip_through_the_text_format() -> None:
    from prometheus_client import generate_latest

    totals = PassTotals()
    totals.add("vcyclectl_passes", ("s", "done"), 3)
    totals.add_counts("vcyclectl_machines_created", "s", Counter({("lhcb", "share"): 2}))
    totals.set("vcyclectl_pass_duration_seconds", ("s",), 1.5)
    text = generate_latest(registry_of(totals.families())).decode()
    again = PassTotals.parse(text)
    again.add("vcyclectl_passes", ("s", "done"))
    families = {f.name: f for f in text_string_to_metric_families(
        generate_latest(registry_of(again.families())).decode())}
    assert families["vcyclectl_passes"].type == "counter"
    assert families["vcyclectl_passes"].samples[0].value == 4
    assert families["vcyclectl_pass_duration_seconds"].samples[0].value == 1.5
