"""The LVOS layout (long-term VOS, ICCV 2023), read lazily.

::

    ROOT/<split>/JPEGImages/<video>/00000001.jpg ...
    ROOT/<split>/Annotations/<video>/00000001.png ...
    ROOT/<split>/<split>_meta.json
    ROOT/<split>/unseen_videos.txt                    optional: videos of unseen categories

``<split>_meta.json`` is ``{"videos": {vid: {"objects": {"1": {"frame_range": {"start": "00000001",
"end": "00000456", "frame_nums": 92}}}}}}``: each object is present from ``start`` (its first
annotation, inclusive) to ``end`` (exclusive), as the LVOS evaluation reads it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from vosbench.data.youtube import LateObjectSequence, read_video_objects
from vosbench.data.mose import SplitLayout
from vosbench.errors import DataError

LVOS_SPLITS = ("train", "valid", "test")
UNSEEN_FILE = "unseen_videos.txt"


@dataclass(frozen=True)
class LvosObject:
    """One object of a video: present on frames ``start <= frame < end`` (frame names compared as numbers)."""

    id: int
    start: str
    end: str
    frame_nums: int | None = None

    def covers(self, stem: str) -> bool:
        return int(self.start) <= int(stem) < int(self.end)

    @property
    def first(self) -> str:
        return self.start


@dataclass(frozen=True)
class LvosSequence(LateObjectSequence):
    """A :class:`LateObjectSequence` whose objects have frame ranges (from LVOS's meta file)."""

    objects: dict[int, LvosObject] = field(default_factory=dict)


def _lvos_object(vid: str, oid: int, obj: dict, where: Callable[[str], str]) -> LvosObject:
    rng = obj["frame_range"]
    start, end = str(rng["start"]), str(rng["end"])
    int(start), int(end)  # frame names are numbers
    nums = rng.get("frame_nums")
    return LvosObject(oid, start, end, None if nums is None else int(nums))


def _parse_meta(path: Path) -> dict[str, dict[int, LvosObject]]:
    return read_video_objects(path, "LVOS meta file", 'a "frame_range" {"start", "end"} of frame names',
                              _lvos_object)


class LvosDataset(SplitLayout):
    """One split of an LVOS root."""

    def __init__(self, root: str | os.PathLike, split: str = "valid"):
        super().__init__(root, split)
        self.meta_path = self.split_dir / f"{split}_meta.json"
        if not self.meta_path.is_file():
            raise DataError(f"{self.meta_path}: LVOS meta file not found")

    @cached_property
    def meta(self) -> dict[str, dict[int, LvosObject]]:
        return _parse_meta(self.meta_path)

    @cached_property
    def unseen_videos(self) -> frozenset[str] | None:
        """Videos of categories unseen in training (``unseen_videos.txt``), None when the file is absent."""
        path = self.split_dir / UNSEEN_FILE
        if not path.is_file():
            return None
        try:
            return frozenset(ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip())
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: cannot read ({exc})") from None

    @cached_property
    def sequence_names(self) -> list[str]:
        if not self.meta:
            raise DataError(f"{self.meta_path}: lists no videos")
        return sorted(self.meta)

    def sequence(self, name: str) -> LvosSequence:
        if name not in self.meta:
            raise DataError(f"{self.meta_path}: no video {name!r}")
        frames, anns = self._files(name, f" listed in {self.meta_path.name}")
        return LvosSequence(name=name, frame_paths=frames, annotation_paths=anns, objects=self.meta[name])
