"""Prometheus metrics, built with `prometheus_client` (never hand-written exposition).

Two sources, one naming scheme (docs/metrics.md lists every metric and example alerts):
- the fleet, read from the shared state directory (`fleet_families`): any host's textfile
  and `serve`'s `/metrics` say the same thing about it, so alerts aggregate with `max by`;
- this host's passes (`PassTotals`): duration, outcome, lock wait, cloud calls and errors,
  machines created and deleted by reason. A cron process lives for one pass, so the
  counters are carried from one pass to the next in the host's own textfile: each pass
  reads the file it wrote last time, adds what it did, and replaces it atomically under a
  lock on the side (two overlapping cron runs on one host add up, never lose a pass).
"""

from __future__ import annotations

import fcntl
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from vcyclectl import __version__
from vcyclectl.monitoring.fleet import Fleet

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ST = ("space", "machinetype")
Labels = tuple[str, ...]


def _gauge(name: str, doc: str, labels: Iterable[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


def fleet_families(fleet: Fleet) -> Iterator[Metric]:
    """Gauges of the fleet as the state directory shows it now."""
    machines = _gauge("vcyclectl_machines", "Machines by space, machinetype and state.",
                      (*ST, "state"))
    used = _gauge("vcyclectl_processors_in_use",
                  "Processors of the machines that count against limits.", ST)
    limit = _gauge("vcyclectl_processors_limit",
                   "The processors_limit of a machinetype (the space's when it has none).", ST)
    space_limit = _gauge("vcyclectl_space_processors_limit",
                         "The processors_limit of a space.", ("space",))
    target = _gauge("vcyclectl_share_target_ratio",
                    "target_share of a machinetype, normalised to 1 over the space.", ST)
    actual = _gauge("vcyclectl_share_actual_ratio",
                    "Fraction of the space's counted hs06 this machinetype has now.", ST)
    backoff = _gauge("vcyclectl_machinetype_backoff",
                     "1 while a machinetype is in backoff after an abort.", ST)
    drained = _gauge("vcyclectl_machinetype_drained", "1 while a machinetype is drained.", ST)
    space_drained = _gauge("vcyclectl_space_drained", "1 while a space is drained.", ("space",))
    last_pass = _gauge("vcyclectl_space_last_pass_timestamp_seconds",
                       "When the last pass over a space that got as far as acting finished.",
                       ("space",))
    last_ok = _gauge("vcyclectl_space_last_success_timestamp_seconds",
                     "When the last pass over a space finished with outcome done; alert on "
                     "time() minus this.", ("space",))
    fresh = _gauge("vcyclectl_heartbeats_fresh_machines",
                   "Running machines whose heartbeat arrived within heartbeat_seconds.", ST)
    checked = _gauge("vcyclectl_heartbeats_expected_machines",
                     "Running machines of machinetypes that must send heartbeats.", ST)
    latest = _gauge("vcyclectl_heartbeat_last_received_timestamp_seconds",
                    "When the newest heartbeat of a machinetype's machines arrived.", ST)
    for view in fleet.spaces:
        space_drained.add_metric([view.name], 1.0 if view.drained else 0.0)
        if view.rows:
            space_limit.add_metric([view.name], float(view.rows[0]["space_processors_limit"]))
        if isinstance(view.last_pass.get("finished_at"), (int, float)):
            last_pass.add_metric([view.name], float(view.last_pass["finished_at"]))
        if isinstance(view.last_pass.get("succeeded_at"), (int, float)):
            last_ok.add_metric([view.name], float(view.last_pass["succeeded_at"]))
        for row in view.rows:
            key = [view.name, row["machinetype"]]
            for state in ("creating", "starting", "running", "stopped", "failed", "deleting",
                          "unknown"):
                machines.add_metric([*key, state], float(row["states"].get(state, 0)))
            used.add_metric(key, float(row["processors"]))
            limit.add_metric(key, float(row["processors_limit"]))
            target.add_metric(key, float(row["target_share"]))
            actual.add_metric(key, float(row["actual_share"]))
            backoff.add_metric(key, 1.0 if row["backoff_until"] else 0.0)
            drained.add_metric(key, 1.0 if row["drained"] else 0.0)
            hb = view.heartbeats.get(row["machinetype"])
            if hb is not None:
                fresh.add_metric(key, float(hb.fresh))
                checked.add_metric(key, float(hb.checked))
                if hb.latest is not None:
                    latest.add_metric(key, hb.latest)
    yield from (machines, used, limit, space_limit, target, actual, backoff, drained,
                space_drained, last_pass, last_ok, fresh, checked, latest)
    yield from budget_families(fleet)
    info = _gauge("vcyclectl_build_info", "Always 1; the version as a label.", ("version",))
    info.add_metric([__version__], 1.0)
    yield info


def budget_families(fleet: Fleet) -> Iterator[Metric]:
    """`vcyclectl budget`'s figures, per budget and space (`*` = the whole budget)."""
    if not fleet.budgets:
        return
    labels = ("budget", "space", "currency")
    amount = _gauge("vcyclectl_budget_amount", "The budget's amount, in its currency.", labels)
    spent = _gauge("vcyclectl_budget_spent", "Money spent so far, in the budget's currency.",
                   labels)
    committed = _gauge("vcyclectl_budget_committed",
                       "Spent plus what the machines running now cost by the budget's end if "
                       "they keep running (the forecast).", labels)
    burn = _gauge("vcyclectl_budget_burn_rate_per_hour",
                  "What the machines running now cost per hour.", labels)
    paced = _gauge("vcyclectl_budget_paced_rate_per_hour",
                   "The rate per hour that spends the rest evenly until the end date.", labels)
    for row in fleet.budgets:
        if row.get("community") != "*":
            continue
        key = [str(row["budget"]), str(row["space"]), str(row["currency"])]
        if row.get("amount") is not None:
            amount.add_metric(key, float(row["amount"]))
        spent.add_metric(key, float(row["spent"]))
        committed.add_metric(key, float(row["forecast_at_end"]))
        burn.add_metric(key, float(row["burn_rate_per_hour"]))
        if row.get("paced_rate_per_hour") is not None:
            paced.add_metric(key, float(row["paced_rate_per_hour"]))
    yield from (amount, spent, committed, burn, paced)


# -- this host's passes -------------------------------------------------------------------
#: name -> (type, help, labels); the counters are carried over between passes.
PASS_METRICS: dict[str, tuple[str, str, Labels]] = {
    "vcyclectl_passes": ("counter", "Passes this host ran over a space, by outcome.",
                         ("space", "outcome")),
    "vcyclectl_cloud_api_calls": ("counter", "Cloud API calls this host made, by call "
                                  "(list, flavors, create, delete), retries included.",
                                  ("space", "call")),
    "vcyclectl_cloud_api_errors": ("counter", "Cloud API calls that failed, by call and "
                                   "kind of error (Transient, QuotaExceeded, Fatal, ...).",
                                   ("space", "call", "kind")),
    "vcyclectl_machines_created": ("counter", "Machines this host created, by reason.",
                                   ("space", "machinetype", "reason")),
    "vcyclectl_machines_deleted": ("counter", "Machines this host deleted, by reason.",
                                   ("space", "machinetype", "reason")),
    "vcyclectl_pass_duration_seconds": ("gauge", "How long this host's last pass over a "
                                        "space took.", ("space",)),
    "vcyclectl_pass_lock_wait_seconds": ("gauge", "How long this host's last pass waited "
                                         "for the space's lock.", ("space",)),
    "vcyclectl_pass_last_timestamp_seconds": ("gauge", "When this host's last pass over a "
                                              "space ended.", ("space",)),
    "vcyclectl_pass_outcome": ("gauge", "1 for the outcome of this host's last pass over a "
                               "space (done, skipped, failed, timeout), 0 for the others.",
                               ("space", "outcome")),
}
OUTCOMES = ("done", "skipped", "failed", "timeout")


@dataclass
class PassTotals:
    """This host's pass metrics: counters (cumulative) and gauges (last pass), by labels."""

    values: dict[str, dict[Labels, float]] = field(
        default_factory=lambda: {name: {} for name in PASS_METRICS})

    def add(self, name: str, labels: Labels, amount: float = 1.0) -> None:
        series = self.values[name]
        series[labels] = series.get(labels, 0.0) + amount

    def set(self, name: str, labels: Labels, value: float) -> None:
        self.values[name][labels] = value

    def add_counts(self, name: str, space: str, counts: Counter[Labels]) -> None:
        for labels, n in counts.items():
            self.add(name, (space, *labels), float(n))

    def families(self) -> Iterator[Metric]:
        for name, (kind, doc, labels) in PASS_METRICS.items():
            family: Metric = CounterMetricFamily(name, doc, labels=list(labels)) \
                if kind == "counter" else GaugeMetricFamily(name, doc, labels=list(labels))
            for key, value in sorted(self.values[name].items()):
                family.add_metric(list(key), value)  # type: ignore[attr-defined]
            yield family

    @classmethod
    def parse(cls, text: str) -> "PassTotals":
        """The pass metrics in a textfile this host wrote before (others are ignored)."""
        totals = cls()
        for family in text_string_to_metric_families(text):
            if family.name not in PASS_METRICS:
                continue
            kind, _, labels = PASS_METRICS[family.name]
            wanted = family.name + ("_total" if kind == "counter" else "")
            for sample in family.samples:
                if sample.name == wanted and set(sample.labels) == set(labels):
                    totals.values[family.name][tuple(sample.labels[k] for k in labels)] = \
                        sample.value
        return totals


class _Families(Collector):
    def __init__(self, *sources: Iterable[Metric]) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source


def registry_of(*sources: Iterable[Metric]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(*[list(s) for s in sources]))
    return registry


def exposition(fleet: Fleet) -> bytes:
    """`/metrics`: the fleet now, in the Prometheus text format."""
    return generate_latest(registry_of(fleet_families(fleet)))


def textfile_path(template: str, host: str) -> Path:
    """`metrics_textfile` with `{host}` replaced, so one shared config gives each host its
    own file even when the directory is shared."""
    return Path(template.replace("{host}", host))


def update_textfile(path: Path, fleet: Fleet, apply: Callable[[PassTotals], None]) -> None:
    """Read this host's last textfile, let `apply` add this pass, write it back atomically
    (prometheus_client's `write_to_textfile`: a temporary file renamed over the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            totals = PassTotals.parse(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError, UnicodeDecodeError):
            totals = PassTotals()  # no file yet, or one we cannot read: counters restart
        apply(totals)
        write_to_textfile(os.fspath(path), registry_of(fleet_families(fleet), totals.families()))

