"""Machine names: the documented scheme, at most 63 characters, distinct across spaces."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from vcyclectl.core.names import machine_name, random_names
from vcyclectl.state.store import valid_machine_name

SLUG = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)
MT = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?", fullmatch=True)


def test_scheme() -> None:
    name = random_names("cumulus-example-org", random.Random(3))("lhcb")
    assert name.startswith("vcyclectl-cumulus-example-org-lhcb-")
    assert len(name.rsplit("-", 1)[1]) == 10


@given(SLUG, MT)
def test_names_fit_gce_and_dns_and_the_state_dir(slug: str, mt: str) -> None:
    name = machine_name(slug, mt, "abcdefghij")
    assert len(name) <= 63
    assert valid_machine_name(name)


def test_long_names_stay_distinct() -> None:
    a = machine_name("a" * 60 + "-one", "mt", "0123456789")
    b = machine_name("a" * 60 + "-two", "mt", "0123456789")
    assert a != b and len(a) <= 63 and len(b) <= 63
