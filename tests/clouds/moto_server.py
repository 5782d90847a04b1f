"""A real moto server on a free loopback port, for the EC2 driver's tests and benchmarks.

Shared by `tests/clouds/test_ec2.py`, `tests/e2e/test_ec2_reconcile.py` and
`benchmarks/bench_ec2.py`; it is not a conftest so that other drivers' tests in this folder
never pay for it. Moto validates AMI ids and instance types here (as real EC2 does), so a
bad `image` or `instance_types` value fails over HTTP like it would on AWS.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: The moto_server script of the interpreter running the tests (the project's venv).
MOTO_SERVER = Path(sys.executable).with_name("moto_server")

#: What the fixtures put in the environment: dummy keys, no config files, no instance role.
DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
REMOVED_AWS_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN",
                   "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2")


def dummy_aws_credentials(monkeypatch: Any) -> None:
    """Put `DUMMY_AWS_ENV` in this process's environment and take `REMOVED_AWS_ENV` out (a
    pytest `monkeypatch`, so the test's end restores both): what every moto test needs."""
    for name in REMOVED_AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in DUMMY_AWS_ENV.items():
        monkeypatch.setenv(name, value)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(url: str, body: bytes = b"") -> bytes:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return bytes(response.read())


def reset(endpoint: str) -> None:
    """Forget every resource (POST /moto-api/reset) and switch IAM auth back off."""
    post(f"{endpoint}/moto-api/reset")
    post(f"{endpoint}/moto-api/reset-auth", b"inf")


def register_image(client: Any, name: str) -> str:
    """An AMI owned by the test account ("self"), as a site registers its worker image."""
    return str(client.register_image(Name=name, Description=name)["ImageId"])


@contextmanager
def moto_server(timeout: float = 30.0) -> Iterator[str]:
    """Start `moto_server -H 127.0.0.1 -p PORT`, wait until it answers, yield its URL."""
    port = free_port()
    # Without its 1,300 default AMIs moto resets in milliseconds; tests register their own.
    env = {**os.environ, "MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION": "true",
           "MOTO_ENABLE_AMI_VALIDATION": "true", "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}
    process = subprocess.Popen([str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                if process.poll() is not None:
                    raise RuntimeError(f"moto_server exited with {process.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not answer in time")
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
