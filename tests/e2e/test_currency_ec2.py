"""A GBP budget over an EC2 spot space on moto: AWS's spot price history (USD) is converted
at the budget's exchange rate before the pass plans, records and pays; `budget` shows both
currencies; without a rate the config is refused with file, line and key."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "clouds"))

from moto_server import (  # noqa: E402
    REMOVED_AWS_ENV, register_image,
)
from tests.conftest import run_process  # noqa: E402
from tests.e2e.cloudspace import space_config, vcyclectl  # noqa: E402
from vcyclectl.state.store import StateDir  # noqa: E402

SPACE = "aws.example.org"
REGION = "us-east-1"
RATE = 0.79


def gbp_config(tmp_path: Path, endpoint: str, ec2: Any, rates: str) -> Path:
    assert register_image(ec2, "cernvm4-lhcb")
    path = space_config(tmp_path, SPACE, "ec2", f"""
        region: {REGION}
        endpoint_url: {endpoint}
        image: cernvm4-lhcb
        image_owners: [self]
        instance_types: [m5.large]
        spot: true
        max_attempts: 2
        """, """
        min_processors: 2
        max_processors: 2
        user_data: lhcb.user_data
        """)
    path.write_text(path.read_text() + f"""
budgets:
  commercial:
    spaces: [{SPACE}]
    amount: 1000
    currency: GBP
    start: 2026-01-01
    end: 2099-12-31
{rates}""")
    return path


def moto_spot_price_usd(ec2: Any) -> float:
    """What moto's price history says now for m5.large, the highest over zones (as the
    driver reads it)."""
    from datetime import datetime, timezone

    history = ec2.describe_spot_price_history(
        InstanceTypes=["m5.large"], ProductDescriptions=["Linux/UNIX", "Linux/UNIX (Amazon VPC)"],
        StartTime=datetime.now(timezone.utc))["SpotPriceHistory"]
    assert history
    return max(float(h["SpotPrice"]) for h in history)


def test_gbp_budget_over_ec2_spot_converts_the_price_history(tmp_path: Path, endpoint: str,
                                                              ec2: Any) -> None:
    config = gbp_config(tmp_path, endpoint, ec2, f"    exchange_rates: {{USD: {RATE}}}\n")
    vcyclectl(config, "reconcile")
    records = StateDir(tmp_path / "state").space(SPACE).records()
    assert len(records) == 4  # 8 processors of 2-vCPU spot m5.large
    usd = moto_spot_price_usd(ec2)
    for rec in records.values():
        assert rec.spot
        assert rec.price_per_hour == pytest.approx(usd * RATE, rel=1e-9)  # GBP, not USD

    rows = json.loads(vcyclectl(config, "budget", "-o", "json").out)
    total = next(r for r in rows if r["space"] == "*")
    assert total["currency"] == "GBP" and total["amount"] == 1000
    usd_view = total["in_other_currencies"]["USD"]
    assert usd_view["rate"] == RATE and usd_view["amount"] == pytest.approx(1000 / RATE, abs=0.01)
    assert total["burn_rate_per_hour"] == pytest.approx(4 * usd * RATE, abs=1e-4)
    table = vcyclectl(config, "budget", "-o", "tsv").out.splitlines()
    header = table[0].split("\t")
    assert "other_currency" in header
    first = dict(zip(header, table[1].split("\t"), strict=True))
    assert "USD spent (at 0.79 GBP/USD)" in first["other_currency"]


def test_rates_from_a_file(tmp_path: Path, endpoint: str, ec2: Any) -> None:
    (tmp_path / "rates.yaml").write_text("USD: 0.5\nEUR: 0.86\n")
    config = gbp_config(tmp_path, endpoint, ec2, "    exchange_rates_file: rates.yaml\n")
    vcyclectl(config, "reconcile")
    usd = moto_spot_price_usd(ec2)
    for rec in StateDir(tmp_path / "state").space(SPACE).records().values():
        assert rec.price_per_hour == pytest.approx(usd * 0.5, rel=1e-9)


def test_a_budget_over_usd_prices_without_a_rate_is_a_config_error(tmp_path: Path,
                                                                    endpoint: str,
                                                                    ec2: Any) -> None:
    config = gbp_config(tmp_path, endpoint, ec2, "")
    run = run_process("--config", config, "config", "check",
                      env={k: v for k, v in os.environ.items() if k not in REMOVED_AWS_ENV})
    assert run.code == 2
    assert f"{config}:" in run.err and "budgets.commercial.exchange_rates" in run.err
    assert "USD" in run.err and "GBP" in run.err
    assert run_process("--config", config, "reconcile").code == 2
    assert not (tmp_path / "state" / "spaces" / SPACE / "machines").exists() or \
        not StateDir(tmp_path / "state").space(SPACE).records()
