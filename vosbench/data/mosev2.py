"""The MOSEv2 layout (2025), read lazily: MOSE's folders plus a ``meta.json`` per split.

::

    ROOT/<split>/JPEGImages/<video>/00000.jpg ...
    ROOT/<split>/Annotations/<video>/00000.png ...   palette PNGs; train: every frame, valid: the first
    ROOT/<split>/meta.json    {"videos": {"<video>": {"length": T, "objects": {"1": {...}, ...} or ["1", ...],
                                                       "height": H, "width": W, ...}}}

``length`` is the video's frame count and ``objects`` its objects (the ids scored by the MOSEv2
scorer, whatever the annotations hold). A YouTube-VOS ``meta.json`` has no ``length`` and lists
each object's ``frames``; :func:`is_mosev2_meta` tells them apart. Videos are the folders of
``JPEGImages`` in name order; each needs a ``meta.json`` entry.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from vosbench.data.davis import VideoSequence
from vosbench.data.mose import MoseDataset
from vosbench.data.names import check_name, json_line
from vosbench.data.youtube import read_videos_json
from vosbench.errors import DataError

MOSEV2_SPLITS = ("train", "valid", "test")
META_FILE = "meta.json"


@dataclass(frozen=True)
class Mosev2Video:
    """One ``meta.json`` entry: frame count and object ids (height/width when given)."""

    length: int
    objects: tuple[int, ...]
    height: int | None = None
    width: int | None = None


@dataclass(frozen=True)
class Mosev2Sequence(VideoSequence):
    """A :class:`VideoSequence` with its ``meta.json`` entry."""

    meta: Mosev2Video = field(default_factory=lambda: Mosev2Video(0, ()))

    @property
    def object_ids(self) -> list[int]:  # type: ignore[override]
        return list(self.meta.objects)


def _object_ids(objects, bad: str) -> tuple[int, ...]:
    keys = list(objects) if isinstance(objects, (dict, list)) else None
    if keys is None:
        raise DataError(bad)
    ids = []
    for key in keys:
        try:
            oid = int(key)
        except (TypeError, ValueError):
            raise DataError(bad) from None
        if isinstance(key, bool) or not 0 < oid < 255:
            raise DataError(f"{bad}: object id {key!r} is not an integer in 1..254")
        ids.append(oid)
    if len(set(ids)) != len(ids):
        raise DataError(f"{bad}: an object id is listed twice")
    return tuple(sorted(ids))


def _positive_int(value, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(f"{what} must be a positive integer, got {value!r}")
    return value


def read_mosev2_meta(path: str | os.PathLike) -> dict[str, Mosev2Video]:
    """Read a MOSEv2 ``meta.json`` into video -> :class:`Mosev2Video`; malformed files: one DataError line."""
    path = Path(path)
    text, videos = read_videos_json(path, "MOSEv2 meta.json")
    out = {}
    for vid, entry in videos.items():
        where = f"{path}:{json_line(text, vid)}"
        check_name(vid, where, "video name")
        if not isinstance(entry, dict) or "length" not in entry or "objects" not in entry:
            raise DataError(f'{where}: video {vid!r} needs "length" and "objects"')
        length = _positive_int(entry["length"], f'{where}: video {vid!r} "length"')
        objects = _object_ids(entry["objects"], f'{where}: video {vid!r} "objects" must map or list integer ids')
        height = _positive_int(entry.get("height"), f'{where}: video {vid!r} "height"')
        width = _positive_int(entry.get("width"), f'{where}: video {vid!r} "width"')
        out[vid] = Mosev2Video(int(length), objects, height, width)  # type: ignore[arg-type]
    return out


def is_mosev2_meta(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a MOSEv2 ``meta.json``: its video entries carry ``length`` and no
    object lists ``frames`` (YouTube-VOS's). Unreadable or empty files are not."""
    try:
        videos = json.loads(Path(path).read_text(encoding="utf-8-sig")).get("videos")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return False
    if not isinstance(videos, dict) or not videos:
        return False
    for entry in videos.values():
        if not isinstance(entry, dict) or "length" not in entry:
            return False
        objects = entry.get("objects")
        if isinstance(objects, dict) and any(isinstance(o, dict) and "frames" in o for o in objects.values()):
            return False
    return True


def frame_order(paths) -> list[Path]:
    """Paths in the MOSEv2 scorer's order: by the integer value of numeric stems, else by name."""
    paths = list(paths)
    if paths and all(p.stem.isdigit() for p in paths):
        return sorted(paths, key=lambda p: (int(p.stem), p.stem))
    return sorted(paths, key=lambda p: p.name)


class Mosev2Dataset(MoseDataset):
    """One split of a MOSEv2 root (see the module docstring); ``meta.json`` is read on opening."""

    def __init__(self, root: str | os.PathLike, split: str = "train"):
        super().__init__(root, split)
        self.meta: dict[str, Mosev2Video] = read_mosev2_meta(self.meta_path)

    @property
    def meta_path(self) -> Path:
        return self.split_dir / META_FILE

    def entry(self, name: str) -> Mosev2Video:
        """The ``meta.json`` entry of ``name``; a one-line DataError when it has none."""
        entry = self.meta.get(name)
        if entry is None:
            raise DataError(f"{self.meta_path}: no entry for video {name!r} (its frames are in {self.image_dir / name})")
        return entry

    def sequence(self, name: str) -> Mosev2Sequence:
        entry = self.entry(name)
        frames, anns = self._files(name, "")
        frames = tuple(frame_order(frames))
        if len(frames) != entry.length:
            raise DataError(
                f"{self.image_dir / name}: {len(frames)} frames but {self.meta_path.name} gives length {entry.length} for video {name!r}"
            )
        return Mosev2Sequence(name=name, frame_paths=frames, annotation_paths=anns, meta=entry)
