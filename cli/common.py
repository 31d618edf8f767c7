"""Shared CLI plumbing: console, error handling, rich progress, logging."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

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

from typer.core import TyperGroup

from vosbench.errors import ConfigError, VosbenchError

class VosbenchGroup(TyperGroup):
    """Typer's group, with flags shown without a value placeholder: ``--overwrite``, not ``--overwrite <bool>``."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _flags_without_metavar(command, ctx)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _flags_without_metavar(self, ctx)
        super().format_help(ctx, formatter)


def _flags_without_metavar(command: Any, ctx: Any) -> None:
    """Give every flag of ``command`` (``--help`` too) an empty metavar, which Typer's rich help prints as is."""
    for param in [*command.params, command.get_help_option(ctx)]:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""


console = Console(stderr=False)
err_console = Console(stderr=True)


class _PlainFormatter(logging.Formatter):
    """Logs as single lines (``warning: ...``; info without a prefix), for stderr that is not a
    terminal; ``prefix`` (a worker's ``[rank N] ``) goes first."""

    def __init__(self, prefix: str = "") -> None:
        super().__init__("%(message)s")
        self.prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"{self.prefix}{level}{message}"


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
    """INFO (DEBUG with --verbose) on stderr: rich log lines on a terminal, one plain line per message
    in a log file (no wrapping at 80 columns). In a DDP worker (torchrun's or a SLURM step's
    variables) rank 0 logs so; the other ranks log warnings and errors only, each message once,
    prefixed ``[rank N]``, so a job prints one copy of what every rank sees."""
    import os

    from vosbench.cluster import world_from_env
    from vosbench.errors import VosbenchError

    try:
        rank = world_from_env(os.environ)[0]
    except VosbenchError:
        rank = 0  # a malformed launcher environment is reported when the run starts
    if err_console.is_terminal:
        handler: logging.Handler = RichHandler(console=err_console, show_path=False, show_time=False)
    else:
        handler = logging.StreamHandler(err_console.file)
    level = logging.DEBUG if verbose else logging.INFO
    prefix = ""
    if rank > 0:
        level = logging.WARNING
        prefix = f"[rank {rank}] "
        handler.addFilter(_OncePerMessage())
    handler.setFormatter(logging.Formatter(f"{prefix}%(message)s") if err_console.is_terminal else _PlainFormatter(prefix))
    logging.basicConfig(level=level, handlers=[handler], force=True)


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


def score(value: float) -> str:
    """A score as printed everywhere in the CLI: percent with one decimal, as in the papers (``0.8253`` ->
    ``82.5``). Files keep the official toolkits' fractions (CSV, JSON)."""
    return "-" if value != value else f"{100 * value:.1f}"


THREADS_HELP = "CPU threads for torch (default: torch's choice, usually one per core)."


def set_threads(threads: int | None) -> None:
    """Set torch's CPU thread count for this process (None: leave torch's default)."""
    if threads is None:
        return
    if threads < 1:
        raise ConfigError(f"--threads must be 1 or more, got {threads}")
    import torch

    torch.set_num_threads(threads)


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


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class LineProgress:
    """Implements :class:`vosbench.progress.Progress` as plain lines, for logs (stderr not a terminal).

    A step that runs past ``interval`` seconds prints one line every ``interval`` seconds (what,
    done/total, rate, elapsed, eta) and a last line when it ends; quicker steps print nothing.
    Every line is flushed at once, so ``nohup``, SLURM and ``2> log`` show it as it happens.
    """

    def __init__(self, write: Callable[[str], None], interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        self._write, self.interval, self._now = write, interval, clock
        self._desc: str | None = None
        self._total: int | None = None
        self._done = 0
        self._t0 = self._last = 0.0
        self._printed = False

    def _line(self, now: float, end: bool = False) -> None:
        elapsed = now - self._t0
        rate = self._done / elapsed if elapsed > 0 else 0.0
        count = f"{self._done}/{self._total}" if self._total else f"{self._done}"
        parts = [f"{self._desc}: {count}"]
        if self._total:
            parts[0] += f" ({100 * self._done / self._total:.0f}%)"
        parts.append(f"{rate:.3g}/s" if rate < 100 else f"{rate:.0f}/s")
        parts.append(f"elapsed {_clock(elapsed)}")
        if end:
            parts.append("done")
        elif self._total and rate > 0:
            parts.append(f"eta {_clock(max(self._total - self._done, 0) / rate)}")
        self._write(", ".join(parts))
        self._last, self._printed = now, True

    def close(self) -> None:
        """End the current step (its last line, where it printed any or ran past the interval)."""
        now = self._now()
        if self._desc is not None and (self._printed or now - self._t0 >= self.interval):
            self._line(now, end=True)
        self._desc = None

    def start(self, description: str, total: int | None = None) -> None:
        self.close()
        self._desc, self._total, self._done, self._printed = description, total, 0, False
        self._t0 = self._last = self._now()

    def advance(self, n: int = 1) -> None:
        if self._desc is None:
            return
        self._done += n
        now = self._now()
        finished = self._total is not None and self._done >= self._total  # its "done" line follows at the end
        if now - self._last >= self.interval and not finished:
            self._line(now)

    def update(self, description: str) -> None:
        if self._desc is not None:
            self._desc = description


PROGRESS_SECONDS_ENV = "VOSBENCH_PROGRESS_SECONDS"


def _write_err_line(line: str) -> None:
    stream = err_console.file
    stream.write(line + "\n")
    stream.flush()


def _line_interval() -> float:
    """Seconds between progress lines in logs: $VOSBENCH_PROGRESS_SECONDS, default 10."""
    try:
        return max(0.0, float(os.environ.get(PROGRESS_SECONDS_ENV, "10")))
    except ValueError:
        return 10.0


@contextlib.contextmanager
def progress_bar(transient: bool = False) -> Iterator[RichProgress | LineProgress]:
    """Progress for a library call, yielding the library-side adapter: a rich display on a
    terminal, else plain lines at a steady interval (:class:`LineProgress`)."""
    if not err_console.is_terminal:
        lines = LineProgress(_write_err_line, _line_interval())
        yield lines  # a failed run ends with its one error line, not a last progress line
        lines.close()
        return
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
