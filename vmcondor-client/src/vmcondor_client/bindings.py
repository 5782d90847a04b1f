"""The HTCondor Python bindings, imported only when needed and after CONDOR_CONFIG points at
the pool's client configuration (the bindings read it at import). The `htcondor` wheel 24+
ships version 2 as `htcondor2`/`classad2` (25 ships only those); older wheels have the same
API as `htcondor`/`classad`."""

from __future__ import annotations

import importlib
from types import ModuleType


def htcondor() -> ModuleType:
    try:
        return importlib.import_module("htcondor2")
    except ImportError:
        return importlib.import_module("htcondor")


def classad() -> ModuleType:
    try:
        return importlib.import_module("classad2")
    except ImportError:
        return importlib.import_module("classad")
