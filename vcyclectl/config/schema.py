"""Turn located YAML mappings into frozen dataclasses, with errors that name file, line, key.

A small hand-written converter rather than pydantic: it is a few hundred lines, it keeps
`vcyclectl list` start-up close to the framework's floor (pydantic costs ~150 ms to import),
and it reports positions from our `Located` tree directly.

Conventions for a config dataclass (used by `config.py` and each cloud's `*_options.py`):
- field types: `str`, `int`, `float`, `bool`, `X | None`, `list[X]`/`tuple[X, ...]`,
  `dict[str, X]`, `Literal[...]`, another config dataclass;
- `field(metadata=...)` keys: `secret` (redacted by `config show`), `path` (resolved
  relative to the file that names it), `min`/`max` (numbers), `pattern` (regex for str);
- an optional method `problems(self) -> list[tuple[str, str]]` returns (key, message) for
  rules that span fields (min > max); the converter reports them at the key's line.
"""

from __future__ import annotations

import dataclasses
import sys
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from vcyclectl.errors import ConfigError, ConfigErrors
from vcyclectl.redact import REDACTED, looks_secret, redact_text
from vcyclectl.config.yamlsource import Located, LocatedList, Origin

_HINTS: dict[type, dict[str, Any]] = {}



def _hints(cls: type) -> dict[str, Any]:
    """The resolved field types of a dataclass. A field annotated with a name imported only
    for type checking (a space's cloud options, one of four clouds' dataclasses, imported
    only when a space uses that cloud) resolves to `Any`: the schema never fills it."""
    if cls not in _HINTS:
        try:
            _HINTS[cls] = get_type_hints(cls)
        except NameError:
            hints: dict[str, Any] = {}
            for klass in reversed(cls.__mro__):
                namespace = vars(sys.modules[klass.__module__])
                for name, annotation in getattr(klass, "__annotations__", {}).items():
                    try:
                        hints[name] = (eval(annotation, namespace)  # noqa: S307 (as typing does)
                                       if isinstance(annotation, str) else annotation)
                    except NameError:
                        hints[name] = Any
            _HINTS[cls] = hints
    return _HINTS[cls]


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if tp is str:
        return "a string"
    if tp is int:
        return "a whole number"
    if tp is float:
        return "a number"
    if tp is bool:
        return "true or false"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (list, tuple):
        return "a list"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "a mapping"
    return str(tp)


def _fail(message: str, origin: Origin, key: str) -> ConfigError:
    return ConfigError(message, file=origin.file, line=origin.line, key=key)


Meta = typing.Mapping[str, Any]


def _convert(value: Any, tp: Any, origin: Origin, key: str, meta: Meta) -> Any:
    """`value` from YAML as the field type `tp`, or a `ConfigError` saying what it must be."""
    origin_tp = get_origin(tp)
    if origin_tp in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(value, args[0], origin, key, meta)
    if origin_tp is Literal:
        if value not in get_args(tp):
            raise _fail(f"must be {_type_name(tp)}, got {value!r}", origin, key)
        return value
    if tp is Any:
        return value
    scalar = _SCALARS.get(tp)
    if scalar is not None:
        return scalar(value, origin, key, meta)
    if origin_tp in (list, tuple):
        return _to_sequence(value, tp, origin, key, meta)
    if origin_tp is dict:
        return _to_dict(value, tp, origin, key, meta)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Located):
            raise _fail(f"must be a mapping, got {_describe(value)}", origin, key)
        return from_mapping(tp, value, prefix=key + ".")  # type: ignore[arg-type]
    raise TypeError(f"unsupported config type {tp!r} for {key}")  # a programming error


def _to_bool(value: Any, origin: Origin, key: str, meta: Meta) -> bool:
    if not isinstance(value, bool):
        raise _fail(f"must be true or false, got {value!r}", origin, key)
    return value


def _to_int(value: Any, origin: Origin, key: str, meta: Meta) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"must be a whole number, got {value!r}", origin, key)
    _check_range(value, origin, key, meta)
    return value


def _to_float(value: Any, origin: Origin, key: str, meta: Meta) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(f"must be a number, got {value!r}", origin, key)
    if value != value or value in (float("inf"), float("-inf")):
        raise _fail(f"must be a finite number, got {value!r}", origin, key)
    _check_range(value, origin, key, meta)
    return float(value)


def _to_str(value: Any, origin: Origin, key: str, meta: Meta) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, (Located, LocatedList)):
        raise _fail(f"must be a string, got {_describe(value)}", origin, key)
    text = str(value)  # numbers are accepted as strings (flavor "2", project ids)
    pattern = meta.get("pattern")
    if pattern and not re.fullmatch(pattern, text):
        raise _fail(f"{text!r} is not allowed here ({meta.get('pattern_doc', pattern)})",
                    origin, key)
    if meta.get("path"):
        text = str((Path(origin.file).parent / text)) if not Path(text).is_absolute() else text
    return text


_SCALARS: dict[Any, typing.Callable[[Any, Origin, str, Meta], Any]] = {
    bool: _to_bool, int: _to_int, float: _to_float, str: _to_str}


def _to_sequence(value: Any, tp: Any, origin: Origin, key: str, meta: Meta) -> Any:
    items = value
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        items = [value]  # a single value where a list is expected is a one-item list
    if not isinstance(items, list):
        raise _fail(f"must be a list, got {_describe(value)}", origin, key)
    item_tp = get_args(tp)[0]
    origins = getattr(items, "item_origins", None)
    out: list[Any] = []
    errors: list[ConfigError] = []
    for i, item in enumerate(items):
        try:
            out.append(_convert(item, item_tp, origins[i] if origins else origin,
                                f"{key}[{i}]", meta))
        except ConfigError as exc:  # every bad item, not only the first
            errors.append(exc)
    ConfigErrors.raise_if_any(errors)
    return tuple(out) if get_origin(tp) is tuple else out


def _to_dict(value: Any, tp: Any, origin: Origin, key: str, meta: Meta) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(f"must be a mapping, got {_describe(value)}", origin, key)
    _key_tp, value_tp = get_args(tp)
    result: dict[str, Any] = {}
    errors: list[ConfigError] = []
    for k, v in value.items():
        where = value.where(k) if isinstance(value, Located) else origin
        try:
            result[str(k)] = _convert(v, value_tp, where, f"{key}.{k}", meta)
        except ConfigError as exc:
            errors.append(exc)
    ConfigErrors.raise_if_any(errors)
    return result


def _describe(value: Any) -> str:
    if isinstance(value, Located):
        return "a mapping"
    if isinstance(value, LocatedList):
        return "a list"
    if value is None:
        return "nothing (null)"
    return repr(value)


def _check_range(value: float, origin: Origin, key: str, meta: typing.Mapping[str, Any]) -> None:
    low, high = meta.get("min"), meta.get("max")
    if low is not None and value < low:
        raise _fail(f"must be at least {low}, got {value}", origin, key)
    if high is not None and value > high:
        raise _fail(f"must be at most {high}, got {value}", origin, key)


def from_mapping(cls: type, data: Located, *, prefix: str = "",
                 ignore: frozenset[str] = frozenset()) -> Any:
    """Build `cls` from `data`; unknown keys, wrong types and failed rules are `ConfigError`s,
    every one of them raised together (`ConfigErrors`), so a site fixes them in one round."""
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)
              if f.init and not f.metadata.get("internal")}
    errors: list[ConfigError] = []
    for key in data:
        if key not in fields and key not in ignore:
            close = _closest(key, fields)
            hint = f" (did you mean {close!r}?)" if close else ""
            errors.append(_fail(f"unknown key{hint}", data.where(key), prefix + key))
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in data:
            try:
                kwargs[name] = _convert(data[name], hints[name], data.where(name),
                                        prefix + name, f.metadata)
            except ConfigError as exc:
                errors.append(exc)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            errors.append(_fail("is required", data.origin, prefix + name))
    ConfigErrors.raise_if_any(errors)
    obj = cls(**kwargs)
    problems = getattr(obj, "problems", None)
    if problems is not None:
        ConfigErrors.raise_if_any([
            _fail(message, data.where(key) if key in data else data.origin, prefix + key)
            for key, message in problems()])
    return obj


def _closest(key: str, fields: typing.Iterable[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.75)
    return matches[0] if matches else None


def to_display(obj: Any) -> Any:
    """A plain-data view of a config object with every secret field redacted."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.metadata.get("secret") and value is not None:
                out[f.name] = REDACTED
            elif isinstance(value, dict) and (f.metadata.get("secret_values") or
                                              f.name.endswith("options")):
                out[f.name] = {k: REDACTED if looks_secret(k) else to_display(v)
                               for k, v in value.items()}
            else:
                out[f.name] = to_display(value)
        return out
    if isinstance(obj, dict):
        return {str(k): to_display(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_display(v) for v in obj]
    if isinstance(obj, str):
        return redact_text(obj)  # credentials inside URLs (an auth_url with user:password)
    return obj
