"""Offline models of EC2 and GCE spaces (sizes from type names, configured prices converted
to the budget's currency, spot pre-emption), and the currency rules of a budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from vcyclectl.clouds.ec2.options import Ec2Options
from vcyclectl.clouds.gce.options import GceOptions
from vcyclectl.config import Budget, Config, Machinetype, Space
from vcyclectl.config.policyload import price_currencies
from vcyclectl.core.model import Flavor
from vcyclectl.errors import UsageError
from vcyclectl.policy.cloudmodel import DEFAULT_PREEMPTION, instance_vcpus, space_model
from vcyclectl.policy.currency import convert, in_budget_currency


@pytest.mark.parametrize(("cloud", "name", "vcpus"), [
    ("ec2", "m5.large", 2), ("ec2", "c5.xlarge", 4), ("ec2", "c5.4xlarge", 16),
    ("ec2", "c6i.32xlarge", 128), ("ec2", "t3.medium", 2), ("ec2", "t2.micro", 1),
    ("ec2", "m6g.medium", 1), ("ec2", "c5.metal", None), ("ec2", "weird", None),
    ("gce", "n2-standard-8", 8), ("gce", "c2d-highcpu-112", 112), ("gce", "e2-medium", 2),
    ("gce", "n2-custom-6-20480", 6), ("gce", "f1-micro", 1), ("gce", "mystery", None)])
def test_sizes_from_type_names(cloud: str, name: str, vcpus: int | None) -> None:
    assert instance_vcpus(cloud, name) == vcpus


def budget(**kw: object) -> Budget:
    return Budget(amount=1000.0, start="2027-01-01", end="2027-02-01", spaces=("aws",),
                  name="b", currency="GBP", **kw)  # type: ignore[arg-type]


def ec2_config(tmp_path: Path, options: Ec2Options, **budget_kw: object) -> Config:
    space = Space(name="aws", cloud="ec2", processors_limit=64, cloud_options=options,
                  machinetypes={"a": Machinetype(name="a", max_wallclock_seconds=7200.0)})
    return Config(state_dir=tmp_path, spaces={"aws": space},
                  budgets={"b": budget(**budget_kw)})


def test_ec2_model_prices_in_the_budget_currency_and_preempts_spot(tmp_path: Path) -> None:
    options = Ec2Options(instance_types=["c5.4xlarge", "c5a.4xlarge"], spot=True,
                         price_per_hour={"c5.4xlarge": 0.5}, max_price=0.4, currency="USD")
    cfg = ec2_config(tmp_path, options, exchange_rates={"USD": 0.8})
    model = space_model(cfg, cfg.spaces["aws"])
    assert model is not None
    first, second = model.flavors
    assert (first.name, first.processors, first.spot) == ("c5.4xlarge", 16, True)
    assert first.price_per_hour == pytest.approx(0.4) and first.currency == "GBP"
    assert second.price_per_hour == pytest.approx(0.32)  # max_price, USD -> GBP
    assert model.per_machinetype["a"].job_seconds == 7200.0
    assert model.options.preemption_probability == DEFAULT_PREEMPTION
    assert model.options.processors == 64


def test_a_budgeted_type_without_a_price_is_refused(tmp_path: Path) -> None:
    cfg = ec2_config(tmp_path, Ec2Options(instance_types=["m5.large"]))
    with pytest.raises(UsageError, match=r"spaces\.aws\.ec2\.price_per_hour"):
        space_model(cfg, cfg.spaces["aws"])


def test_gce_spot_uses_its_preemption_probability(tmp_path: Path) -> None:
    options = GceOptions(project="p", zones=["europe-west2-a"], machine_types=["n2-standard-8"],
                         provisioning_model="SPOT", price_per_hour={"n2-standard-8": 0.1},
                         preemption_probability=0.2)
    space = Space(name="g", cloud="gce", processors_limit=64, cloud_options=options,
                  machinetypes={"a": Machinetype(name="a")})
    model = space_model(Config(state_dir=tmp_path, spaces={"g": space}), space)
    assert model is not None and model.flavors[0].processors == 8 and model.flavors[0].spot
    assert model.options.preemption_probability == 0.2


def test_currencies_a_space_prices_in() -> None:
    spot = Space(name="aws", cloud="ec2", cloud_options=Ec2Options(spot=True))
    assert set(price_currencies(spot, "GBP")) == {"USD"}
    assert price_currencies(spot, "USD") == {}
    declared = Space(name="aws", cloud="ec2", cloud_options=Ec2Options(currency="EUR"))
    assert set(price_currencies(declared, "GBP")) == {"EUR"}


def test_conversion_and_unknown_rates(tmp_path: Path) -> None:
    b = budget(exchange_rates={"USD": 0.79})
    assert convert(Flavor("x", 2, price_per_hour=1.0, currency="USD"), b).price_per_hour == \
        pytest.approx(0.79)
    assert convert(Flavor("x", 2, price_per_hour=1.0), b).price_per_hour == 1.0
    unknown = convert(Flavor("x", 2, price_per_hour=1.0, currency="JPY"), b)
    assert unknown.price_per_hour is None  # never guessed: the planner will not use it
    cfg = ec2_config(tmp_path, Ec2Options(), exchange_rates={"USD": 0.5})
    assert in_budget_currency(cfg, "aws", [Flavor("x", 2, price_per_hour=2.0,
                                                  currency="USD")])[0].price_per_hour == 1.0
    assert in_budget_currency(cfg, "elsewhere", [Flavor("x", 2, price_per_hour=2.0,
                                                        currency="USD")])[0].price_per_hour == 2.0


def test_status_page_budget_shows_both_currencies() -> None:
    from vcyclectl.monitoring.page import budget_section

    html = budget_section([{"community": "*", "budget": "b", "space": "*", "spent": 10.0,
                            "amount": 100.0, "currency": "GBP", "burn_rate_per_hour": 1.0,
                            "paced_rate_per_hour": 1.0, "forecast_at_end": 50.0,
                            "in_other_currencies": {"USD": {"rate": 0.79, "spent": 12.66}}}])
    assert "10 GBP<br><small>12.66 USD at 0.79</small>" in html
