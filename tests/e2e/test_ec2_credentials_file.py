"""The `ec2:` block's `credentials_file` (what `import vcycle` writes): the real `vcyclectl`
command finds the keys in it, relative to the config file, with no
AWS_SHARED_CREDENTIALS_FILE and no keys in its environment, against a moto server; and a
credentials error names the files it looked in."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "clouds"))

from moto_server import (  # noqa: E402
    DUMMY_AWS_ENV, REMOVED_AWS_ENV, register_image,
)
from tests.conftest import run_process  # noqa: E402
from tests.e2e.cloudspace import space_config  # noqa: E402

SPACE = "aws.example.org"
REGION = "us-east-1"
KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def bare_env() -> dict[str, str]:
    """The command's environment: no keys, no profile, credentials file /dev/null."""
    env = {k: v for k, v in os.environ.items() if k not in REMOVED_AWS_ENV and k not in KEYS}
    env.update(AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_CONFIG_FILE=os.devnull,
               AWS_EC2_METADATA_DISABLED="true")
    return env


def make_config(tmp_path: Path, endpoint: str, ec2: Any, credentials: str) -> Path:
    assert register_image(ec2, "cernvm4-lhcb")
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / f"{SPACE}.aws-credentials").write_text(
        f"[vcyclectl-{SPACE}]\naws_access_key_id = {DUMMY_AWS_ENV['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {DUMMY_AWS_ENV['AWS_SECRET_ACCESS_KEY']}\n")
    return space_config(tmp_path, SPACE, "ec2", f"""
        region: {REGION}
        endpoint_url: {endpoint}
        profile: vcyclectl-{SPACE}
        {credentials}
        image: cernvm4-lhcb
        image_owners: [self]
        instance_types: [m5.large]
        max_attempts: 1
        """, "min_processors: 2\nmax_processors: 2\nuser_data: lhcb.user_data\n")


def test_keys_are_found_through_credentials_file_without_the_environment(
        tmp_path: Path, endpoint: str, ec2: Any) -> None:
    config = make_config(tmp_path, endpoint, ec2,
                         f"credentials_file: secrets/{SPACE}.aws-credentials")
    doctor = run_process("--config", config, "doctor", "-o", "json", env=bare_env())
    assert doctor.code == 0, doctor.err + doctor.out
    done = run_process("--config", config, "reconcile", env=bare_env())
    assert done.code == 0, done.err
    assert len(ec2.describe_instances()["Reservations"]) == 4


def test_without_it_the_error_names_where_it_looked(tmp_path: Path, endpoint: str,
                                                    ec2: Any) -> None:
    config = make_config(tmp_path, endpoint, ec2, "")
    doctor = run_process("--config", config, "doctor", "-o", "json", env=bare_env())
    assert doctor.code == 1
    text = json.dumps(json.loads(doctor.out))
    assert f"AWS profile 'vcyclectl-{SPACE}' is not in {os.devnull}" in text


def test_a_profile_missing_from_the_file_names_the_file(tmp_path: Path, endpoint: str,
                                                        ec2: Any) -> None:
    config = make_config(tmp_path, endpoint, ec2,
                         f"credentials_file: secrets/{SPACE}.aws-credentials")
    config.write_text(config.read_text().replace(f"profile: vcyclectl-{SPACE}",
                                                 "profile: someone-else"))
    doctor = run_process("--config", config, "doctor", "-o", "json", env=bare_env())
    assert doctor.code == 1
    path = tmp_path / "secrets" / f"{SPACE}.aws-credentials"
    assert f"'someone-else' is not in {path} (the ec2 block's credentials_file)" in \
        json.dumps(json.loads(doctor.out))
