"""Progress reporting as a protocol: long work (a pass creating hundreds of machines, a
simulation) reports through it, and only the CLI decides whether a bar is drawn, so
nothing below `commands` imports rich."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """What the CLI may pass to show a progress bar."""

    def start(self, description: str, total: int) -> None: ...
    def advance(self, amount: int = 1) -> None: ...
    def finish(self) -> None: ...


class NoProgress:
    """Progress that shows nothing: not a terminal, under cron, or in tests."""

    def start(self, description: str, total: int) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass
