"""The user_data a new machine of a machinetype would get, for `vcyclectl render`: the same
template, options, files and substitutions `reconcile` uses, so an admin checks a template
without starting a VM.

Secrets are replaced by `***` unless asked for: every `user_data_files` value (that is where
secrets reach VMs: tokens, keys, certificates, docs/machinetypes.md), every option whose
name looks secret, the per-machine X.509 proxy (it holds a private key) and the machine's
bearer token; credentials inside URLs are hidden as in every other output. The names of
what was hidden are returned, so the command can say so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from vcyclectl.config import Config, Machinetype, Space
from vcyclectl.redact import REDACTED, looks_secret, redact_text
from vcyclectl.vm import userdata


@dataclass(frozen=True)
class Preview:
    """The rendered text and the substitutions that were hidden in it."""

    text: str
    hidden: tuple[str, ...]


def preview(config: Config, space: Space, mt: Machinetype, machine: str, *,
            show_secrets: bool = False) -> Preview:
    """Render as `reconcile` would for a machine named `machine`. ConfigError (file, line,
    key) for a template `config check` would refuse."""
    template = userdata.load_template(space, mt)
    if template is None:
        return Preview("", ())
    if show_secrets:
        return Preview(userdata.render(template, config=config, space=space, mt=mt,
                                       machine=machine, token=_token(config.state_dir, machine)),
                       ())
    from vcyclectl.vm import x509proxy

    values = dict(template.values)
    secret = {k for k in values if k in mt.user_data_files or looks_secret(k)}
    if template.x509 is not None:
        secret.add(x509proxy.PROXY_OPTION)
    words = set(userdata.PLACEHOLDER.findall(template.text))
    used = {w[len("option_"):] for w in words if w.startswith("option_")}
    hidden = sorted(secret & used)
    values.update({k: REDACTED for k in secret})
    hidden_template = replace(template, values=values, x509=None)
    text = userdata.render(hidden_template, config=config, space=space, mt=mt,
                           machine=machine, token=REDACTED)
    if "machine_token" in words:
        hidden.append("machine_token")
    names = tuple(f"user_data_option_{h}" if h != "machine_token" else
                  "user_data_machine_token" for h in hidden)
    return Preview(redact_text(text), names)  # and credentials inside URLs, as everywhere


def _token(state_dir: Path, machine: str) -> str:
    """The machine's real bearer token when the state directory has its token key; never
    creates the key (a preview must not write), so without it the token stays hidden."""
    from vcyclectl.vm import tokens

    if not tokens.key_path(state_dir).is_file():
        return REDACTED
    return tokens.machine_token(state_dir, machine)
