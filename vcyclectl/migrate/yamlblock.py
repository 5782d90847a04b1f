"""YAML meant to be read: the importer builds `Block`s (ordered keys with comments above
them, as a site admin reviews them) and renders them itself, since PyYAML drops comments."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Block:
    """A YAML mapping being built: ordered keys, values, and comments above each key."""

    items: list[tuple[str, Any]] = field(default_factory=list)
    comments: dict[str, list[str]] = field(default_factory=dict)
    trailing: list[str] = field(default_factory=list)

    def set(self, key: str, value: Any, comment: str | None = None) -> None:
        self.items.append((key, value))
        if comment:
            self.comments.setdefault(key, []).append(comment)

    def child(self, key: str) -> "Block":
        for k, v in self.items:
            if k == key and isinstance(v, Block):
                return v
        block = Block()
        self.items.append((key, block))
        return block

    def note(self, text: str) -> None:
        self.trailing.append(text)

    def __bool__(self) -> bool:
        return bool(self.items or self.trailing)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if re.fullmatch(r"[A-Za-z0-9_./:@+-][A-Za-z0-9_./:@+ -]*", text) and \
            not re.fullmatch(r"(?i)(true|false|yes|no|on|off|null|~|[-+]?[0-9.e]+)", text) \
            and not text.endswith(" ") and ": " not in text and " #" not in text:
        return text
    return json.dumps(text)


def _comment_lines(text: str, indent: str) -> list[str]:
    import textwrap as tw

    if text.startswith("vcycle:"):  # one line each, so `grep '# vcycle:'` lists them all
        return [f"{indent}# {text}"]
    # Paths, URLs and hostnames stay whole: a long one gets its own (long) line rather than
    # being cut at the width or at a '-' inside it, so it can be copied from the comment.
    lines = tw.wrap(text, width=96 - len(indent), break_long_words=False,
                    break_on_hyphens=False)
    return [f"{indent}# {line}" for line in lines] or [f"{indent}#"]


def render(block: Block, depth: int = 0) -> str:
    lines: list[str] = []
    indent = "  " * depth
    for key, value in block.items:
        for comment in block.comments.get(key, []):
            lines.extend(_comment_lines(comment, indent))
        if isinstance(value, Block):
            if not value:
                lines.append(f"{indent}{key}: {{}}")
                continue
            lines.append(f"{indent}{key}:")
            lines.append(render(value, depth + 1).rstrip("\n"))
        elif isinstance(value, dict):
            if not value:
                lines.append(f"{indent}{key}: {{}}")
                continue
            lines.append(f"{indent}{key}:")
            for k, v in value.items():
                lines.append(f"{indent}  {_scalar(k)}: {_scalar(v)}")
        elif isinstance(value, list):
            lines.append(f"{indent}{key}: [{', '.join(_scalar(v) for v in value)}]")
        else:
            lines.append(f"{indent}{key}: {_scalar(value)}")
    for note in block.trailing:
        lines.extend(_comment_lines(note, indent))
    return "\n".join(line for line in lines if line != "") + "\n"


