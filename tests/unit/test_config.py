"""Config loading: merging, defaults, and a clear file:line: key message for every bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from vcyclectl import config
from vcyclectl.errors import ConfigError

GOOD = """\
state_dir: state
defaults:
  backoff_seconds: 60
spaces:
  demo.example.org:
    cloud: local
    processors_limit: 40
    local: {processors: 64, boot_seconds: 1}
    machinetypes:
      lhcb:
        target_share: 3
        min_processors: 2
        max_processors: 4
        local: {job_seconds: 5}
      atlas:
        backoff_seconds: 5
"""


def test_good_config_resolves_defaults_and_overrides(write_config: Callable[..., Path]) -> None:
    path = write_config(GOOD)
    cfg = config.load(path)
    space = cfg.spaces["demo.example.org"]
    assert cfg.state_dir == path.parent / "state"
    assert space.processors_limit == 40
    assert space.machinetypes["lhcb"].backoff_seconds == 60  # from defaults
    assert space.machinetypes["atlas"].backoff_seconds == 5  # machinetype wins
    assert space.cloud_options.boot_seconds == 1
    assert space.machinetypes["lhcb"].cloud_options.job_seconds == 5
    assert space.machinetypes["lhcb"].cloud_options.boot_seconds == 1  # merged over the space
    assert space.machinetypes["atlas"].cloud_options is None
    assert space.slug == "demo-example-org"


def test_conf_d_files_merge_in_name_order(write_config: Callable[..., Path]) -> None:
    main = write_config(GOOD)
    write_config("spaces:\n  demo.example.org:\n    processors_limit: 10\n", "conf.d/10-a.yaml")
    write_config("spaces:\n  demo.example.org:\n    processors_limit: 12\n", "conf.d/20-b.yaml")
    cfg = config.load(main)
    assert cfg.spaces["demo.example.org"].processors_limit == 12
    assert len(cfg.files) == 3


def test_error_in_conf_d_names_that_file(write_config: Callable[..., Path]) -> None:
    main = write_config(GOOD)
    extra = write_config("spaces:\n  demo.example.org:\n    processors_limt: 10\n",
                         "conf.d/10-a.yaml")
    with pytest.raises(ConfigError) as err:
        config.load(main)
    assert str(err.value).startswith(f"{extra}:3: spaces.demo.example.org.processors_limt")


def test_env_var_names_the_config(write_config: Callable[..., Path],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(GOOD)
    monkeypatch.setenv("VCYCLECTL_CONFIG", str(path))
    assert "demo.example.org" in config.load(None).spaces


def test_state_dir_override(write_config: Callable[..., Path], tmp_path: Path) -> None:
    cfg = config.load(write_config(GOOD), state_dir=tmp_path / "elsewhere")
    assert cfg.state_dir == tmp_path / "elsewhere"


def test_secrets_are_redacted_by_display(write_config: Callable[..., Path]) -> None:
    path = write_config(GOOD.replace(
        "        target_share: 3",
        "        target_share: 3\n        user_data_options: {pool_password: hunter2, "
        "cvmfs_proxy: 'http://squid:3128'}"))
    shown = config.display(config.load(path))
    options = shown["spaces"]["demo.example.org"]["machinetypes"]["lhcb"]["user_data_options"]
    assert options == {"pool_password": "***", "cvmfs_proxy": "http://squid:3128"}
    assert "hunter2" not in repr(shown)


# (description, yaml, expected line, expected key, expected words in the message)
BAD: list[tuple[str, str, int, str, str]] = [
    ("unknown top-level key", "state_dir: s\nspaces: {}\nstate_dri: x\n", 3, "state_dri",
     "did you mean 'state_dir'"),
    ("unknown space key", "spaces:\n  a:\n    cloud: local\n    procesors_limit: 3\n", 4,
     "spaces.a.procesors_limit", "did you mean 'processors_limit'"),
    ("unknown machinetype key", "spaces:\n  a:\n    cloud: local\n    machinetypes:\n      m:\n        imag: x\n",
     6, "spaces.a.machinetypes.m.imag", "did you mean 'image'"),
    ("bad space name", "spaces:\n  Bad_Name:\n    cloud: local\n", 2, "spaces.Bad_Name",
     "space names are lowercase"),
    ("bad machinetype name", "spaces:\n  a:\n    cloud: local\n    machinetypes:\n      LHCb: {}\n", 5,
     "spaces.a.machinetypes.LHCb", "machinetype names"),
    ("unknown cloud", "spaces:\n  a:\n    cloud: azure\n", 3, "spaces.a.cloud", "must be one of"),
    ("no cloud", "spaces:\n  a:\n    processors_limit: 3\n", 3, "spaces.a.cloud",
     "must say which cloud"),
    ("wrong type for limit", "spaces:\n  a:\n    cloud: local\n    processors_limit: lots\n", 4,
     "spaces.a.processors_limit", "must be a whole number"),
    ("negative seconds", "defaults:\n  backoff_seconds: -5\nspaces: {}\n", 2,
     "defaults.backoff_seconds", "must be at least 0"),
    ("min above max", "spaces:\n  a:\n    cloud: local\n    machinetypes:\n      m:\n        min_processors: 8\n"
     "        max_processors: 4\n", 6, "spaces.a.machinetypes.m.min_processors",
     "more than max_processors"),
    ("probability above one", "spaces:\n  a:\n    cloud: local\n    local:\n      failure_probability: 1.5\n", 5,
     "spaces.a.local.failure_probability", "at most 1"),
    ("block of another cloud", "spaces:\n  a:\n    cloud: local\n    ec2: {region: x}\n", 4,
     "spaces.a.ec2", "does not apply"),
    ("duplicate key", "spaces:\n  a:\n    processors_limit: 1\n    processors_limit: 2\n", 4,
     "processors_limit", "duplicate key"),
    ("broken YAML", "spaces:\n  a: [unclosed\n", 3, "", "not valid YAML"),
    ("top level is a list", "- a\n- b\n", 1, "", "top level must be a mapping"),
    ("space is not a mapping", "spaces:\n  a: 3\n", 2, "spaces.a", "must be a mapping"),
    ("boolean where a number goes", "spaces:\n  a:\n    cloud: local\n    machinetypes:\n      m:\n"
     "        target_share: yes\n", 6, "spaces.a.machinetypes.m.target_share", "must be a number"),
    ("heartbeat file with a path", "spaces:\n  a:\n    cloud: local\n    machinetypes:\n      m:\n"
     "        heartbeat_file: ../../etc/passwd\n", 6, "spaces.a.machinetypes.m.heartbeat_file",
     "a plain file name"),
    ("zero processors", "spaces:\n  a:\n    cloud: local\n    machinetypes:\n      m:\n        min_processors: 0\n",
     6, "spaces.a.machinetypes.m.min_processors", "at least 1"),
    ("concurrency too high", "spaces:\n  a:\n    cloud: local\n    concurrency: 100000\n", 4, "spaces.a.concurrency",
     "at most 256"),
    ("duplicate local flavors", "spaces:\n  a:\n    cloud: local\n    local:\n      flavors:\n"
     "        - {name: s, processors: 1}\n        - {name: s, processors: 2}\n", 5,
     "spaces.a.local.flavors", "unique"),
    ("a flavor without processors", "spaces:\n  a:\n    cloud: local\n    local:\n      flavors:\n"
     "        - {name: s}\n", 6, "spaces.a.local.flavors[0].processors", "is required"),
    ("a typo in defaults", "defaults:\n  fizle_seconds: 3\nspaces: {}\n", 2,
     "defaults.fizzle_seconds".replace("fizzle", "fizle"), "did you mean 'fizzle_seconds'"),
    ("feedback_url not a URL", "feedback_url: ftp://x\nspaces: {}\n", 1, "feedback_url",
     "an http:// or https:// URL"),
    ("user_data_options not a mapping", "spaces:\n  a:\n    cloud: local\n    machinetypes:\n      m:\n"
     "        user_data_options: [a, b]\n", 6, "spaces.a.machinetypes.m.user_data_options",
     "must be a mapping"),
]


@pytest.mark.parametrize("text,line,key,words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_names_file_line_and_key(write_config: Callable[..., Path], text: str,
                                            line: int, key: str, words: str) -> None:
    path = write_config(text)
    with pytest.raises(ConfigError) as err:
        config.load(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: "), message
    if key:
        assert f": {key}: " in message, message
    assert words in message, message


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        config.load(tmp_path / "absent.yaml")


def test_heartbeats_on_a_real_cloud_need_feedback_url(write_config: Callable[..., Path]) -> None:
    """A VM on a real cloud can only heartbeat through `vcyclectl serve`."""
    path = write_config("spaces:\n  a:\n    cloud: ec2\n    ec2: {region: eu-west-2}\n"
                        "    machinetypes:\n      m: {heartbeat_seconds: 60}\n")
    with pytest.raises(ConfigError, match="needs feedback_url"):
        config.load(path)


BOMB = "".join(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else 'lol'}]\n"
               for prev, name in zip([""] + list("abcdefgh"), "abcdefghi"))


@pytest.mark.parametrize("text, line, says", [
    (BOMB, 1, "more than 200,000 values"),           # 9**9 values from ~300 bytes
    ("a: &a [*a]\n", 1, "refers to a value that contains it"),
    ("state_dir: x\nspaces: !foo {}\n", 2, "unknown YAML tag !foo"),
    ("state_dir: x\nn: !!python/object:os.system {}\n", 2, "unknown YAML tag"),
])
def test_hostile_yaml_is_a_config_error_with_its_line(write_config: Callable[..., Path],
                                                      text: str, line: int, says: str) -> None:
    """Issues 15 and 22: an alias bomb used to take 75 s and 2.2 GB; a recursive alias and
    an unknown tag were internal errors. Each is now a config error naming file and line."""
    path = write_config(text)
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert caught.value.file == str(path) and caught.value.line == line
    assert says in str(caught.value)


def test_a_missing_user_data_template_names_the_config_file_and_line(
        write_config: Callable[..., Path], vc: Callable[..., object]) -> None:
    """Issue 15: it used to say only `spaces.a.b.machinetypes.m.user_data: file not found`."""
    path = write_config("state_dir: s\nspaces:\n  a.b:\n    cloud: local\n"
                        "    machinetypes:\n      m:\n        user_data: nope.user_data\n")
    run = vc("--config", path, "config", "check")
    assert run.code == 2  # type: ignore[attr-defined]
    assert f"{path}:7: spaces.a.b.machinetypes.m.user_data: file not found" in \
        run.err  # type: ignore[attr-defined]
