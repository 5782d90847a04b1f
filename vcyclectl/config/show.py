"""The effective configuration as plain data for `config show`, secrets redacted."""

from __future__ import annotations

from typing import Any

from vcyclectl.config import schema
from vcyclectl.config.types import Config


def display(config: Config) -> dict[str, Any]:
    """The effective configuration as plain data, secrets redacted (`config show`)."""
    spaces: dict[str, Any] = {}
    for name, space in config.spaces.items():
        out = schema.to_display(space)
        out.pop("name", None)
        out.pop("origin", None)
        out[space.cloud] = out.pop("cloud_options")
        for mt_name in space.machinetypes:
            shown = out["machinetypes"][mt_name]
            shown.pop("name", None)
            options = shown.pop("cloud_options")
            if options is not None:
                shown[space.cloud] = options
        spaces[name] = out
    result: dict[str, Any] = {"state_dir": str(config.state_dir)}
    if config.feedback_url:
        result["feedback_url"] = config.feedback_url
    result["joboutputs_keep_seconds"] = config.joboutputs_keep_seconds
    result["max_clock_skew_seconds"] = config.max_clock_skew_seconds
    if config.metrics_textfile or config.vacmon_hostport:
        result.update(metrics_textfile=config.metrics_textfile,
                      vacmon_hostport=list(config.vacmon_hostport))
    result["journal_max_bytes"] = config.journal_max_bytes
    result["journal_keep"] = config.journal_keep
    result["spaces"] = spaces
    if config.communities:
        result["communities"] = {n: _shown(c) for n, c in config.communities.items()}
    if config.budgets:
        result["budgets"] = {n: _shown(b) for n, b in config.budgets.items()}
    if config.campaigns:
        result["campaigns"] = [schema.to_display(c) for c in config.campaigns]
    if config.accounting is not None:
        result["accounting"] = schema.to_display(config.accounting.spaces)
    return result


def _shown(obj: Any) -> Any:
    out = schema.to_display(obj)
    out.pop("name", None)
    return out
