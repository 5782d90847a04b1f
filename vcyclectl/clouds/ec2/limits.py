"""EC2's documented API rate limits, as data: which token buckets each request of ours
draws on, and how big they are.

Source: "Request throttling for the Amazon EC2 API" (docs.aws.amazon.com/ec2/latest/
devguide/ec2-api-throttling.html). EC2 throttles per account and region, evaluates each API
action on its own bucket ("Limits are applied to individual API actions, not API action
categories"), sized by the action's category or by its own row in the uncategorized
table; `RunInstances` and `TerminateInstances` also draw one *resource* token per instance
from a second bucket. The numbers below are that page's defaults; an account with raised
limits says so in the ec2 block (`request_bucket_capacity`, `request_bucket_refill`,
`resource_bucket_capacity`, `resource_bucket_refill`, per action).

Imports no SDK: `options` validates action names against this table.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Non-mutating actions (`Describe*`, filtered or paginated): capacity 100, refill 20/s.
NON_MUTATING = (100.0, 20.0)
#: Mutating actions not in another category: capacity 50, refill 5/s.
MUTATING = (50.0, 5.0)

#: Request token buckets of the actions vcyclectl calls: (capacity, refill per second).
#: `DescribeInstances` is listed under "unfiltered and unpaginated" (50, 10) only when sent
#: without a filter and without pagination; ours always filters by tag and pages, so it is
#: an ordinary non-mutating action.
REQUEST_BUCKETS: dict[str, tuple[float, float]] = {
    "DescribeInstances": NON_MUTATING,
    "DescribeImages": NON_MUTATING,
    "DescribeInstanceTypes": NON_MUTATING,
    "DescribeSpotPriceHistory": NON_MUTATING,
    "RunInstances": (5.0, 2.0),
    "TerminateInstances": (100.0, 5.0),
}

#: Resource token buckets (one token per instance launched or terminated).
RESOURCE_BUCKETS: dict[str, tuple[float, float]] = {
    "RunInstances": (1000.0, 2.0),
    "TerminateInstances": (1000.0, 20.0),
}


def request_bucket(action: str) -> tuple[float, float]:
    """The documented request bucket of an action: its own row, else by its category."""
    if action in REQUEST_BUCKETS:
        return REQUEST_BUCKETS[action]
    if action.startswith(("Describe", "List", "Search", "Get")):
        return NON_MUTATING
    return MUTATING


def sized(action: str, documented: tuple[float, float], capacity: Mapping[str, float],
          refill: Mapping[str, float]) -> tuple[float, float]:
    """`documented` with the ec2 block's overrides for `action` applied."""
    return (capacity.get(action, documented[0]), refill.get(action, documented[1]))
