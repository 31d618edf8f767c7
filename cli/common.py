"""Shared CLI plumbing: console, error handling, rich progress, logging."""

from __future__ import annotations

import contextlib
import errno
import logging
import signal
import threading
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


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, show_time=False)],
        force=True,
    )


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a one-line error and return an Exit to raise."""
    # escape: messages hold paths and hints like ".[depth]" that rich would eat as markup
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=code)


# OS errors caused by the machine or the names given, not by vosbench: a full disk (or a file-size
# limit: EFBIG), no permission, a read-only mount, a path longer than the file system allows.
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS,
                       errno.ENAMETOOLONG}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt, so that both end a run the same way:
    temps removed on the way out (every atomic write removes its temp on any exception), one line."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While a verb runs, SIGTERM raises :class:`Terminated` (the default would end the process
    without a word and leave its temps); only where no other handler is installed."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def handle_errors() -> Iterator[None]:
    """Turn library errors, and a full disk or missing permission, into a one-line message and exit code 1;
    Ctrl-C and SIGTERM into one line and exit code 130 / 143."""
    try:
        with _sigterm_as_interrupt():
            yield
    except VosbenchError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        if exc.errno not in _ENVIRONMENT_ERRNOS:
            raise  # anything else is a bug and keeps its traceback
        where = f"{exc.filename}: " if exc.filename else ""
        raise fail(f"{where}{exc.strerror or exc}") from None
    except Terminated:
        raise fail("terminated (SIGTERM)", code=128 + signal.SIGTERM) from None
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
