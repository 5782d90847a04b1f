"""The botocore session the EC2 driver's client is built on: its own module so the one place
that decides where credentials come from is easy to find (docs/clouds/ec2.md)."""

from __future__ import annotations

from typing import Any

from vcyclectl.clouds.ec2.options import Ec2Options


def botocore_session(opts: Ec2Options) -> Any:
    """A botocore session that reads `credentials_file` when the ec2 block names one, as
    AWS_SHARED_CREDENTIALS_FILE would, without the environment having to say so."""
    import botocore.session

    session = botocore.session.Session()
    if opts.credentials_file is not None:
        session.set_config_variable("credentials_file", opts.credentials_file)
    return session
