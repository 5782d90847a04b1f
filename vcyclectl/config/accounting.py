"""The `accounting:` blocks: APEL publishing settings (docs/accounting.md).

An `accounting:` block may sit at the top level, in a space, in a `defaults:` block and in a
machinetype; each is a deep merge over the one before (top level → space → top-level
defaults → space defaults → machinetype), so a site sets `gocdb_sitename` once and a space or
machinetype overrides only what differs. Accounting is on for a machinetype when its merged
block names a `gocdb_sitename`. `accounting_fqan` and `accounting_vo` are plain machinetype
settings (Vcycle's names), so they follow `defaults:` like every other machinetype key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vcyclectl.config import schema
from vcyclectl.config.yamlsource import Located, deep_merge

Messages = Literal["summaries", "individual", "both"]


@dataclass(frozen=True)
class AccountingSettings:
    """One merged `accounting:` block."""

    gocdb_sitename: str | None = field(default=None, metadata={
        "pattern": r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", "pattern_doc": "a GOCDB site name"})
    apel_outgoing_dir: str | None = field(default=None, metadata={"path": True})
    messages: Messages = "summaries"
    #: How often a month's summary (and sync) message is re-issued while jobs keep ending in
    #: it; a month that is over is re-issued once, at the first pass after it ended.
    summaries_every_seconds: float = field(default=86400.0, metadata={"min": 0})

    @property
    def enabled(self) -> bool:
        return self.gocdb_sitename is not None

    @property
    def individual(self) -> bool:
        return self.messages in ("individual", "both")

    @property
    def summaries(self) -> bool:
        return self.messages in ("summaries", "both")

    def outgoing_dir(self, state_dir: Path) -> Path:
        return Path(self.apel_outgoing_dir) if self.apel_outgoing_dir else \
            Path(state_dir) / "apel-outgoing"


@dataclass(frozen=True)
class Accounting:
    """Per space its merged block, and per (space, machinetype) the machinetype's."""

    spaces: dict[str, AccountingSettings] = field(default_factory=dict)
    machinetypes: dict[tuple[str, str], AccountingSettings] = field(default_factory=dict)

    def settings(self, space: str, machinetype: str) -> AccountingSettings | None:
        """The block that applies (a machinetype no longer configured gets its space's), or
        None when accounting is off there."""
        found = self.machinetypes.get((space, machinetype)) or self.spaces.get(space)
        return found if found is not None and found.enabled else None

    def enabled_in(self, space: str) -> bool:
        return any(s.enabled for (sp, _), s in self.machinetypes.items() if sp == space) or \
            bool(self.spaces.get(space) and self.spaces[space].enabled)


def _block(node: object) -> Located | None:
    if isinstance(node, Located):
        value = node.get("accounting")
        if isinstance(value, Located):
            return value
    return None


def _merge(*nodes: Located | None) -> Located | None:
    out: Located | None = None
    for node in nodes:
        if node is not None:
            out = node if out is None else deep_merge(out, node)
    return out


def _check(node: Located | None, key: str) -> AccountingSettings:
    if node is None:
        return AccountingSettings()
    settings: AccountingSettings = schema.from_mapping(AccountingSettings, node,
                                                       prefix=key + ".")
    return settings


def parse_accounting(data: Located, space_names: list[str]) -> Accounting | None:
    """Every `accounting:` block, validated where it was written and merged per machinetype;
    None when the configuration has none."""
    top = _block(data)
    defaults = data.get("defaults")
    top_defaults = _block(defaults)
    spaces_node = data.get("spaces")
    found = top is not None or top_defaults is not None
    for name, key in ((top, "accounting"), (top_defaults, "defaults.accounting")):
        _check(name, key)
    spaces: dict[str, AccountingSettings] = {}
    machinetypes: dict[tuple[str, str], AccountingSettings] = {}
    for space in space_names:
        node = spaces_node.get(space) if isinstance(spaces_node, Located) else None
        own = _block(node)
        space_defaults = _block(node.get("defaults")) if isinstance(node, Located) else None
        _check(own, f"spaces.{space}.accounting")
        _check(space_defaults, f"spaces.{space}.defaults.accounting")
        found = found or own is not None or space_defaults is not None
        spaces[space] = _check(_merge(top, own), f"spaces.{space}.accounting")
        mts = node.get("machinetypes") if isinstance(node, Located) else None
        if not isinstance(mts, Located):
            continue
        for mt_name, mt_node in mts.items():
            mt_block = _block(mt_node)
            key = f"spaces.{space}.machinetypes.{mt_name}.accounting"
            _check(mt_block, key)
            found = found or mt_block is not None
            machinetypes[(space, str(mt_name))] = _check(
                _merge(top, own, top_defaults, space_defaults, mt_block), key)
    return Accounting(spaces, machinetypes) if found else None
