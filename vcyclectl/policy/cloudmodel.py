"""How `schedule` and `simulate` model a space: its flavors with prices and machines' lives,
from the configuration alone (a plan must work offline, without asking any cloud).

`local` spaces are their own model (the local cloud's rules). EC2 and GCE spaces are
modelled the same way, from what their blocks say:

- **Flavors**: the configured `instance_types` / `machine_types` (space block, then
  machinetype overrides), their vCPUs from the type's name (`c5.4xlarge` is 16,
  `n2-standard-8` is 8; `instance_vcpus`), and the price `price_per_hour` gives, in the
  block's `currency` (else the budget's) and converted like a pass converts it. A spot block
  with no price uses its `max_price` (the most it can cost). A space in a budget whose
  flavor has no price cannot be planned: that is refused (exit 2) with the type and the key
  to set, never planned as free.
- **Lives**: a machine boots in `MODEL_BOOT_SECONDS`, then works until about its
  machinetype's `max_wallclock_seconds` (the reconciler ends it there), or finds no work
  when its community has none; a spot machine is pre-empted with the block's
  `preemption_probability` (default `DEFAULT_PREEMPTION` for spot), at a random moment.
  The space's `processors_limit` stands in for the tenancy's quota.

OpenStack spaces carry no prices and stay unmodelled (left out, with a warning).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from vcyclectl.clouds.local.options import LocalOptions
from vcyclectl.config import Config, Space
from vcyclectl.core.model import Flavor
from vcyclectl.core.provisioning import budget_of
from vcyclectl.errors import UsageError

MODELLED_CLOUDS = ("local", "ec2", "gce")
#: How long a real-cloud VM takes to boot, in the model.
MODEL_BOOT_SECONDS = 180.0
#: A spot VM's chance of being pre-empted in its life when its block says nothing: EC2's
#: Spot Instance Advisor puts most types under 5% interruptions a month.
DEFAULT_PREEMPTION = 0.05

_EC2_SIZE = re.compile(r"(?P<n>\d*)xlarge")
#: vCPUs of the sizes below `large`: burstable families differ from the rest.
_EC2_SMALL = {"nano": 1, "micro": 1, "small": 1, "medium": 1}
_EC2_BURSTABLE_SMALL = {"nano": 2, "micro": 2, "small": 2, "medium": 2}
_EC2_T2_SMALL = {"nano": 1, "micro": 1, "small": 1, "medium": 2}
_GCE_SHARED = {"e2-micro": 2, "e2-small": 2, "e2-medium": 2, "f1-micro": 1, "g1-small": 1}
_GCE_CUSTOM = re.compile(r"(?:[a-z0-9]+-)?custom-(?P<n>\d+)-\d+(?:-ext)?")


def instance_vcpus(cloud: str, name: str) -> int | None:
    """vCPUs of an EC2 instance type or GCE machine type from its name; None when the
    name does not say (EC2 `.metal`, unknown shapes)."""
    if cloud == "gce":
        if name in _GCE_SHARED:
            return _GCE_SHARED[name]
        custom = _GCE_CUSTOM.fullmatch(name)
        if custom:
            return int(custom["n"])
        last = name.rsplit("-", 1)[-1]
        return int(last) if last.isdigit() and "-" in name else None
    family, _, size = name.partition(".")
    if size == "large":
        return 2
    match = _EC2_SIZE.fullmatch(size)
    if match:
        return 4 * int(match["n"] or 1)
    if family == "t2":
        return _EC2_T2_SMALL.get(size)
    if family.startswith("t"):
        return _EC2_BURSTABLE_SMALL.get(size)
    return _EC2_SMALL.get(size)


@dataclass(frozen=True)
class SpaceModel:
    """What the simulator needs of one space: the life rules and the priced flavors."""

    options: LocalOptions
    flavors: tuple[Flavor, ...]
    per_machinetype: dict[str, LocalOptions] = field(default_factory=dict)


def space_model(config: Config, space: Space) -> SpaceModel | None:
    """The model of `space`, None when its cloud has none (OpenStack); raises UsageError
    when a budgeted space's price is not known."""
    if space.cloud == "local":
        options = space.cloud_options if isinstance(space.cloud_options, LocalOptions) \
            else LocalOptions()
        per_mt = {n: mt.cloud_options for n, mt in space.machinetypes.items()
                  if isinstance(mt.cloud_options, LocalOptions)}
        return SpaceModel(options, _local_flavors(config, space, options), per_mt)
    if space.cloud not in ("ec2", "gce"):
        return None
    blocks = [space.cloud_options, *(mt.cloud_options for mt in space.machinetypes.values())]
    flavors = _cloud_flavors(config, space, [b for b in blocks if b is not None])
    base = _life_rules(space, space.cloud_options, max(
        (mt.max_wallclock_seconds for mt in space.machinetypes.values()), default=86400.0))
    per_mt = {n: _life_rules(space, mt.cloud_options or space.cloud_options,
                             mt.max_wallclock_seconds)
              for n, mt in space.machinetypes.items()}
    return SpaceModel(base, flavors, per_mt)


def _life_rules(space: Space, block: Any, wallclock: float) -> LocalOptions:
    spot = bool(getattr(block, "spot", False))
    preemption = getattr(block, "preemption_probability", None)
    return LocalOptions(
        processors=space.processors_limit, boot_seconds=MODEL_BOOT_SECONDS,
        job_seconds=wallclock, no_work_probability=0.0, failure_probability=0.0,
        heartbeat=True, preemption_probability=(
            preemption if preemption is not None else DEFAULT_PREEMPTION if spot else 0.0))


def _cloud_flavors(config: Config, space: Space, blocks: list[Any]) -> tuple[Flavor, ...]:
    """EC2/GCE flavors as the drivers make them: the types of every block in order, spot
    when a spot block names it, the first configured `price_per_hour` of each type."""
    budget = budget_of(config, space.name)
    key = "instance_types" if space.cloud == "ec2" else "machine_types"
    names: list[str] = []
    spot: dict[str, Any] = {}
    prices: dict[str, tuple[float, str | None]] = {}
    for block in blocks:
        for name in getattr(block, key, []):
            if name not in names:
                names.append(name)
            if getattr(block, "spot", False):
                spot.setdefault(name, block)
        for name, price in getattr(block, "price_per_hour", {}).items():
            prices.setdefault(name, (price, getattr(block, "currency", None)))
    found: list[Flavor] = []
    for name in names:
        vcpus = instance_vcpus(space.cloud, name)
        if vcpus is None:
            raise UsageError(
                f"space {space.name}: cannot tell how many vCPUs {space.cloud} type "
                f"{name!r} has without asking the cloud, so it cannot be planned offline; "
                f"use a type whose name gives its size, or leave it out of {key}")
        price, currency = prices.get(name, (None, None))
        max_price = getattr(spot.get(name), "max_price", None)
        if price is None and max_price is not None:
            price, currency = max_price, "USD"  # the most a spot machine can cost
        if price is None and budget is not None:
            raise UsageError(
                f"space {space.name} is in budget {budget.name} but {space.cloud} type "
                f"{name!r} has no price in the configuration, and a plan does not ask "
                f"the cloud: set spaces.{space.name}.{space.cloud}.price_per_hour: "
                f"{{{name}: PRICE}} (the {'expected spot' if name in spot else 'on-demand'} "
                f"price per hour). Nothing was planned")
        found.append(_priced(budget, Flavor(name, vcpus, None, price, name in spot, currency)))
    return tuple(found)


def _local_flavors(config: Config, space: Space, options: LocalOptions) -> tuple[Flavor, ...]:
    """What the local cloud offers (as `LocalCloud.flavors`), in the budget's currency."""
    budget = budget_of(config, space.name)
    if options.flavors:
        return tuple(_priced(budget, Flavor(f.name, f.processors, f.memory_mb,
                                            f.price_per_hour, f.spot, options.currency))
                     for f in options.flavors)
    n = options.processors_per_machine
    return (Flavor(f"local-{n}", n),)


def _priced(budget: Any, flavor: Flavor) -> Flavor:
    if budget is None:
        return flavor
    from vcyclectl.policy.currency import convert

    return convert(flavor, budget)


def unmodelled_spaces(config: Config) -> list[str]:
    """Spaces the simulator has no model for (their cloud carries no prices)."""
    return [f"{name} ({space.cloud})" for name, space in config.spaces.items()
            if space.cloud not in MODELLED_CLOUDS]
