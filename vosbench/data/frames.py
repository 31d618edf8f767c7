"""The one listing of a sequence's frames (or its annotations, depth maps): files in frame order.

Every reader of a sequence folder lists it here, so inference, evaluation ("the last frame"),
training, submissions and fingerprints agree on which files make the video and in what order:

- a frame is named by its number: the stem is ASCII digits (``00000.jpg``, or ``0.jpg`` ...
  ``11.jpg``); frames are ordered by that number, so ``10.jpg`` comes after ``9.jpg``; any other
  name is refused (its place in the video would be a guess);
- two files of one frame number (``00000.jpg`` and ``00000.png``, or ``0.jpg`` and ``00.jpg``)
  are refused: taking both would make a 2T-frame video, taking one would be a guess;
- a listed name that is not a regular file (a FIFO, a device, a link to ``/dev/zero``, a
  folder, a broken link) is refused before anything is read.

Hidden files (``.DS_Store``, ``._00000.jpg``) and files of other suffixes are ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

from vosbench.errors import DataError
from vosbench.fsutil import check_regular_file

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


def frame_number(path: Path) -> int:
    """The frame number of ``path`` (its stem as an integer); DataError when the stem is not one."""
    stem = path.stem
    if not (stem.isascii() and stem.isdigit()):
        raise DataError(f"{path}: frame file name {stem!r} is not a frame number; name frames by their "
                        "number (00000.jpg, 00001.jpg, ...) so their order is known")
    return int(stem)


def list_frame_files(folder: str | os.PathLike, suffixes: tuple[str, ...] = FRAME_SUFFIXES) -> list[Path]:
    """The files of ``folder`` with one of ``suffixes`` (case-insensitive), ordered by frame number.

    A missing folder gives ``[]``. Raises a one-line DataError for a name that is not a frame
    number, two files of one frame number, or an entry that is not a regular file.
    """
    folder = Path(folder)
    try:
        names = [p.name for p in folder.iterdir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:  # e.g. no read permission
        raise DataError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from None
    by_number: dict[int, Path] = {}
    for name in names:
        path = folder / name
        if name.startswith(".") or path.suffix.lower() not in suffixes:
            continue
        check_regular_file(path, "frame file" if suffixes == FRAME_SUFFIXES else "file")
        n = frame_number(path)
        if n in by_number:
            a, b = sorted((by_number[n].name, name))
            raise DataError(f"{folder}: two files for frame {n} ({a} and {b}); keep one of them")
        by_number[n] = path
    return [by_number[n] for n in sorted(by_number)]
