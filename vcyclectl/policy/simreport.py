"""What a simulation did: one row per step, the figures tests and people check, the CSV,
and the plot (matplotlib, imported only when plotting)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DAY = 86400.0


@dataclass
class SimReport:
    """What a simulation did: one row per step, and the figures tests and people check."""

    columns: list[str]
    rows: list[dict[str, Any]]
    communities: list[str]
    budgets: dict[str, dict[str, float]]
    max_wait_seconds: dict[str, float]
    max_drain_seconds: float
    simulated_seconds: float
    cpu_seconds: float
    passes: int

    @property
    def months_per_cpu_second(self) -> float:
        return (self.simulated_seconds / (30.44 * DAY)) / max(self.cpu_seconds, 1e-9)

    def write_csv(self, path: Path) -> None:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore")
            writer.writeheader()
            for row in self.rows:
                writer.writerow({k: (round(v, 4) if isinstance(v, float) else v)
                                 for k, v in row.items()})

    def summary(self) -> dict[str, Any]:
        return {"passes": self.passes, "simulated_days": round(self.simulated_seconds / DAY, 2),
                "cpu_seconds": round(self.cpu_seconds, 3),
                "months_per_cpu_second": round(self.months_per_cpu_second, 3),
                "budgets": {k: {kk: round(vv, 2) for kk, vv in v.items()}
                            for k, v in self.budgets.items()},
                "max_wait_seconds": {k: round(v, 1) for k, v in self.max_wait_seconds.items()},
                "max_drain_seconds": round(self.max_drain_seconds, 1)}


def plot(report: SimReport, path: Path, title: str = "vcyclectl simulate") -> None:
    """Processors per community over time, and cumulative spend against each budget line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from datetime import datetime, timezone

    times = [datetime.fromtimestamp(r["time"], tz=timezone.utc) for r in report.rows]
    budgets = sorted({k.split(":")[1] for k in report.columns if k.startswith("budget:")})
    panels = 2 if budgets else 1
    fig, axes = plt.subplots(panels, 1, figsize=(11, 4 * panels), sharex=True, squeeze=False)
    ax = axes[0][0]
    ax.stackplot(times, *[[r[f"processors:{c}"] for r in report.rows]
                          for c in report.communities], labels=report.communities)
    ax.set_ylabel("processors")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small", ncol=min(6, len(report.communities)))
    if budgets:
        ax = axes[1][0]
        for name in budgets:
            ax.plot(times, [r[f"budget:{name}:spent"] for r in report.rows],
                    label=f"{name}: spent")
            ax.plot(times, [r[f"budget:{name}:line"] for r in report.rows], linestyle="--",
                    label=f"{name}: budget line")
            ax.axhline(report.budgets[name]["amount"], color="red", linewidth=0.8,
                       label=f"{name}: amount")
        ax.set_ylabel("cumulative spend")
        ax.legend(loc="upper left", fontsize="small")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
