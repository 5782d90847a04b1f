"""`config check` reports every configuration error in one round (issue 18): all the
mistakes of one mapping, of the top level, of `defaults:` and of every space together, each
once, each with its file, line and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from vcyclectl.config import load
from vcyclectl.errors import ConfigError, ConfigErrors


def _errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "vcyclectl.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as caught:
        load(path)
    found = caught.value.errors if isinstance(caught.value, ConfigErrors) else [caught.value]
    return [str(e).replace(str(tmp_path) + "/", "") for e in found]


def test_every_mistake_everywhere_is_reported_once(tmp_path: Path) -> None:
    errors = _errors(tmp_path, """\
        state_dir: state
        journal_keep: 0
        defaults:
          fizle_seconds: 10
        spaces:
          a.local:
            cloud: local
            machinetypes:
              one: {min_processors: 0, target_share: lots}
              two: {}
          b.local:
            cloud: local
            local: {boot_secs: 1}
            machinetypes:
              three: {}
        """)
    assert errors == [
        "vcyclectl.yaml:2: journal_keep: must be at least 1, got 0",
        "vcyclectl.yaml:4: defaults.fizle_seconds: unknown key (did you mean 'fizzle_seconds'?)",
        "vcyclectl.yaml:9: spaces.a.local.machinetypes.one.min_processors: must be at least 1, "
        "got 0",
        "vcyclectl.yaml:9: spaces.a.local.machinetypes.one.target_share: must be a number, "
        "got 'lots'",
        "vcyclectl.yaml:13: spaces.b.local.local.boot_secs: unknown key (did you mean "
        "'boot_seconds'?)",
    ]


def test_every_bad_item_of_a_list_is_reported(tmp_path: Path) -> None:
    errors = _errors(tmp_path, """\
        state_dir: state
        spaces:
          a.local:
            cloud: local
            local:
              flavors: [{name: s, processors: 0}, {name: m, processors: x}]
            machinetypes: {}
        """)
    assert [e.split(": ", 1)[1].split(":")[0] for e in errors] == [
        "spaces.a.local.local.flavors[0].processors", "spaces.a.local.local.flavors[1].processors"]
