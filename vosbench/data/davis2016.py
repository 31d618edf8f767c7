"""DAVIS-2016 as distributed: one object per sequence, grey (or palette) annotations of 0 and 255.

::

    ROOT/JPEGImages/480p/<seq>/00000.jpg ...
    ROOT/Annotations/480p/<seq>/00000.png ...      0 = background, 255 = the object
    ROOT/ImageSets/480p/<split>.txt                "/JPEGImages/480p/<seq>/00000.jpg /Annotations/480p/<seq>/00000.png" per frame

The split may also be a list of names, ``ROOT/ImageSets/2016/<split>.txt`` (as shipped inside
DAVIS-2017 trainval) or ``ROOT/ImageSets/2017/<split>.txt``. Sequences are listed in the order of
their first line.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from vosbench.data.davis import RESOLUTIONS, DavisDataset
from vosbench.data.names import check_name
from vosbench.errors import DataError

# where a split may be listed, most specific first
SPLIT_FOLDERS = ("480p", "2016", "2017")


def davis2016_split_file(root: str | os.PathLike, split: str) -> Path | None:
    """The first of ROOT/ImageSets/{480p,2016,2017}/<split>.txt that exists, or None."""
    for folder in SPLIT_FOLDERS:
        path = Path(root) / "ImageSets" / folder / f"{split}.txt"
        if path.is_file():
            return path
    return None


def parse_split_lines(text: str, source: Path) -> list[str]:
    """Sequence names of a split file: plain names, or DAVIS-2016 frame lines (``/JPEGImages/480p/<seq>/<frame>``)."""
    names: dict[str, None] = {}
    for number, line in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        first = line.split()[0]
        parts = [p for p in first.split("/") if p]
        name = parts[-2] if len(parts) >= 3 else first
        names[check_name(name, f"{source}:{number}", "sequence name")] = None
    return list(names)


class Davis2016Dataset(DavisDataset):
    """A DAVIS-2016 root: :class:`DavisDataset` with the 2016 split files."""

    def __init__(self, root: str | os.PathLike, split: str = "val", resolution: str = "480p"):
        self.root = Path(root)
        self.split = split
        self.resolution = resolution
        if not self.root.is_dir():
            raise DataError(f"{self.root}: dataset root not found")
        if resolution not in RESOLUTIONS:
            raise DataError(f"unknown resolution {resolution!r}; expected one of {', '.join(RESOLUTIONS)}")
        found = davis2016_split_file(self.root, split)
        if found is None:
            tried = ", ".join(f"ImageSets/{f}/{split}.txt" for f in SPLIT_FOLDERS)
            raise DataError(f"{self.root}: split file not found (tried {tried})")
        self.split_file = found

    @cached_property
    def sequence_names(self) -> list[str]:
        try:
            text = self.split_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{self.split_file}: cannot read the split file ({exc})") from None
        names = parse_split_lines(text, self.split_file)
        if not names:
            raise DataError(f"{self.split_file}: lists no sequences")
        return names
