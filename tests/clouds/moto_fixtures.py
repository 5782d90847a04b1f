"""The pytest fixtures every EC2 test module shares: one real moto server per module that
asks for it (`endpoint`) and, per test, a boto3 client on it with dummy credentials in the
environment and moto's state reset (`ec2`), to arrange and to check.

A plugin of the root conftest (`pytest_plugins`), so tests in any folder just name them;
boto3 is imported only when a test asks for `ec2`, and moto starts only for a module that
asks for `endpoint`, so other tests pay nothing. `moto_server` itself stays free of pytest,
since the benchmarks use it too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from moto_server import dummy_aws_credentials, moto_server, reset

REGION = "us-east-1"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def ec2(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    import boto3

    dummy_aws_credentials(monkeypatch)
    reset(endpoint)
    return boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)
