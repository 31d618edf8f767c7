"""Names are data, not paths: the one check of a sequence, video, frame or item name read from a file.

Split files, ``meta.json``, manifests, archive members and results folders all hand vosbench
names that it later joins onto an output folder (``<out>/<seq>/<frame>.png``). A name with a
separator, a ``..``, an absolute or drive path, or a control character would let a data file
write (or, with ``--overwrite``, delete) outside that folder, so every reader refuses it here,
naming the file and the line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from vosbench.errors import DataError

BOM = "\ufeff"
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a plain file-name component, or None when it is one."""
    if not name:
        return "is empty"
    if name in (".", ".."):
        return "is a relative path"
    if "/" in name or "\\" in name:
        return "has a path separator"
    if _DRIVE.match(name):
        return "is a drive path"
    m = _CONTROL.search(name)
    if m:
        return f"has a control character (U+{ord(m.group()):04X})"
    return None


def check_name(name: str, where: str, what: str = "name") -> str:
    """``name`` if it is a plain name, else a :class:`DataError` naming ``where`` (``file:line``)."""
    problem = name_problem(name)
    if problem is not None:
        raise DataError(f"{where}: {what} {name!r} {problem}; names in data files must be plain names, not paths")
    return name


def read_name_lines(path: str | os.PathLike, what: str = "sequence name") -> list[str]:
    """The names of a one-name-per-line file (``#`` comments and blank lines skipped, a UTF-8 BOM
    dropped), each checked with :func:`check_name`; unreadable files are a :class:`DataError`."""
    try:
        with open(path, encoding="utf-8-sig", newline=None) as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the split file ({getattr(exc, 'strerror', None) or exc})") from None
    return [check_name(name, f"{path}:{line}", what) for line, name in _numbered(text)]


def _numbered(text: str) -> Iterator[tuple[int, str]]:
    for i, raw in enumerate(text.split("\n"), start=1):
        name = raw.strip(" \t\r\f\v")
        if name and not name.startswith("#"):
            yield i, name


def json_line(text: str, key: str) -> int:
    """The line of ``text`` (a JSON document) where the string ``key`` first appears as a quoted string."""
    import json

    at = -1
    for quoted in (json.dumps(key, ensure_ascii=False), json.dumps(key), key):
        at = text.find(quoted)
        if at >= 0:
            break
    return text.count("\n", 0, at) + 1 if at >= 0 else 1
