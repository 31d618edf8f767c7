"""The one listing of a sequence's frames (or its annotations, depth maps): files in frame order.

Every reader of a sequence folder lists it here, so inference, evaluation ("the last frame"),
training, submissions and fingerprints agree on which files make the video and in what order:

- a frame is named by its number: the stem ends in ASCII digits (``00000.jpg``, or ``0.jpg`` ...
  ``11.jpg``, or ``frame_0.png`` ... ``frame_11.png``), every file of the folder with the same text
  before them; frames are ordered by that number, so ``10.jpg`` comes after ``9.jpg``; any other
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


def frame_number(path: Path) -> tuple[str, int]:
    """(the text before the number, the frame number) of ``path``'s stem (``frame_017`` -> ``("frame_", 17)``);
    DataError when the stem does not end in a number."""
    stem = path.stem
    digits = len(stem) - len(stem.rstrip("0123456789"))
    if not stem.isascii() or digits == 0:
        raise DataError(f"{path}: frame file name {stem!r} is not a frame number; name frames by their "
                        "number (00000.jpg, 00001.jpg, ...) so their order is known")
    return stem[:-digits], int(stem[-digits:])


def list_frame_files(
    folder: str | os.PathLike, suffixes: tuple[str, ...] = FRAME_SUFFIXES, exclude: str | os.PathLike | None = None
) -> list[Path]:
    """The files of ``folder`` with one of ``suffixes`` (case-insensitive), ordered by frame number;
    ``exclude`` (e.g. a given mask kept beside the frames) is not listed.

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
    skip = Path(exclude).resolve() if exclude is not None else None
    by_number: dict[int, Path] = {}
    prefixes: dict[str, str] = {}  # the one text before the numbers -> the first name that had it
    for name in names:
        path = folder / name
        if name.startswith(".") or path.suffix.lower() not in suffixes or (skip is not None and path.resolve() == skip):
            continue
        check_regular_file(path, "frame file" if suffixes == FRAME_SUFFIXES else "file")
        prefix, n = frame_number(path)
        if prefixes and prefix not in prefixes:
            a, b = sorted((next(iter(prefixes.values())), name))
            raise DataError(f"{folder}: frame files named two ways ({a} and {b}); name every frame the same way")
        prefixes.setdefault(prefix, name)
        if n in by_number:
            a, b = sorted((by_number[n].name, name))
            raise DataError(f"{folder}: two files for frame {n} ({a} and {b}); keep one of them")
        by_number[n] = path
    return [by_number[n] for n in sorted(by_number)]
