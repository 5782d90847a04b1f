"""Machine names: `vcyclectl-<space-slug>-<machinetype>-<10 random [a-z0-9]>`.

The name is chosen before the create call and recorded as the intent, so a retry finds the
VM instead of making a second one. Names stay within 63 characters (GCE's limit, also a DNS
label): when space slug and machinetype are too long, that middle part is cut and a 4-char
hash of it added, so different spaces still get different names. The tags, not the name,
say which space and machinetype a machine belongs to.
"""

from __future__ import annotations

import hashlib
import string
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import random

ALPHABET = string.ascii_lowercase + string.digits
PREFIX = "vcyclectl"
MAX_LENGTH = 63
SUFFIX_LENGTH = 10


def middle(space_slug: str, machinetype: str) -> str:
    mid = f"{space_slug}-{machinetype}"
    room = MAX_LENGTH - len(PREFIX) - SUFFIX_LENGTH - 2
    if len(mid) <= room:
        return mid
    digest = hashlib.sha256(mid.encode()).hexdigest()[:4]
    return f"{mid[: room - 5].rstrip('-')}-{digest}"


def machine_name(space_slug: str, machinetype: str, suffix: str) -> str:
    return f"{PREFIX}-{middle(space_slug, machinetype)}-{suffix}"


def random_names(space_slug: str, rng: random.Random | None = None) -> Callable[[str], str]:
    """A name source for the planner: cryptographic randomness unless a seeded rng is given."""
    import secrets

    choose: Callable[[str], str] = rng.choice if rng is not None else secrets.choice

    def name(machinetype: str) -> str:
        suffix = "".join(choose(ALPHABET) for _ in range(SUFFIX_LENGTH))
        return machine_name(space_slug, machinetype, suffix)

    return name
