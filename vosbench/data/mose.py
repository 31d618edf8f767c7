"""The MOSE layout (ICCV 2023), read lazily: YouTube-VOS-style folders without a meta file.

::

    ROOT/<split>/JPEGImages/<video>/00000.jpg ...
    ROOT/<split>/Annotations/<video>/00000.png ...   palette PNGs; train: every frame, valid: the first

Every object is in the first frame's annotation; videos are the folders of ``JPEGImages`` in
name order.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

from vosbench.data.davis import VideoSequence
from vosbench.data.frames import FRAME_SUFFIXES, list_frame_files
from vosbench.data.names import check_name
from vosbench.errors import DataError

MOSE_SPLITS = ("train", "valid", "test")


def _video_folders(folder: Path) -> list[str]:
    try:
        names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        raise DataError(f"{folder}: cannot list the videos ({exc.strerror or exc})") from None
    return [check_name(n, str(folder), "video name") for n in names]


class SplitLayout:
    """``ROOT/<split>/{JPEGImages,Annotations}/<video>/``: the folder layout MOSE and LVOS share."""

    def __init__(self, root: str | os.PathLike, split: str):
        self.root = Path(root)
        self.split = split
        self.split_dir = self.root / split

    @property
    def image_dir(self) -> Path:
        return self.split_dir / "JPEGImages"

    @property
    def annotation_dir(self) -> Path:
        return self.split_dir / "Annotations"

    def __len__(self) -> int:
        return len(self.sequence_names)

    def __iter__(self) -> Iterator[VideoSequence]:
        for name in self.sequence_names:
            yield self.sequence(name)

    def _files(self, name: str, listed_in: str) -> tuple[tuple[Path, ...], dict[str, Path]]:
        """(frame paths, annotation stem -> path) of one video; a DataError when it has no frames."""
        frames = list_frame_files(self.image_dir / name, FRAME_SUFFIXES)
        if not frames:
            raise DataError(f"{self.image_dir / name}: no frames for video {name!r}{listed_in}")
        return tuple(frames), {p.stem: p for p in list_frame_files(self.annotation_dir / name, (".png",))}


class MoseDataset(SplitLayout):
    """One split of a MOSE root."""

    def __init__(self, root: str | os.PathLike, split: str = "train"):
        super().__init__(root, split)
        if not self.image_dir.is_dir():
            raise DataError(f"{self.image_dir}: MOSE frames folder not found (expected ROOT/<split>/JPEGImages/<video>/)")

    @cached_property
    def sequence_names(self) -> list[str]:
        names = _video_folders(self.image_dir)
        if not names:
            raise DataError(f"{self.image_dir}: no video folders")
        return names

    def sequence(self, name: str) -> VideoSequence:
        frames, anns = self._files(name, "")
        return VideoSequence(name=name, frame_paths=frames, annotation_paths=anns)
