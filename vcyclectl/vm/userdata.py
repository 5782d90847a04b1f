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
from vcyclectl.config.yamlsource import Origin
from vcyclectl.errors import ConfigError, ConfigErrors

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
    """Read the template and every `user_data_files` entry; check every placeholder.

    Raises every problem found at once (`ConfigErrors`), so `config check` lists them all.
    """
    if mt.user_data is None:
        return None
    template, errors = _load_template(space, mt, mt.user_data)
    ConfigErrors.raise_if_any(errors)
    return template


def _load_template(space: Space, mt: Machinetype,
                   source: str) -> tuple[Template, list[ConfigError]]:
    """The template as far as it could be read, and every problem found on the way
    (only an unreadable template file itself is raised: there is nothing to go on)."""
    key = f"spaces.{space.name}.machinetypes.{mt.name}.user_data"
    text = _read(source, key, mt.origins.get("user_data"))
    values = dict(mt.user_data_options)
    errors: list[ConfigError] = []
    for option, path in mt.user_data_files.items():
        try:
            values[option] = _read(path, f"spaces.{space.name}.machinetypes.{mt.name}."
                                         f"user_data_files.{option}",
                                   mt.origins.get(f"user_data_files.{option}"))
        except ConfigError as exc:
            errors.append(exc)
            values[option] = ""
    x509 = None
    try:
        x509 = _x509_credential(space, mt, values)
    except ConfigError as exc:
        errors.append(exc)
    for number, line in enumerate(text.splitlines(), start=1):
        for match in PLACEHOLDER.finditer(line):
            word = match.group(1)
            if word in FIXED:
                continue
            if word.startswith("option_") and word[len("option_"):] in values:
                continue
            what = ("no such option in user_data_options or user_data_files"
                    if word.startswith("option_") else "unknown substitution")
            errors.append(ConfigError(f"##user_data_{word}##: {what}", file=source,
                                      line=number, key=key))
    return Template(text=text, values=values, source=source, x509=x509), errors


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
                                        f"user_data_files.{x509proxy.KEY_OPTION}") from None
    values[x509proxy.PROXY_OPTION] = ""  # made per machine at render time
    return credential


def _read(path: str, key: str, where: Origin | None = None) -> str:
    """A file the config names; an error names the config file and line that named it."""
    file, line = (where.file, where.line) if where is not None else (None, None)
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"file not found: {path}", file=file, line=line, key=key) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", file=file, line=line,
                          key=key) from None


def render(template: Template | None, *, config: Config, space: Space, mt: Machinetype,
           machine: str, token: str = "") -> str:
    """The user_data one machine boots with."""
    if template is None:
        return ""
    values = dict(template.values)
    if template.x509 is not None and "##user_data_option_x509_proxy##" in template.text:
        from vcyclectl.vm import x509proxy

        try:
            values[x509proxy.PROXY_OPTION] = x509proxy.make_proxy(template.x509,
                                                                  mt.max_wallclock_seconds)
        except x509proxy.ProxyError as exc:
            raise ConfigError(str(exc), key=f"spaces.{space.name}.machinetypes.{mt.name}."
                                            f"user_data_files.{x509proxy.CERT_OPTION}") from None
    fixed = _fixed_values(config, space, mt, machine, token)
    return "".join(_render_lines(template.text, fixed, values))


def _fixed_values(config: Config, space: Space, mt: Machinetype, machine: str,
                  token: str) -> dict[str, str]:
    """The `##user_data_X##` values that come from vcyclectl rather than the config."""
    base = (config.feedback_url or "").rstrip("/")
    machine_url = f"{base}/machines/{space.name}/{machine}" if base else ""
    return {
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


def _render_lines(text: str, fixed: Mapping[str, str], values: Mapping[str, str]) -> list[str]:
    """The rendered text of each template line, in order (one entry per template line, so
    a problem in the output can be traced back to the template's own line number)."""

    def substitute(match: re.Match[str]) -> str:
        word = match.group(1)
        if word in fixed:
            return fixed[word]
        return values.get(word[len("option_"):], match.group(0))

    return [_substitute_line(line, substitute) for line in text.splitlines(keepends=True)]


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
    """Load every template of every space (for `config check`); the number checked.

    Every problem of every template is collected and raised together (`ConfigErrors`).
    """
    checked = 0
    errors: list[ConfigError] = []
    for space in config.spaces.values():
        for mt in space.machinetypes.values():
            if mt.user_data is None:
                continue
            try:
                template, problems = _load_template(space, mt, mt.user_data)
            except ConfigError as exc:
                errors.append(exc)
                continue
            checked += 1
            errors.extend(problems)
            errors.extend(cloud_config_problems(template, config=config, space=space, mt=mt))
    ConfigErrors.raise_if_any(errors)
    return checked


CLOUD_CONFIG_HEADER = "#cloud-config"
#: Stands in for the per-machine X.509 proxy at check time: several lines, like the PEM.
_PLACEHOLDER_PROXY = ("-----BEGIN CERTIFICATE-----\nplaceholder\n-----END CERTIFICATE-----\n")


def cloud_config_problems(template: Template, *, config: Config, space: Space,
                          mt: Machinetype) -> list[ConfigError]:
    """A `#cloud-config` template, rendered for a placeholder machine, must be a YAML mapping.

    Why render first: a value substituted into the YAML (a password with `: ` in it, a
    multi-line file) can break a template that looks fine; cloud-init then ignores the
    whole user_data and every VM boots idle. Caught here, it is a config error instead.
    """
    lines = template.text.splitlines()
    if not lines or lines[0].strip() != CLOUD_CONFIG_HEADER:
        return []
    import yaml

    values = dict(template.values)
    if template.x509 is not None:
        from vcyclectl.vm import x509proxy

        values[x509proxy.PROXY_OPTION] = _PLACEHOLDER_PROXY
    fixed = _fixed_values(config, space, mt, f"vcyclectl-{space.slug}-{mt.name}-placeholdr",
                          "0" * 64)
    chunks = _render_lines(template.text, fixed, values)
    template_line = [number for number, chunk in enumerate(chunks, start=1)
                     for _ in range(max(1, len(chunk.splitlines())))]
    key = f"spaces.{space.name}.machinetypes.{mt.name}.user_data"
    try:
        data = yaml.safe_load("".join(chunks))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = template_line[min(mark.line, len(template_line) - 1)] if mark else None
        return [ConfigError(f"#cloud-config is not valid YAML once rendered: "
                            f"{exc.problem or exc.context}", file=template.source, line=line,
                            key=key)]
    except yaml.YAMLError as exc:
        return [ConfigError(f"#cloud-config is not valid YAML once rendered: {exc}",
                            file=template.source, key=key)]
    if data is not None and not isinstance(data, dict):  # None: comments only, a no-op
        return [ConfigError("#cloud-config must be a YAML mapping of cloud-init modules",
                            file=template.source, line=1, key=key)]
    return []
