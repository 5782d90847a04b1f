"""Vcycle spaces that define the same machinetype share one library entry in the import.

Vcycle has no way to share a definition, so a site with five clouds repeats
`[machinetype SPACE lhcb]` five times, and keeps a copy of the machinetype's files per space.
After each space is translated on its own, this moves what the same-named machinetypes have
in common into the top-level `machinetypes:` library (docs/machinetypes.md), leaves each
space `from: NAME` plus what differs there, and points every space at one copy of a file
whose copies are byte-for-byte the same. Mappings (`user_data_options`, `user_data_files`)
are shared key by key, since the loader merges them that way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vcyclectl.migrate.yamlblock import Block

_MISSING = object()
LIBRARY_COMMENT = ("shared definitions: Vcycle spaces that define the same machinetype name "
                   "it with `from:` and keep only what differs (docs/machinetypes.md)")


def share_machinetypes(root: Block, spaces: Block) -> None:
    """Build the library from `spaces` (in place) and put it into `root` before `spaces`."""
    groups: dict[str, list[Block]] = {}
    for _, space in spaces.items:
        mts = _value(space, "machinetypes") if isinstance(space, Block) else None
        if isinstance(mts, Block):
            for name, mt in mts.items:
                if isinstance(mt, Block):
                    groups.setdefault(name, []).append(mt)
    library = Block()
    for name, blocks in groups.items():
        if len(blocks) < 2:
            continue
        _one_copy_of_identical_files(blocks)
        entry = _move_common(blocks)
        if entry.items:
            library.items.append((name, entry))
            for block in blocks:
                block.items.insert(0, ("from", name))
    if library.items:
        at = next((i for i, (k, _) in enumerate(root.items) if k == "spaces"), len(root.items))
        root.items.insert(at, ("machinetypes", library))
        root.comments["machinetypes"] = [LIBRARY_COMMENT]


def _value(block: Block, key: str) -> Any:
    return next((v for k, v in block.items if k == key), _MISSING)


def _replace(block: Block, key: str, value: Any) -> None:
    """Set `key` to `value` in place, or drop it (and its comments) when value is missing."""
    if value is _MISSING:
        block.items = [(k, v) for k, v in block.items if k != key]
        block.comments.pop(key, None)
    else:
        block.items = [(k, value if k == key else v) for k, v in block.items]


def _move_common(blocks: list[Block]) -> Block:
    entry = Block()
    first, others = blocks[0], blocks[1:]
    for key, value in list(first.items):
        if isinstance(value, Block):
            continue
        seen = [_value(b, key) for b in others]
        if isinstance(value, dict):
            shared = {k: v for k, v in value.items()
                      if all(isinstance(o, dict) and o.get(k, _MISSING) == v for o in seen)}
            if not shared:
                continue
            whole = all(len(_value(b, key)) == len(shared) for b in blocks)
            entry.set(key, shared)
            if whole:
                entry.comments[key] = list(first.comments.get(key, []))
            for block in blocks:
                rest = {k: v for k, v in _value(block, key).items() if k not in shared}
                _replace(block, key, rest if rest else _MISSING)
        elif all(o == value for o in seen):
            entry.set(key, value)
            entry.comments[key] = list(first.comments.get(key, []))
            for block in blocks:
                _replace(block, key, _MISSING)
    return entry


def _one_copy_of_identical_files(blocks: list[Block]) -> None:
    """Vcycle kept a copy of a machinetype's files per space: spaces whose copies are the
    same name the first of them, so the definition can be shared."""
    olds = [_value(b, "user_data") for b in blocks]
    for block, old, new in zip(blocks, olds, _canonical(olds), strict=True):
        if new != old:
            _replace(block, "user_data", new)
            block.comments["user_data"] = [f"one copy for the spaces that share it: Vcycle's "
                                           f"copy {old} is identical"]
    files = [_value(b, "user_data_files") for b in blocks]
    mappings = [f for f in files if isinstance(f, dict)]
    for name in {k for f in mappings for k in f}:
        paths = _canonical([f.get(name) for f in mappings])
        for mapping, path in zip(mappings, paths, strict=True):
            if path is not None:
                mapping[name] = path


def _canonical(paths: list[Any]) -> list[Any]:
    """Each path, or the first earlier path to a readable file with the same bytes."""
    seen: dict[bytes, str] = {}
    out: list[Any] = []
    for path in paths:
        if not isinstance(path, str):
            out.append(path)
            continue
        try:
            content = Path(path).read_bytes()
        except OSError:
            out.append(path)
            continue
        out.append(seen.setdefault(content, path))
    return out
