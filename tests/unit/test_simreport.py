"""The `simulate` PNG is drawn from what was simulated: a plain-language title (not the file
name), communities stacked priority first with backfill on top and labelled as backfill, in
the page's palette, campaign windows shaded, a currency axis with the final spend marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vcyclectl.clouds.local.options import LocalFlavor, LocalOptions
from vcyclectl.config import Budget, Campaign, Community, Config, Machinetype, Space
from vcyclectl.policy.plotstyle import PALETTE, colours
from vcyclectl.policy.simulate import Demand, Simulation
from vcyclectl.policy import simreport

pytest.importorskip("matplotlib")  # the plotting extra; the test tier installs it


def small_config(tmp_path: Path) -> Config:
    options = LocalOptions(processors=64, boot_seconds=60, job_seconds=7200,
                           no_work_probability=0.0,
                           flavors=(LocalFlavor("od", 4, price_per_hour=0.4),))
    mts = {mt: Machinetype(name=mt, flavors=("od",), max_wallclock_seconds=10800.0)
           for mt in ("p", "b")}
    return Config(
        state_dir=tmp_path, spaces={"s": Space(name="s", processors_limit=32, machinetypes=mts,
                                               cloud_options=options)},
        communities={"p": Community("p", ("p",), priority=5),
                     "b": Community("b", ("b",), backfill=True)},
        budgets={"x": Budget(amount=40.0, start="2027-01-01", end="2027-01-02", spaces=("s",),
                             name="x", currency="EUR")},
        campaigns=(Campaign(community="p", start="2027-01-01T06:00:00Z",
                            end="2027-01-01T12:00:00Z", processors=16, name="p-c"),))


def test_the_png_reads_as_a_person_expects(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.figure

    cfg = small_config(tmp_path)
    budget = cfg.budgets["x"]
    demand = Demand(windows={"p": ((budget.start_at + 6 * 3600, budget.start_at + 12 * 3600),)},
                    always=frozenset({"b"}))
    report = Simulation(cfg, demand, budget.start_at, budget.end_at).run()
    seen: dict[str, Any] = {}
    save = matplotlib.figure.Figure.savefig

    def keep(fig: Any, path: Any, **kw: Any) -> None:
        seen["fig"] = fig
        save(fig, path, **kw)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    png = tmp_path / "simulation.png"
    simreport.plot(report, png, config=cfg)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    top, bottom = seen["fig"].axes
    title = top.get_title(loc="left")
    assert title.startswith("Simulated provisioning, 1 Jan 2027 to ")
    assert "processors per community (top) and spend against the budget" in title
    assert ".yaml" not in title
    # stacked bottom-up: priority p, then backfill b (labelled), in the page's colours
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    assert labels == ["b (backfill)", "p"]  # legend reads top-down, like the stack
    fills = [c for c in top.collections if c.get_label() in ("p", "b (backfill)")]
    assert [c.get_label() for c in fills] == ["p", "b (backfill)"]
    expected = colours(["b", "p"])
    for poly, name in zip(fills, ("p", "b"), strict=True):
        rgb = "#" + "".join(f"{round(v * 255):02X}" for v in poly.get_facecolor()[0][:3])
        assert rgb == expected[name] and rgb in PALETTE
    assert fills[1].get_hatch() == "//"
    assert any("p campaign" in t.get_text() for t in top.texts)  # the window is shaded
    assert bottom.get_ylabel() == "cumulative spend (EUR)"
    final = report.budgets["x"]["final_spent"]
    assert any(t.get_text().startswith(f"final {final:,.0f} EUR") for t in bottom.texts)
