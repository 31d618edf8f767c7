"""Atomic file and folder writes: a temp file in the same folder, then ``os.replace``.

Nothing half-written is ever left under the final name: on any exception the temp file is removed.

Every temp file and folder vosbench makes is named by one scheme, :func:`temp_prefix` +
random + :data:`TEMP_MARK` (+ the final suffix): ``.<final name>.<host>-<pid>-<random>.vostmp``.
A process killed with SIGKILL cannot remove its temps; :func:`sweep_temps`, which each command
calls on its output folder when it starts, removes those whose process (on this host) is gone.
An error while writing names the final path, never the temp name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from vosbench.errors import DataError


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux), else swapped back."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _give_default_mode(path: Path, directory: bool) -> None:
    """Temp files are created 0600 (folders 0700); give the final output the usual umask mode."""
    with contextlib.suppress(OSError):
        os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


TEMP_MARK = ".vostmp"


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:24] or "host"


def temp_prefix(final_name: str) -> str:
    """The start of a temp name for ``final_name``; ``tempfile`` adds the random part."""
    return f".{final_name}.{_host()}-{os.getpid()}-"


_TEMP_RE = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9]+)-(?P<pid>\d+)-[^.]*" + re.escape(TEMP_MARK) + r"(\..*)?$")


def make_temp_dir(beside: str | os.PathLike, final_name: str) -> Path:
    """A new temp folder in ``beside`` named by the temp scheme (mode 0700)."""
    return Path(tempfile.mkdtemp(prefix=temp_prefix(final_name), suffix=TEMP_MARK, dir=beside))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: the process exists under another user
        return True
    return True


def sweep_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the temp files and folders in ``folder`` left by vosbench processes of this host that
    no longer run (killed mid-write); returns what was removed. A missing folder is fine."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    host = _host()
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if m is None or m["host"] != host or _alive(int(m["pid"])):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        removed.append(path)
    return removed


def _name_final(exc: OSError, final: Path, temps: tuple[Path, ...]) -> OSError:
    """``exc`` with the final path as its filename where it named a temp path (or nothing)."""
    if exc.filename is None or Path(exc.filename) in temps:
        return OSError(exc.errno, exc.strerror or str(exc), str(final))
    return exc


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success rename it onto ``path``.

    ``suffix`` defaults to the final suffix so that libraries that pick a format from the file
    extension (PIL, OpenCV, torch) write the right format into the temp file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=f"{TEMP_MARK}{suffix}", dir=path.parent)
    except OSError as exc:
        raise _name_final(exc, path, ()) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_file():
            _give_default_mode(tmp_path, directory=False)
        os.replace(tmp_path, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(exc, OSError):
            raise _name_final(exc, path, (tmp_path,)) from None
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temp file for writing; it replaces ``path`` only if the block completes."""
    if not any(c in mode for c in "wx"):
        raise ValueError("atomic_open is for writing")
    with atomic_path(path) as tmp, open(tmp, mode.replace("x", "w"), **kwargs) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a folder under a temp name beside ``path``; rename it onto ``path`` on success.

    An existing ``path`` is replaced only after the new one is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = make_temp_dir(path.parent, path.name)
    except OSError as exc:
        raise _name_final(exc, path, ()) from None
    try:
        yield tmp
        _give_default_mode(tmp, directory=True)
        if path.exists():
            old = make_temp_dir(path.parent, path.name)  # the replaced folder, until the new one is in place
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and exc.filename is not None and Path(exc.filename).is_relative_to(tmp):
            raise OSError(exc.errno, exc.strerror or str(exc), str(path / Path(exc.filename).relative_to(tmp))) from None
        raise


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def check_regular_file(path: str | os.PathLike, what: str = "file") -> None:
    """Raise a one-line DataError unless ``path`` (links followed) is a regular file.

    Checked before reading: a FIFO named like a mask would block the read forever, and a link to
    ``/dev/zero`` would read until memory runs out. A missing file is left to the reader's message.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            raise DataError(f"{path}: {what} is a broken symbolic link") from None
        return
    except OSError:
        return  # the reader names the problem (no permission, ...)
    if not stat.S_ISREG(mode):
        raise DataError(f"{path}: {what} is {_kind(mode)}, not a regular file; remove or replace it")
