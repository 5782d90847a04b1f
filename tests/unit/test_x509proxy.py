"""X.509 proxies: RFC 3820 structure, lifetime capped by max_wallclock_seconds and by the
signing certificate, accepted by a real `openssl verify -allow_proxy_certs`, and substituted
per machine as ##user_data_option_x509_proxy## (the site's key never is)."""

from __future__ import annotations

import datetime
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from vcyclectl import config

from vcyclectl.vm import userdata

from vcyclectl.vm import x509proxy
from vcyclectl.errors import ConfigError

NOW = datetime.datetime.now(datetime.timezone.utc)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Grid"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca_and_host(tmp_path: Path, days: int = 365) -> tuple[Path, Path, Path]:
    """A CA and a certificate it signed (the site's robot/host certificate), as PEM files."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (x509.CertificateBuilder().subject_name(_name("Test CA")).issuer_name(_name("Test CA"))
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(NOW - datetime.timedelta(days=1))
          .not_valid_after(NOW + datetime.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (x509.CertificateBuilder().subject_name(_name("robot vcyclectl"))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(2)
            .not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=days))
            .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False,
                                         False), critical=True)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "hostcert.pem").write_bytes(cert.public_bytes(pem))
    (tmp_path / "hostkey.pem").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (tmp_path / "hostkey.pem").chmod(0o600)
    return tmp_path / "ca.pem", tmp_path / "hostcert.pem", tmp_path / "hostkey.pem"


def test_proxy_is_rfc3820_and_lives_max_wallclock(tmp_path: Path) -> None:
    _, cert, key = make_ca_and_host(tmp_path)
    credential = x509proxy.load_credential(cert.read_text(), key.read_text())
    now = NOW.timestamp()
    pem = x509proxy.make_proxy(credential, 86400, now=now)
    certs = x509.load_pem_x509_certificates(pem.encode())
    proxy, issuer = certs[0], certs[1]
    assert proxy.issuer == issuer.subject
    assert list(proxy.subject)[:-1] == list(issuer.subject)
    assert proxy.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[-1].value == \
        str(proxy.serial_number)
    ext = proxy.extensions.get_extension_for_oid(
        x509.ObjectIdentifier(x509proxy.PROXY_CERT_INFO_OID))
    assert ext.critical
    assert int(proxy.not_valid_after_utc.timestamp()) == int(now + 86400)
    proxy_key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert proxy_key.public_key().public_numbers() == proxy.public_key().public_numbers()
    issuer.public_key().verify(proxy.signature, proxy.tbs_certificate_bytes,
                               padding.PKCS1v15(), proxy.signature_hash_algorithm)


def test_openssl_accepts_the_proxy(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is part of every Debian system; install the openssl package"
    ca, cert, key = make_ca_and_host(tmp_path)
    credential = x509proxy.load_credential(cert.read_text(), key.read_text())
    (tmp_path / "proxy.pem").write_text(x509proxy.make_proxy(credential, 3600))
    done = subprocess.run([openssl, "verify", "-allow_proxy_certs", "-CAfile", str(ca),
                           "-untrusted", str(cert), str(tmp_path / "proxy.pem")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout


def test_lifetime_is_capped_by_the_certificate(tmp_path: Path) -> None:
    _, cert, key = make_ca_and_host(tmp_path, days=1)
    credential = x509proxy.load_credential(cert.read_bytes(), key.read_bytes())
    proxy = x509.load_pem_x509_certificates(
        x509proxy.make_proxy(credential, 7 * 86400).encode())[0]
    assert proxy.not_valid_after_utc == credential.chain[0].not_valid_after_utc


def test_mismatched_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, cert, _ = make_ca_and_host(tmp_path / "a")
    _, _, other_key = make_ca_and_host(tmp_path / "b")
    with pytest.raises(x509proxy.ProxyError, match="does not match"):
        x509proxy.load_credential(cert.read_text(), other_key.read_text())


def test_template_gets_a_fresh_proxy_per_machine_and_never_the_key(tmp_path: Path) -> None:
    _, cert, key = make_ca_and_host(tmp_path)
    (tmp_path / "pilot.user_data").write_text(textwrap.dedent("""\
        #cloud-config
        write_files:
          - path: /etc/grid-security/pilot.proxy
            permissions: '0600'
            content: |
              ##user_data_option_x509_proxy##
        """))
    (tmp_path / "vcyclectl.yaml").write_text(textwrap.dedent("""\
        state_dir: state
        spaces:
          s.example.org:
            cloud: local
            machinetypes:
              pilot:
                max_wallclock_seconds: 7200
                user_data: pilot.user_data
                user_data_files: {x509_cert: hostcert.pem, x509_key: hostkey.pem}
        """))
    cfg = config.load(tmp_path / "vcyclectl.yaml")
    space = cfg.spaces["s.example.org"]
    mt = space.machinetypes["pilot"]
    template = userdata.load_template(space, mt)
    assert template is not None and "x509_key" not in template.values
    one = userdata.render(template, config=cfg, space=space, mt=mt, machine="m1")
    two = userdata.render(template, config=cfg, space=space, mt=mt, machine="m2")
    assert "BEGIN CERTIFICATE" in one and one != two
    assert key.read_text().strip().splitlines()[1] not in one
    import yaml

    content = yaml.safe_load(one)["write_files"][0]["content"]  # still valid YAML
    proxy = x509.load_pem_x509_certificates(content.encode())[0]
    lifetime = proxy.not_valid_after_utc - proxy.not_valid_before_utc
    assert lifetime.total_seconds() == 7200 + x509proxy.BACKDATE_SECONDS


def test_key_option_cannot_be_substituted(tmp_path: Path) -> None:
    _, cert, key = make_ca_and_host(tmp_path)
    (tmp_path / "bad.user_data").write_text("#cloud-config\n# ##user_data_option_x509_key##\n")
    (tmp_path / "vcyclectl.yaml").write_text(textwrap.dedent("""\
        state_dir: state
        spaces:
          s.example.org:
            cloud: local
            machinetypes:
              pilot:
                user_data: bad.user_data
                user_data_files: {x509_cert: hostcert.pem, x509_key: hostkey.pem}
        """))
    cfg = config.load(tmp_path / "vcyclectl.yaml")
    with pytest.raises(ConfigError, match="x509_key"):
        userdata.check_all(cfg)
