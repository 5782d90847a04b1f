"""The records journal's fast read (one msgspec decode of the whole journal straight into
records) must give exactly what the line-by-line replay gives: the same records, fields
from a newer version kept, torn and odd lines skipped, unsafe names dropped (issue 17)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vcyclectl.core.model import MachineState
from vcyclectl.core.records import NO_EXTRA, MachineRecord
from vcyclectl.state.space import SpaceState, valid_machine_name
from vcyclectl.state.store import StateDir


def reference(path: Path) -> dict[str, MachineRecord]:
    """The replay as it was before the fast read: json per line, `from_record` per record,
    the same type checks; what every path must still agree with."""
    raw: dict[str, dict[str, Any]] = {}
    for text in path.read_bytes().split(b"\n")[:-1]:  # the last piece is never complete
        try:
            line = json.loads(text)
        except ValueError:
            continue
        if not isinstance(line, dict):
            continue
        if "put" in line:
            rec = line["put"]
            if isinstance(rec, dict) and isinstance(rec.get("name"), str):
                raw[rec["name"]] = rec
        elif "del" in line:
            raw.pop(str(line["del"]), None)
    out = {}
    for name, rec in raw.items():
        if not valid_machine_name(name):
            continue
        try:
            record = MachineRecord.from_record(rec)
        except (TypeError, ValueError, KeyError):
            continue
        if isinstance(record.created_at, (int, float)) and isinstance(record.processors, int) \
                and isinstance(record.machinetype, str):
            out[name] = record
    return out


def record(name: str, **extra: Any) -> dict[str, Any]:
    return {**MachineRecord(name=name, space="s", machinetype="mt", state=MachineState.RUNNING,
                            processors=2, created_at=100.5, cloud_id="c-" + name,
                            price_per_hour=0.25).to_record(), **extra}


NAMES = st.sampled_from(["a", "b", "c-1", "../etc", "B", "x\ny", "d" * 130])
ODD = st.sampled_from([
    b'{"put": {"name": "b", "spa',          # torn by a killed writer
    b"",                                      # blank
    b"[1, 2]",                                # not an object
    b'{"put": {"name": "a"}}',                # required fields missing
    b'{"put": 5}', b'{"del": 7}', b"{}",
    b'{"put": {"name": "c-1", "space": "s", "machinetype": "mt", "state": "odd", '
    b'"processors": 1, "created_at": 1}}',    # a state this version does not know
    b'{"put": {"name": "a", "space": "s", "machinetype": "mt", "state": "running", '
    b'"processors": 1.5, "created_at": 1}}',  # processors of the wrong type
    b'{"put": {"name": "b", "space": "s", "machinetype": "mt", "state": "running", '
    b'"processors": 1, "created_at": 1}, "del": "b"}',  # both: the put wins, as before
])


@st.composite
def journals(draw: st.DrawFn) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["put", "put", "put", "del", "future", "extra", "odd"]))
        name = draw(NAMES)
        if kind == "put":
            line = json.dumps({"put": record(name)}).encode()
        elif kind == "del":
            line = json.dumps({"del": name}).encode()
        elif kind == "future":
            line = json.dumps({"put": record(name, future={"x": 1})}).encode()
        elif kind == "extra":
            line = json.dumps({"put": record(name, extra={"y": 2})}).encode()
        else:
            line = draw(ODD)
        lines.append(line)
    tail = draw(st.sampled_from([b"", b'{"put": {"na']))  # a torn last line, or none
    return b"".join(line + b"\n" for line in lines) + tail


@settings(max_examples=300, deadline=None)
@given(journals())
def test_fast_read_equals_the_line_by_line_replay(tmp_path_factory: Any, data: bytes) -> None:
    store = StateDir(tmp_path_factory.mktemp("j")).space("s")
    store.ensure()
    store.records_file.write_bytes(data)
    expected = reference(store.records_file)
    got = store.records()
    assert got == expected
    assert store._replay(data[: data.rfind(b"\n") + 1]) == expected
    for name, rec in got.items():
        assert rec.to_record() == expected[name].to_record()  # extra fields written back


def test_a_plain_journal_takes_the_fast_path(tmp_path: Path) -> None:
    store = StateDir(tmp_path).space("s")
    store.ensure()
    store.records_file.write_bytes(b"".join(
        json.dumps(line).encode() + b"\n"
        for line in ({"put": record("a")}, {"put": record("b")}, {"del": "a"})))
    calls = []
    original = SpaceState._replay
    SpaceState._replay = lambda self, body: calls.append(body) or original(self, body)  # type: ignore[method-assign]
    try:
        got = store.records()
    finally:
        SpaceState._replay = original  # type: ignore[method-assign]
    assert list(got) == ["b"] and not calls
    assert got["b"].extra is NO_EXTRA and got["b"].price_per_hour == 0.25
    assert got["b"].state is MachineState.RUNNING


def test_a_name_holding_a_newline_is_not_two_names(tmp_path: Path) -> None:
    store = StateDir(tmp_path).space("s")
    store.ensure()
    store.records_file.write_bytes(json.dumps({"put": record("a\nb")}).encode() + b"\n" +
                                   json.dumps({"put": record("ok")}).encode() + b"\n")
    assert list(store.records()) == ["ok"]
