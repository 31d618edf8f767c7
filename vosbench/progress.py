"""A minimal progress protocol so the library can report progress without printing.

The CLI passes a rich-backed implementation; library callers may pass nothing.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, description: str, total: int | None = None) -> None:
        """Begin a new task (a new bar); ends the previous one."""

    def advance(self, n: int = 1) -> None:
        """Advance the current task by ``n`` units."""

    def update(self, description: str) -> None:
        """Change the current task's description (e.g. a loss value)."""


class NullProgress:
    """Progress that reports nothing."""

    def start(self, description: str, total: int | None = None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def update(self, description: str) -> None:
        pass


def ensure_progress(progress: Progress | None) -> Progress:
    return NullProgress() if progress is None else progress
