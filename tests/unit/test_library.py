"""The top-level machinetype library: merging, per-space overrides, and errors that still
name the file and line of the key that is wrong (the library's or the override's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from vcyclectl import config
from vcyclectl.errors import ConfigError

LIBRARY = """\
state_dir: state
defaults:
  backoff_seconds: 60
machinetypes:
  lhcb:
    image: cernvm4
    flavors: [m1.large]
    min_processors: 2
    max_processors: 8
    user_data: lhcb.user_data
    user_data_options: {cvmfs_proxy: "http://squid:3128", vo: lhcb}
spaces:
  one.example.org:
    cloud: local
    machinetypes:
      lhcb: {from: lhcb}
  two.example.org:
    cloud: local
    defaults:
      fizzle_seconds: 30
    machinetypes:
      lhcb-spot:
        from: lhcb
        flavors: [spot.large, spot.xlarge]
        user_data_options: {vo: lhcb-spot}
      plain: {image: other}
"""


def test_spaces_share_one_definition_with_overrides(write_config: Callable[..., Path]) -> None:
    path = write_config(LIBRARY)
    cfg = config.load(path)
    one = cfg.spaces["one.example.org"].machinetypes["lhcb"]
    spot = cfg.spaces["two.example.org"].machinetypes["lhcb-spot"]
    assert one.image == spot.image == "cernvm4"
    assert one.flavors == ("m1.large",)
    assert spot.flavors == ("spot.large", "spot.xlarge")  # lists are replaced
    assert spot.user_data_options == {"cvmfs_proxy": "http://squid:3128", "vo": "lhcb-spot"}
    assert one.backoff_seconds == spot.backoff_seconds == 60  # top-level defaults still apply
    assert spot.fizzle_seconds == 30 and one.fizzle_seconds == 600  # the space's defaults
    assert one.user_data == str(path.parent / "lhcb.user_data")  # relative to its file
    assert spot.name == "lhcb-spot"
    assert cfg.spaces["two.example.org"].machinetypes["plain"].image == "other"


def test_the_library_wins_over_defaults_and_the_space_over_the_library(
        write_config: Callable[..., Path]) -> None:
    path = write_config(LIBRARY.replace("    image: cernvm4\n",
                                        "    image: cernvm4\n    backoff_seconds: 7\n")
                        .replace("      lhcb: {from: lhcb}",
                                 "      lhcb: {from: lhcb, backoff_seconds: 9}"))
    cfg = config.load(path)
    assert cfg.spaces["one.example.org"].machinetypes["lhcb"].backoff_seconds == 9
    assert cfg.spaces["two.example.org"].machinetypes["lhcb-spot"].backoff_seconds == 7


def test_library_in_a_conf_d_file_keeps_its_own_file_for_paths(
        write_config: Callable[..., Path]) -> None:
    main = write_config("state_dir: state\nspaces:\n  a:\n    cloud: local\n"
                        "    machinetypes:\n      lhcb: {from: lhcb, max_processors: 4}\n")
    write_config("machinetypes:\n  lhcb: {image: cernvm4, user_data: lhcb.user_data}\n",
                 "conf.d/10-library.yaml")
    mt = config.load(main).spaces["a"].machinetypes["lhcb"]
    assert mt.image == "cernvm4" and mt.max_processors == 4
    assert mt.user_data == str(main.parent / "conf.d" / "lhcb.user_data")


def test_config_show_prints_the_merged_result(write_config: Callable[..., Path],
                                              vc: Callable[..., Any]) -> None:
    import json

    path = write_config(LIBRARY)
    run = vc("--config", path, "config", "show", "-o", "json")
    assert run.code == 0, run.err
    shown = json.loads(run.out)
    spot = shown["spaces"]["two.example.org"]["machinetypes"]["lhcb-spot"]
    assert spot["image"] == "cernvm4" and spot["flavors"] == ["spot.large", "spot.xlarge"]
    assert "from" not in spot
    assert "machinetypes" not in shown  # the library itself is not a setting of anything


BAD = [
    ("a bad value in the library names the library's line",
     LIBRARY.replace("    min_processors: 2", "    min_processors: 0"), 8,
     "machinetypes.lhcb.min_processors", "at least 1"),
    ("a typo in the library", LIBRARY.replace("    flavors: [m1.large]", "    flavor: [m1]"), 7,
     "machinetypes.lhcb.flavor", "did you mean 'flavors'"),
    ("a bad override names the override's line",
     LIBRARY.replace("        flavors: [spot.large, spot.xlarge]", "        flavors: {a: 1}"),
     24, "spaces.two.example.org.machinetypes.lhcb-spot.flavors", "must be a list"),
    ("min above max across library and override names the library key's line",
     LIBRARY.replace("      lhcb: {from: lhcb}", "      lhcb: {from: lhcb, max_processors: 1}"),
     8, "spaces.one.example.org.machinetypes.lhcb.min_processors", "more than max_processors"),
    ("an unknown reference", LIBRARY.replace("{from: lhcb}", "{from: lhbc}"), 16,
     "spaces.one.example.org.machinetypes.lhcb.from", "no machinetype 'lhbc'"),
    ("a reference without a library",
     "spaces:\n  a:\n    cloud: local\n    machinetypes:\n      m:\n        from: x\n", 6,
     "spaces.a.machinetypes.m.from", "it has: none"),
    ("a library entry naming another", LIBRARY.replace("    image: cernvm4\n",
                                                       "    image: cernvm4\n    from: x\n"), 7,
     "machinetypes.lhcb.from", "one level only"),
    ("a library that is not a mapping", "machinetypes: [a]\nspaces: {}\n", 1, "machinetypes",
     "must be a mapping"),
    ("a bad library name", "machinetypes:\n  LHCb: {}\nspaces: {}\n", 2, "machinetypes.LHCb",
     "bad name"),
]


@pytest.mark.parametrize("text,line,key,words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_errors_name_file_line_and_key(write_config: Callable[..., Path], text: str, line: int,
                                       key: str, words: str) -> None:
    path = write_config(text)
    with pytest.raises(ConfigError) as err:
        config.load(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: {key}: "), message
    assert words in message, message


def test_every_unknown_reference_is_reported_at_once(write_config: Callable[..., Path]) -> None:
    path = write_config(LIBRARY.replace("{from: lhcb}", "{from: nope}")
                        .replace("        from: lhcb\n", "        from: nope2\n"))
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert "'nope'" in str(err.value) and "'nope2'" in str(err.value)
