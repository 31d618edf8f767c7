"""One writer per output folder: ``train``, ``infer`` and ``merge`` hold a lock on their ``--out``.

Two runs into one folder would interleave their files (two trainings' checkpoints and log rows,
two inferences' sequences) and both exit 0. The lock is ``<out>/.vosbench.lock``, taken with
``filelock`` (``flock`` on POSIX, released by the kernel when the process dies, even by SIGKILL);
the file's text names the holder (verb, pid, host, start time) for the second run's error line.
The holder removes the file before it unlocks it, so a process that opened the old file meanwhile
still finds it locked; one that finds its locked file gone (unlinked under it) takes the lock again.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from vosbench.errors import VosbenchError

LOCK_FILE = ".vosbench.lock"


class OutBusy(VosbenchError):
    """Another process holds the lock of this output folder."""


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        text = ""
    return text or "another process"


def _new_folders(out: Path) -> list[Path]:
    """``out`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    for p in (out, *out.parents):
        if p.exists():
            break
        missing.append(p)
    return missing


@contextlib.contextmanager
def out_lock(out: str | os.PathLike, verb: str) -> Iterator[None]:
    """Hold ``out``'s lock while the block runs (``out`` is created where missing); another
    process holding it is an :class:`OutBusy` naming it, at once (no waiting). An ``out`` that
    exists and is not a folder is left to the verb's own check."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        yield
        return
    created = _new_folders(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_FILE
    lock = _acquire(path, out)
    ok = False
    try:
        with open(path, "r+", encoding="utf-8") as fh:  # in place: the locked file must keep its inode
            fh.write(f"vosbench {verb}, pid {os.getpid()} on {socket.gethostname()}, "
                     f"since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        yield
        ok = True
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        lock.release()
        if not ok:  # a failed run leaves no folder it created (where nothing else was written in it)
            for folder in created:
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if empty


def _acquire(path: Path, out: Path):
    from filelock import FileLock, Timeout

    for _ in range(3):
        lock = FileLock(path)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise OutBusy(f"{out}: another run is writing into this --out ({_holder(path)}); "
                          "wait for it to finish or choose another --out") from None
        if path.exists():
            return lock
        lock.release()  # the previous holder removed the file we opened: take the new one
    raise OutBusy(f"{out}: cannot take this --out's lock ({path} keeps disappearing)")
