"""Taking turns and ending on time (issue 15): the interval rule, the visiting order, the
pass deadline and its watchdog, and the two config keys."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

from vcyclectl import config as config_module
from vcyclectl.errors import ConfigError
from vcyclectl.reconcile.deadline import Deadline, DeadlinePassed, Watchdog, grace_seconds
from vcyclectl.reconcile.turns import too_soon, visiting_order

NOW = 1_000_000.0


def test_too_soon_counts_from_the_last_pass_by_any_host() -> None:
    last = {"finished_at": NOW - 10, "host": "cron-2", "outcome": "failed"}
    why = too_soon(last, 45, NOW)
    assert why is not None and "10s ago on cron-2" in why and "min_pass_interval_seconds 45" in why
    assert too_soon(last, 10, NOW) is None  # exactly the interval: due
    assert too_soon(last, 0, NOW) is None  # 0: every run passes
    assert too_soon(None, 45, NOW) is None  # never passed
    assert too_soon({"finished_at": "yesterday"}, 45, NOW) is None  # unreadable: due
    assert too_soon({**last, "deadline_passed": True}, 45, NOW) is None  # cut short: due


def test_a_finished_at_far_in_the_future_never_holds_a_space_back() -> None:
    """A host whose clock ran ahead wrote it: a little ahead is skew, within the interval;
    more than the interval ahead is not trusted, the space is due."""
    assert too_soon({"finished_at": NOW + 5}, 45, NOW) is not None
    assert too_soon({"finished_at": NOW + 3600}, 45, NOW) is None


def test_visiting_order_spreads_hosts_and_keeps_every_space() -> None:
    spaces = [f"s{i}" for i in range(8)]
    orders = [visiting_order(spaces, host=f"cron-{h}", pid=1000 + h, now=NOW) for h in range(4)]
    assert all(sorted(o) == spaces for o in orders)
    assert len({o[0] for o in orders}) > 1  # four hosts do not all start on the same space
    assert visiting_order(spaces, host="a", pid=1, now=NOW) == \
        visiting_order(spaces, host="a", pid=1, now=NOW + 1)  # same minute, same order
    firsts = Counter(visiting_order(spaces, host="a", pid=1, now=NOW + 60 * m)[0]
                     for m in range(80))
    assert len(firsts) == 8  # over the minutes each space is sometimes first


def test_deadline_starts_with_the_lock_and_expires() -> None:
    t = [0.0]
    deadline = Deadline(10, clock=lambda: t[0])
    assert not deadline.expired() and deadline.at is None
    deadline.check("anything")  # not started: never expired
    t[0] = 100.0
    deadline.start()
    t[0] = 109.9
    assert not deadline.expired()
    t[0] = 110.0
    assert deadline.expired()
    with pytest.raises(DeadlinePassed, match=r"max_pass_seconds \(10s\) passed before acting"):
        deadline.check("acting")
    assert deadline.overdue() < 0  # the grace is still running
    t[0] = 110.0 + deadline.grace + 0.1
    assert deadline.overdue() > 0


def test_grace_is_a_fifth_within_bounds() -> None:
    assert grace_seconds(1) == 2 and grace_seconds(100) == 20 and grace_seconds(3600) == 60


def test_watchdog_fires_only_for_a_pass_past_deadline_and_grace() -> None:
    t = [0.0]
    fired = threading.Event()
    seen: list[str] = []

    def fire(space: str, deadline: Deadline) -> None:
        seen.append(space)
        fired.set()

    dog = Watchdog(fire=fire)
    dog.TICK_SECONDS = 0.01
    quick = Deadline(1, clock=lambda: t[0])
    with dog.watching("quick.local", quick):
        quick.start()
        t[0] = 0.5
    quick.finish()
    t[0] = 100.0  # long past, but that pass is over
    assert not fired.wait(0.1) and seen == []
    stuck = Deadline(1, clock=lambda: t[0])
    with dog.watching("stuck.local", stuck):
        stuck.start()
        assert not fired.wait(0.1)  # within deadline + grace
        t[0] = 100.0 + 1 + stuck.grace + 0.01
        assert fired.wait(5)
    assert seen == ["stuck.local"] and dog.fired == ["stuck.local"]


def _load(tmp_path: Path, text: str) -> config_module.Config:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return config_module.load(path)


SPACES = """\
spaces:
  a.local:
    cloud: local
{a}    machinetypes: {{m: {{}}}}
  b.local:
    cloud: local
    defaults: {{max_pass_seconds: 60}}
    machinetypes: {{m: {{}}}}
"""


def test_the_keys_come_from_the_space_or_either_defaults(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "state_dir: s\n" + SPACES.format(a=""))
    assert cfg.spaces["a.local"].min_pass_interval_seconds == 45
    assert cfg.spaces["a.local"].max_pass_seconds == 300
    assert cfg.spaces["b.local"].max_pass_seconds == 60
    cfg = _load(tmp_path, "state_dir: s\ndefaults: {min_pass_interval_seconds: 0, "
                          "max_pass_seconds: 90}\n" +
                SPACES.format(a="    min_pass_interval_seconds: 50\n"))
    assert cfg.spaces["a.local"].min_pass_interval_seconds == 50  # the space's own wins
    assert cfg.spaces["b.local"].min_pass_interval_seconds == 0
    assert (cfg.spaces["a.local"].max_pass_seconds,
            cfg.spaces["b.local"].max_pass_seconds) == (90, 60)  # the space's defaults win


@pytest.mark.parametrize("text,line,key,message", [
    ("state_dir: s\ndefaults: {max_pass_seconds: 0}\n" + SPACES.format(a=""), 2,
     "spaces.a.local.max_pass_seconds", "must be at least 1"),
    ("state_dir: s\n" + SPACES.format(a="    min_pass_interval_seconds: -1\n"), 5,
     "spaces.a.local.min_pass_interval_seconds", "must be at least 0"),
    ("state_dir: s\n" + SPACES.format(a="").replace("{{m: {{}}}}", "{m: {}}").replace(
        "machinetypes: {m: {}}\n  b", "machinetypes: {m: {max_pass_seconds: 5}}\n  b", 1), 5,
     "spaces.a.local.machinetypes.m.max_pass_seconds", "a setting of the whole space"),
])
def test_bad_values_name_file_line_and_key(tmp_path: Path, text: str, line: int, key: str,
                                           message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    assert (info.value.line, info.value.key) == (line, key) and message in str(info.value)


def test_quickstart_passes_every_run(tmp_path: Path) -> None:
    """The README's quick start runs reconcile by hand a few seconds apart."""
    repo = Path(__file__).resolve().parents[2]
    cfg = config_module.load(repo / "examples" / "quickstart.yaml", state_dir=tmp_path)
    assert all(s.min_pass_interval_seconds == 0 for s in cfg.spaces.values())
