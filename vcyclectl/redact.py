"""What must never be printed: values whose names mean secrets, and credentials inside URLs
(user:password@, a token in a query string). One home, so `config show`, every log line
(ours and the SDKs'), error messages and the importer all hide the same things."""

from __future__ import annotations

import re

REDACTED = "***"

#: Option and key names that hold secrets: Vcycle's and the VM definitions' habits
#: (`condor_pass`, `auth`, `passphrase`, `…_token`, `…_key`) as much as the obvious ones.
_SECRET_NAME = re.compile(
    r"(secret|password|passwd|passphrase|pass$|_pass|pwd|token|private|credential|"
    r"cookie|auth|key$|_key_|signature)", re.I)
#: scheme://user:password@host → scheme://user:***@host (and scheme://token@host).
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/\s:@]+)"
                       r"(?::(?P<password>[^/\s@]*))?@")
#: ?token=… / &password=… in a URL or an HTTP request line.
_QUERY_SECRET = re.compile(r"(?P<lead>[?&;](?P<name>[^=&\s#]+)=)(?P<value>[^&\s#\"']*)")


def looks_secret(name: str) -> bool:
    """Whether an option or key name says its value is a secret."""
    return bool(_SECRET_NAME.search(name))


def redact_text(text: str) -> str:
    """`text` with URL credentials and secret-named query values replaced by ***."""
    if "://" in text:
        text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@"
                             if m["password"] is not None else f"{m['scheme']}{REDACTED}@",
                             text)
    if "=" in text and ("?" in text or "&" in text or ";" in text):
        text = _QUERY_SECRET.sub(lambda m: m["lead"] + REDACTED if looks_secret(m["name"])
                                 else m.group(0), text)
    return text
