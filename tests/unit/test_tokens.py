"""Per-machine tokens: stable, distinct per machine and per state directory, key private,
and one key however many hosts race to create it."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

from vcyclectl.vm import tokens


def test_token_is_stable_and_distinct_per_machine(tmp_path: Path) -> None:
    a = tokens.machine_token(tmp_path, "vcyclectl-demo-lhcb-aaaaaaaaaa")
    assert a == tokens.machine_token(tmp_path, "vcyclectl-demo-lhcb-aaaaaaaaaa")
    assert a != tokens.machine_token(tmp_path, "vcyclectl-demo-lhcb-bbbbbbbbbb")
    assert len(a) == 64 and int(a, 16) >= 0


def test_another_state_directory_gives_other_tokens(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    name = "vcyclectl-demo-lhcb-aaaaaaaaaa"
    assert tokens.machine_token(tmp_path / "one", name) != tokens.machine_token(tmp_path / "two",
                                                                              name)


def test_key_file_is_private(tmp_path: Path) -> None:
    tokens.machine_token(tmp_path, "m")
    mode = stat.S_IMODE(tokens.key_path(tmp_path).stat().st_mode)
    assert mode == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_token_matches_only_the_right_token(tmp_path: Path) -> None:
    key = tokens.secret(tmp_path)
    good = tokens.token_for(key, "m1")
    assert tokens.token_matches(key, "m1", good)
    assert not tokens.token_matches(key, "m2", good)
    assert not tokens.token_matches(key, "m1", good[:-1] + ("0" if good[-1] != "0" else "1"))
    assert not tokens.token_matches(key, "m1", "")
    assert not tokens.token_matches(key, "m1", "é" * 64)


def test_token_check_answers_as_token_matches_and_stays_bounded(tmp_path: Path) -> None:
    key = tokens.secret(tmp_path)
    check = tokens.TokenCheck(key, most=3)
    names = [f"m{i}" for i in range(7)]
    for _ in range(2):  # the second round answers from derived tokens, some forgotten
        for name in names:
            good = tokens.token_for(key, name)
            for presented in (good, tokens.token_for(key, "other"), good.upper(), "",
                              "é" * 64, good[:-1] + ("0" if good[-1] != "0" else "1")):
                assert check.matches(name, presented) == \
                    tokens.token_matches(key, name, presented), (name, presented)
            assert len(check._tokens) <= 3
    other = tokens.TokenCheck(tokens.token_for(key, "another key").encode())
    assert not other.matches("m1", tokens.token_for(key, "m1"))


def _key_in_new_process(state_dir: str) -> bytes:
    tokens._cache.clear()  # a forked child must really read or create the file
    return tokens.secret(Path(state_dir))


def test_racing_processes_all_get_the_same_key(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    with context.Pool(6) as pool:
        keys = pool.map(_key_in_new_process, [str(tmp_path)] * 12)
    assert len(set(keys)) == 1
    assert keys[0] == tokens.key_path(tmp_path).read_bytes()
