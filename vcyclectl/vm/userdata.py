"""`##user_data_…##` templates, kept from Vac/Vcycle so existing VM definitions work unchanged.

Checked at `config check` (an unknown `##user_data_option_X##` is an error there, not a
broken VM) and rendered per machine at create time.
"""

from __future__ import annotations

import re
import socket
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from vcyclectl import __version__
from vcyclectl.config import Config, Machinetype, Space
from vcyclectl.errors import ConfigError

PLACEHOLDER = re.compile(r"##user_data_([A-Za-z0-9_]+)##")
FIXED = ("space", "machinetype", "machine_hostname", "manager_version", "manager_hostname",
         "machinefeatures_url", "jobfeatures_url", "joboutputs_url", "machine_token")


@dataclass(frozen=True)
class Template:
    """A machinetype's template with its option and file values already read."""

    text: str
    values: Mapping[str, str]
    source: str
    #: The site's certificate and key when the machinetype asks for an X.509 proxy
    #: (`x509_cert` and `x509_key` in user_data_files; see vcyclectl.vm.x509proxy).
    x509: Any = None


def load_template(space: Space, mt: Machinetype) -> Template | None:
    """Read the template and every `user_data_files` entry; check every placeholder."""
    if mt.user_data is None:
        return None
    key = f"spaces.{space.name}.machinetypes.{mt.name}.user_data"
    text = _read(mt.user_data, key)
    values = dict(mt.user_data_options)
    for option, path in mt.user_data_files.items():
        values[option] = _read(path, f"spaces.{space.name}.machinetypes.{mt.name}."
                                     f"user_data_files.{option}")
    x509 = _x509_credential(space, mt, values)
    for number, line in enumerate(text.splitlines(), start=1):
        for match in PLACEHOLDER.finditer(line):
            word = match.group(1)
            if word in FIXED:
                continue
            if word.startswith("option_") and word[len("option_"):] in values:
                continue
            what = ("no such option in user_data_options or user_data_files"
                    if word.startswith("option_") else "unknown substitution")
            raise ConfigError(f"##user_data_{word}##: {what}", file=mt.user_data, line=number,
                              key=key)
    return Template(text=text, values=values, source=mt.user_data, x509=x509)


def _x509_credential(space: Space, mt: Machinetype, values: dict[str, str]) -> Any:
    """Vcycle's proxy option: with `x509_cert` and `x509_key` files, `x509_proxy` exists.

    The key itself is taken out of the substitutions: it must never reach a VM.
    """
    from vcyclectl.vm import x509proxy

    if x509proxy.KEY_OPTION not in values or x509proxy.CERT_OPTION not in values:
        return None
    key = values.pop(x509proxy.KEY_OPTION)
    try:
        credential = x509proxy.load_credential(values[x509proxy.CERT_OPTION], key)
    except x509proxy.ProxyError as exc:
        raise ConfigError(str(exc), key=f"spaces.{space.name}.machinetypes.{mt.name}."
                                        f"user_data_files.{x509proxy.KEY_OPTION}")
    values[x509proxy.PROXY_OPTION] = ""  # made per machine at render time
    return credential


def _read(path: str, key: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"file not found: {path}", key=key)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", key=key)


def render(template: Template | None, *, config: Config, space: Space, mt: Machinetype,
           machine: str, token: str = "") -> str:
    """The user_data one machine boots with."""
    if template is None:
        return ""
    base = (config.feedback_url or "").rstrip("/")
    machine_url = f"{base}/machines/{space.name}/{machine}" if base else ""
    fixed = {
        "space": space.name,
        "machinetype": mt.name,
        "machine_hostname": machine,
        "manager_version": f"vcyclectl {__version__}",
        "manager_hostname": socket.gethostname(),
        "machinefeatures_url": f"{machine_url}/machinefeatures" if base else "",
        "jobfeatures_url": f"{machine_url}/jobfeatures" if base else "",
        "joboutputs_url": f"{machine_url}/joboutputs" if base else "",
        "machine_token": token,
    }

    values = dict(template.values)
    if template.x509 is not None and "##user_data_option_x509_proxy##" in template.text:
        from vcyclectl.vm import x509proxy

        try:
            values[x509proxy.PROXY_OPTION] = x509proxy.make_proxy(template.x509,
                                                                  mt.max_wallclock_seconds)
        except x509proxy.ProxyError as exc:
            raise ConfigError(str(exc), key=f"spaces.{space.name}.machinetypes.{mt.name}."
                                            f"user_data_files.{x509proxy.CERT_OPTION}")

    def substitute(match: re.Match[str]) -> str:
        word = match.group(1)
        if word in fixed:
            return fixed[word]
        return values.get(word[len("option_"):], match.group(0))

    return "".join(_substitute_line(line, substitute)
                   for line in template.text.splitlines(keepends=True))


_ALONE = re.compile(r"([ \t]+)##user_data_([A-Za-z0-9_]+)##([ \t]*)(\r?\n?)")


def _substitute_line(line: str, substitute: "typing.Callable[[re.Match[str]], str]") -> str:
    """Substitute one template line. A multi-line value that stands alone on an indented
    line (a YAML block scalar in a #cloud-config template: a PEM proxy, a token file) keeps
    that indentation on every line, so the YAML stays valid; elsewhere, as in Vac/Vcycle's
    shell templates, values go in exactly as they are."""
    alone = _ALONE.fullmatch(line)
    if alone:
        match = PLACEHOLDER.search(line)
        assert match is not None
        value = substitute(match)
        if "\n" in value:
            indent = alone.group(1)
            body = value.rstrip("\n").split("\n")
            return "".join(indent + part + "\n" for part in body)
    return PLACEHOLDER.sub(substitute, line)


def check_all(config: Config) -> int:
    """Load every template of every space (for `config check`); the number checked."""
    checked = 0
    for space in config.spaces.values():
        for mt in space.machinetypes.values():
            if load_template(space, mt) is not None:
                checked += 1
    return checked
