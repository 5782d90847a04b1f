"""Secrets never reach output (issue 22): values whose names mean secrets, credentials in
URLs and tokens in query strings are redacted in `config show`, every log line, error
messages, and the access log's request line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from vcyclectl.feedback.server import ACCESS_LOG_FORMAT
from vcyclectl.redact import looks_secret, redact_text


@pytest.mark.parametrize("name", ["condor_pass", "auth", "passphrase", "password",
                                  "app_credential_secret", "idtoken", "ssh_private",
                                  "x509_key", "api_key"])
def test_secret_names(name: str) -> None:
    assert looks_secret(name)


@pytest.mark.parametrize("name", ["cvmfs_proxy", "site", "hostname", "keyboard_layout",
                                  "pass_count_limit"])
def test_plain_names(name: str) -> None:
    assert not looks_secret(name)


def test_urls_lose_their_credentials_and_secret_query_values() -> None:
    text = ("auth_url https://admin:s3cr3t@keystone.example.org:5000/v3 failed; see "
            "https://x.example.org/p?token=abcd&page=2 and http://tok123@h/")
    out = redact_text(text)
    assert "s3cr3t" not in out and "abcd" not in out and "tok123" not in out
    assert "https://admin:***@keystone.example.org:5000/v3" in out
    assert "?token=***&page=2" in out


def test_config_show_redacts_by_name_and_url(vc: Callable[..., Any],
                                             write_config: Callable[..., Path]) -> None:
    cfg = write_config("""\
        state_dir: state
        spaces:
          a.b:
            cloud: local
            local: {report_url: "http://reporter:hunter2@127.0.0.1:1/"}
            machinetypes:
              m:
                user_data_options: {condor_pass: pw1, auth: pw2, passphrase: pw3,
                                    cvmfs_proxy: "http://squid:3128"}
        """)
    run = vc("--config", cfg, "config", "show", "-o", "json")
    assert run.code == 0, run.err
    for secret in ("pw1", "pw2", "pw3", "hunter2"):
        assert secret not in run.out
    assert "http://squid:3128" in run.out


def test_the_access_log_never_has_a_query_string() -> None:
    assert "%(r)s" not in ACCESS_LOG_FORMAT and "%(q)s" not in ACCESS_LOG_FORMAT
    assert "%(U)s" in ACCESS_LOG_FORMAT
