"""RFC 3820 X.509 proxy certificates for VMs that authenticate as the site (Vcycle's option).

Grid job agents (DIRAC pilots, GlideinWMS glideins) that need an X.509 credential get a
short-lived proxy made from a certificate and key the site keeps; the long-lived key never
leaves the host. The proxy lives no longer than the machine may (`max_wallclock_seconds`),
nor than the certificate it is signed by, so a leaked user_data is worth little.

A machinetype asks for it by naming `x509_cert` and `x509_key` in `user_data_files`; its
template then uses `##user_data_option_x509_proxy##` (the proxy certificate, its new private
key and the signing certificate chain, PEM, in the order grid tools read).

`cryptography` is imported inside the functions: `vcyclectl list` never pays for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

#: RFC 3820 proxyCertInfo extension and its "inherit all" policy language.
PROXY_CERT_INFO_OID = "1.3.6.1.5.5.7.1.14"
INHERIT_ALL_OID = "1.3.6.1.5.5.7.21.1"
#: Clock skew allowed for between this host and the VM / the services it talks to.
BACKDATE_SECONDS = 300
KEY_BITS = 2048

CERT_OPTION = "x509_cert"
KEY_OPTION = "x509_key"
PROXY_OPTION = "x509_proxy"


class ProxyError(ValueError):
    """The certificate or key cannot make a proxy (unreadable, mismatched, expired)."""


@dataclass(frozen=True)
class Credential:
    """The signing certificate chain and its key, loaded once per pass."""

    chain: tuple[Any, ...]
    key: Any


def load_credential(cert_pem: str | bytes, key_pem: str | bytes,
                    password: bytes | None = None) -> Credential:
    """Parse a PEM certificate (chain) and its private key, and check that they belong together."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert_bytes = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
    key_bytes = key_pem.encode() if isinstance(key_pem, str) else key_pem
    try:
        chain = tuple(x509.load_pem_x509_certificates(cert_bytes))
    except ValueError as exc:
        raise ProxyError(f"x509_cert: not a PEM certificate ({exc})") from None
    try:
        key = serialization.load_pem_private_key(key_bytes, password=password)
    except (ValueError, TypeError) as exc:
        raise ProxyError(f"x509_key: not an unencrypted PEM private key ({exc})") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if chain[0].public_key().public_bytes(serialization.Encoding.PEM, spki) != \
            key.public_key().public_bytes(serialization.Encoding.PEM, spki):
        raise ProxyError("x509_key does not match the first certificate of x509_cert")
    return Credential(chain=chain, key=key)


def make_proxy(credential: Credential, lifetime_seconds: float, *,
               now: float | None = None) -> str:
    """A new RFC 3820 proxy (cert + its key + the chain, PEM) valid for `lifetime_seconds`.

    The end is capped at the signing certificate's own end; a certificate already expired is
    an error rather than a proxy that every service would refuse.
    """
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ed448, ed25519, rsa
    from cryptography.x509.oid import NameOID

    issuer = credential.chain[0]
    now = time.time() if now is None else now
    start = datetime.datetime.fromtimestamp(now - BACKDATE_SECONDS, datetime.timezone.utc)
    end = datetime.datetime.fromtimestamp(now + lifetime_seconds, datetime.timezone.utc)
    issuer_end = issuer.not_valid_after_utc
    if issuer_end <= datetime.datetime.fromtimestamp(now, datetime.timezone.utc):
        raise ProxyError(f"x509_cert expired at {issuer_end.isoformat()}")
    end = min(end, issuer_end)
    proxy_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    serial = x509.random_serial_number() >> 96  # RFC 3820: the CN is the serial, kept short
    subject = x509.Name(list(issuer.subject.rdns) + [
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, str(serial))])])
    # ProxyCertInfo ::= SEQUENCE { ProxyPolicy ::= SEQUENCE { policyLanguage OID } }
    # (no path length limit), DER-encoded by hand: cryptography has no type for it.
    policy_oid = _der_oid(INHERIT_ALL_OID)
    proxy_cert_info = _der_sequence(_der_sequence(policy_oid))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(proxy_key.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=True, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(PROXY_CERT_INFO_OID),
                                                  proxy_cert_info), critical=True)
    )
    signing_key = credential.key
    # EdDSA keys sign without a separate hash; RSA and EC keys sign SHA-256.
    algorithm = None if isinstance(signing_key, (ed25519.Ed25519PrivateKey,
                                                 ed448.Ed448PrivateKey)) else hashes.SHA256()
    proxy = builder.sign(signing_key, algorithm)
    pem = serialization.Encoding.PEM
    parts = [proxy.public_bytes(pem),
             proxy_key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                                     serialization.NoEncryption())]
    parts.extend(c.public_bytes(pem) for c in credential.chain)
    return b"".join(parts).decode()


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_sequence(content: bytes) -> bytes:
    return b"\x30" + _der_length(len(content)) + content


def _der_oid(dotted: str) -> bytes:
    numbers = [int(p) for p in dotted.split(".")]
    body = bytes([40 * numbers[0] + numbers[1]])
    for n in numbers[2:]:
        chunk = [n & 0x7F]
        n >>= 7
        while n:
            chunk.append(0x80 | (n & 0x7F))
            n >>= 7
        body += bytes(reversed(chunk))
    return b"\x06" + _der_length(len(body)) + body
