"""The MOSEv2 layout (2025), read lazily: MOSE's folders plus a ``meta.json`` per split.

::

    ROOT/<split>/JPEGImages/<video>/00000.jpg ...
    ROOT/<split>/Annotations/<video>/00000.png ...   palette PNGs; train: every frame, valid: the first
    ROOT/<split>/meta.json    {"videos": {"<video>": {"length": T, "objects": {"1": {...}, ...} or ["1", ...],
                                                       "height": H, "width": W, ...}}}

``length`` is the video's frame count and ``objects`` its objects (the ids scored by the MOSEv2
scorer, whatever the annotations hold). A YouTube-VOS ``meta.json`` has no ``length``;
:func:`is_mosev2_meta` tells them apart. Videos are the folders of
``JPEGImages`` in name order; each needs a ``meta.json`` entry.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vosbench.data.archive import extracted_archive
from vosbench.data.davis import VideoSequence
from vosbench.data.imageio import VOID_ID, read_frame
from vosbench.data.mose import MoseDataset
from vosbench.data.names import check_name, json_line
from vosbench.data.prepare import add_split, prepare_split_archives
from vosbench.data.youtube import _find_split_dirs as find_split_dirs
from vosbench.data.youtube import read_videos_json
from vosbench.errors import DataError
from vosbench.progress import Progress, ensure_progress

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
    """Whether ``path`` is a MOSEv2 ``meta.json``: every video entry gives its ``length`` (a
    YouTube-VOS ``meta.json`` never does). Unreadable or empty files are not."""
    try:
        videos = json.loads(Path(path).read_text(encoding="utf-8-sig")).get("videos")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return False
    if not isinstance(videos, dict) or not videos:
        return False
    return all(isinstance(entry, dict) and "length" in entry for entry in videos.values())


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
        if len(frames) != entry.length:
            raise DataError(
                f"{self.image_dir / name}: {len(frames)} frames but {self.meta_path.name} gives length {entry.length} for video {name!r}"
            )
        return Mosev2Sequence(name=name, frame_paths=frames, annotation_paths=anns, meta=entry)


def _check_video(ds: Mosev2Dataset, name: str, full: bool) -> list[str]:
    """Problems of one video: its meta entry, frame count, annotations (train: every frame; else
    the first), first annotation's size and ids; with ``full`` every frame and mask decoded."""
    try:
        seq = ds.sequence(name)
    except DataError as exc:
        return [str(exc)]
    stems = set(seq.frame_names)
    stray = sorted(set(seq.annotation_paths) - stems)
    if stray:
        return [f"{ds.annotation_dir / name}: annotations without frames: {', '.join(stray[:5])}"]
    if ds.split == "train" and len(seq.annotation_paths) != seq.num_frames:
        return [f"{ds.annotation_dir / name}: {len(seq.annotation_paths)} annotations for {seq.num_frames} frames"]
    problems: list[str] = []
    try:
        first = seq.first_mask()  # also checks its size against the first frame's
        extra = sorted(set(int(i) for i in np.unique(first)) - {0, VOID_ID} - set(seq.meta.objects))
        if extra:
            problems.append(f"{seq.annotation_paths[seq.frame_names[0]]}: object id(s) {', '.join(map(str, extra))} "
                            f"not in {ds.meta_path.name}'s objects for video {name!r}")
        if full:
            for i in range(1, seq.num_frames):
                seq.mask(i)
            for i, path in enumerate(seq.frame_paths):
                shape = read_frame(path).shape[:2]
                if shape != seq.size:
                    problems.append(f"{path}: frame size {shape[1]}x{shape[0]} differs from {seq.size[1]}x{seq.size[0]}")
    except DataError as exc:
        problems.append(str(exc))
    return problems


def validate_mosev2(ds: Mosev2Dataset, *, full: bool = False, progress: Progress | None = None) -> list[str]:
    """Every problem of a MOSEv2 split (empty: valid): each video as :func:`_check_video` says, and
    ``meta.json`` videos without frames."""
    progress = ensure_progress(progress)
    names = ds.sequence_names
    progress.start(f"validate {ds.split}", total=len(names))
    problems = [f"{ds.meta_path}: video {v!r} has no frames in {ds.image_dir}" for v in sorted(set(ds.meta) - set(names))]
    for name in names:
        problems.extend(_check_video(ds, name, full))
        progress.advance()
    return problems


def build_mosev2_manifest(root: str | os.PathLike, *, extra: dict | None = None) -> dict:
    """Describe every split of a MOSEv2 root: videos, frame counts, sizes, annotated frames, objects."""
    root = Path(root)
    manifest: dict = {"dataset": "mosev2", "splits": {}, "sequences": {}}
    for split in MOSEV2_SPLITS:
        if not (root / split / META_FILE).is_file():
            continue
        add_split(manifest, split, Mosev2Dataset(root, split))
    if extra:
        manifest.update(extra)
    return manifest


def prepare_mosev2(root: str | os.PathLike, archives: Sequence[str | os.PathLike], progress: Progress | None = None,
                   *, full: bool = True) -> dict:
    """Extract MOSEv2 archives (zip or tar, e.g. ``train.tar.gz``, ``valid.tar.gz``; each holding
    ``train/``, ``valid/`` or ``test/`` at its top or one folder down) into ``root``, validate,
    write ``root/manifest.json``. Every archive is extracted beside ``root`` and validated
    (``full``: every frame and mask decoded) before any split is merged: one bad archive changes nothing."""
    progress = ensure_progress(progress)

    def validate_split(arc: Path, split: str, folder: Path) -> list[str]:
        meta = folder / META_FILE
        if not is_mosev2_meta(meta):
            raise DataError(f"{arc}: {split}/{META_FILE} {'missing' if not meta.is_file() else 'not a MOSEv2 meta.json (no video lengths)'}")
        return validate_mosev2(Mosev2Dataset(folder.parent, split), full=full, progress=progress)

    return prepare_split_archives(Path(root), [Path(a) for a in archives], progress, what="MOSEv2", extract=extracted_archive,
                                  find_splits=find_split_dirs, validate_split=validate_split, build=build_mosev2_manifest)
