"""Shared CLI plumbing: console, error handling, rich progress, logging."""

from __future__ import annotations

import contextlib
import errno
import logging
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from vosbench.errors import VosbenchError

console = Console(stderr=False)
err_console = Console(stderr=True)


class _OncePerMessage(logging.Filter):
    """Pass each distinct message once (a worker of a DDP job repeats the same warning per step or phase)."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self._seen:
            return False
        self._seen.add(message)
        return True


def setup_logging(verbose: bool = False) -> None:
    """INFO (DEBUG with --verbose) on stderr. In a DDP worker (torchrun's or a SLURM step's
    variables) rank 0 logs so; the other ranks log warnings and errors only, each message once,
    prefixed ``[rank N]``, so a job prints one copy of what every rank sees."""
    import os

    from vosbench.errors import VosbenchError
    from vosbench.cluster import world_from_env

    try:
        rank = world_from_env(os.environ)[0]
    except VosbenchError:
        rank = 0  # a malformed launcher environment is reported when the run starts
    handler = RichHandler(console=err_console, show_path=False, show_time=False)
    level = logging.DEBUG if verbose else logging.INFO
    fmt = "%(message)s"
    if rank > 0:
        level = logging.WARNING
        fmt = f"[rank {rank}] %(message)s"
        handler.addFilter(_OncePerMessage())
    logging.basicConfig(level=level, format=fmt, handlers=[handler], force=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a one-line error and return an Exit to raise."""
    # escape: messages hold paths and hints like ".[depth]" that rich would eat as markup
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=code)


# OS errors caused by the machine, not by vosbench: a full disk, no permission, a read-only mount.
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


@contextlib.contextmanager
def handle_errors() -> Iterator[None]:
    """Turn library errors, and a full disk or missing permission, into a one-line message and exit code 1."""
    try:
        yield
    except VosbenchError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        if exc.errno not in _ENVIRONMENT_ERRNOS:
            raise  # anything else is a bug and keeps its traceback
        where = f"{exc.filename}: " if exc.filename else ""
        raise fail(f"{where}{exc.strerror or exc}") from None
    except KeyboardInterrupt:
        raise fail("interrupted", code=130) from None


class RichProgress:
    """Implements :class:`vosbench.progress.Progress` with a rich progress display."""

    def __init__(self, progress: Progress):
        self._progress = progress
        self._task: TaskID | None = None

    def start(self, description: str, total: int | None = None) -> None:
        if self._task is not None:
            t = self._progress.tasks[self._task]
            if t.total is not None:
                self._progress.update(self._task, completed=t.total)
        self._task = self._progress.add_task(description, total=total)

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n)

    def update(self, description: str) -> None:
        if self._task is not None:
            self._progress.update(self._task, description=description)


@contextlib.contextmanager
def progress_bar(transient: bool = False) -> Iterator[RichProgress]:
    """A rich progress display for a library call; yields the library-side adapter."""
    prog = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
    )
    with prog:
        try:
            yield RichProgress(prog)
        except BaseException:
            prog.live.transient = True  # a failed run ends with its one error line, not a half-full bar
            raise
