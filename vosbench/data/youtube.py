"""The YouTube-VOS 2019 layout, read lazily, and `prepare youtube-vos`.

::

    ROOT/train/JPEGImages/<vid>/00000.jpg, 00005.jpg ...
    ROOT/train/Annotations/<vid>/00000.png ...     palette PNGs on every frame
    ROOT/train/meta.json
    ROOT/valid/JPEGImages/<vid>/...
    ROOT/valid/Annotations/<vid>/<stem>.png        only where an object first appears
    ROOT/valid/meta.json
    ROOT/test/...                                  as valid/ (challenge test set)

``meta.json`` is ``{"videos": {vid: {"objects": {"1": {"category": "cat", "frames": ["00000", ...]}}}}}``.
Objects may first appear after frame 0; :attr:`YouTubeSequence.first_appearance` gives the frame
index that introduces each object.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TypeVar

import numpy as np

from vosbench.data.archive import extracted_zip
from vosbench.data.davis import VideoSequence
from vosbench.data.frames import FRAME_SUFFIXES, list_frame_files
from vosbench.data.imageio import image_size, read_frame, read_mask
from vosbench.data.names import check_name, json_line
from vosbench.data.prepare import add_split, manifest_summary, prepare_split_archives
from vosbench.errors import DataError
from vosbench.progress import Progress, ensure_progress

log = logging.getLogger(__name__)
ObjectT = TypeVar("ObjectT")

YOUTUBE_SPLITS = ("train", "valid", "test")  # valid and test: annotations only at first appearance


@dataclass(frozen=True)
class YouTubeObject:
    """One annotated object of a video, as listed in ``meta.json``."""

    id: int
    frames: tuple[str, ...]  # frame stems where the object is visible (meta.json order, sorted)
    category: str | None = None

    @property
    def first(self) -> str:
        """The stem of the frame the object first appears in."""
        return self.frames[0]


@dataclass(frozen=True)
class LateObjectSequence(VideoSequence):
    """A :class:`VideoSequence` whose objects (each with a ``first`` frame stem) may appear after frame 0.

    YouTube-VOS and LVOS sequences are this, with their own object records."""

    objects: dict = field(default_factory=dict)  # object id -> record with a ``first`` frame stem

    @cached_property
    def object_ids(self) -> list[int]:
        """Every object of the video (from its meta file), not only those in the first frame."""
        return sorted(self.objects)

    @cached_property
    def first_appearance(self) -> dict[int, int]:
        """Object id -> index of the first frame it appears in (its annotation lives there)."""
        index = {stem: i for i, stem in enumerate(self.frame_names)}
        out = {}
        for oid, obj in sorted(self.objects.items()):
            if obj.first not in index:
                raise DataError(
                    f"sequence {self.name!r}: object {oid} first appears in frame {obj.first}, which has no image"
                )
            out[oid] = index[obj.first]
        return out


@dataclass(frozen=True)
class YouTubeSequence(LateObjectSequence):
    """A :class:`LateObjectSequence` read from YouTube-VOS's ``meta.json``."""

    objects: dict[int, YouTubeObject] = field(default_factory=dict)

    def objects_starting_at(self, i: int) -> list[int]:
        """Ids of the objects introduced by frame ``i``'s annotation."""
        return [oid for oid, start in self.first_appearance.items() if start == i]

    @property
    def categories(self) -> dict[int, str | None]:
        return {oid: obj.category for oid, obj in self.objects.items()}


def read_videos_json(path: Path, what: str) -> tuple[str, dict]:
    """(text, the ``"videos"`` mapping) of a meta file; a missing, non-JSON or mapping-less file is
    one DataError line (``what`` names the file when it is missing)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
        meta = json.loads(text)
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    videos = meta.get("videos") if isinstance(meta, dict) else None
    if not isinstance(videos, dict):
        raise DataError(f'{path}: expected an object with a "videos" mapping')
    return text, videos


def read_video_objects(
    path: Path, what: str, expected: str, parse: Callable[[str, int, dict, Callable[[str], str]], ObjectT]
) -> dict[str, dict[int, ObjectT]]:
    """Read a meta file of YouTube-VOS's layout, ``{"videos": {vid: {"objects": {"<id>": {...}}}}}``
    (YouTube-VOS's ``meta.json``, LVOS's ``<split>_meta.json``), into vid -> {object id -> parsed},
    refusing malformed files with one line. Video names are checked, ids must be integers in 1..254;
    ``parse(vid, oid, entry, where)`` builds one object (``where(s)``: "path:line" of the string
    ``s``, for its own errors) and raises TypeError / ValueError / KeyError for an entry not as
    ``expected`` says (e.g. 'a "frames" list'). ``what`` names the file when it is missing."""
    text, videos = read_videos_json(path, what)

    def where(s: str) -> str:
        return f"{path}:{json_line(text, s)}"

    out: dict[str, dict[int, ObjectT]] = {}
    for vid, entry in videos.items():
        vid = str(vid)
        check_name(vid, where(vid), "video name")
        objects = entry.get("objects") if isinstance(entry, dict) else None
        if not isinstance(objects, dict):
            raise DataError(f'{path}: video {vid!r} has no "objects" mapping')
        parsed = {}
        for key, obj in objects.items():
            bad = f"{path}: video {vid!r} object {key!r}: expected an integer id with {expected}"
            try:
                oid = int(key)
            except (TypeError, ValueError):
                raise DataError(bad) from None
            if not 0 < oid < 255:
                raise DataError(f"{path}: video {vid!r}: object id {oid} outside 1..254")
            try:
                parsed[oid] = parse(vid, oid, obj, where)
            except (TypeError, ValueError, KeyError):
                raise DataError(bad) from None
        out[vid] = parsed
    return out


def _youtube_object(vid: str, oid: int, obj: dict, where: Callable[[str], str]) -> YouTubeObject:
    frames = tuple(sorted(str(f) for f in obj["frames"]))
    if not frames:
        raise DataError(f"{where(vid)}: video {vid!r} object {oid} lists no frames")
    for f in frames:
        check_name(f, where(f), f"video {vid!r} object {oid}: frame name")
    return YouTubeObject(oid, frames, obj.get("category"))


def _parse_meta(path: Path) -> dict[str, dict[int, YouTubeObject]]:
    """Read ``meta.json`` into vid -> {object id -> YouTubeObject}, refusing malformed files."""
    return read_video_objects(path, "meta.json", 'a "frames" list', _youtube_object)


class YouTubeVOS:
    """One split (``train`` or ``valid``) of a YouTube-VOS 2019 root."""

    def __init__(self, root: str | os.PathLike, split: str = "train"):
        self.root = Path(root)
        self.split = split
        if split not in YOUTUBE_SPLITS:
            raise DataError(
                f"unknown YouTube-VOS split {split!r}; expected one of {', '.join(YOUTUBE_SPLITS)}"
            )
        self.split_dir = self.root / split
        self.meta_path = self.split_dir / "meta.json"
        if not self.split_dir.is_dir():
            raise DataError(f"{self.split_dir}: YouTube-VOS split folder not found")

    @cached_property
    def meta(self) -> dict[str, dict[int, YouTubeObject]]:
        return _parse_meta(self.meta_path)

    @property
    def image_dir(self) -> Path:
        return self.split_dir / "JPEGImages"

    @property
    def annotation_dir(self) -> Path:
        return self.split_dir / "Annotations"

    @cached_property
    def sequence_names(self) -> list[str]:
        if not self.meta:
            raise DataError(f"{self.meta_path}: lists no videos")
        return sorted(self.meta)

    def __len__(self) -> int:
        return len(self.sequence_names)

    def __iter__(self) -> Iterator[YouTubeSequence]:
        for name in self.sequence_names:
            yield self.sequence(name)

    def sequence(self, name: str) -> YouTubeSequence:
        check_name(name, str(self.meta_path), "video name")
        if name not in self.meta:
            raise DataError(f"{self.meta_path}: no video {name!r}")
        frames = list_frame_files(self.image_dir / name, FRAME_SUFFIXES)
        if not frames:
            raise DataError(f"{self.image_dir / name}: no frames for video {name!r} listed in meta.json")
        anns = {p.stem: p for p in list_frame_files(self.annotation_dir / name, (".png",))}
        return YouTubeSequence(
            name=name, frame_paths=tuple(frames), annotation_paths=anns, objects=self.meta[name]
        )

    def _check_video(self, name: str, full: bool) -> list[str]:
        frames = list_frame_files(self.image_dir / name, FRAME_SUFFIXES)
        if not frames:
            return [f"{self.image_dir / name}: no frames for video {name!r}"]
        problems: list[str] = []
        anns = {p.stem: p for p in list_frame_files(self.annotation_dir / name, (".png",))}
        stems = [p.stem for p in frames]
        stray = sorted(set(anns) - set(stems))
        if stray:
            problems.append(
                f"{self.annotation_dir / name}: annotations without frames: {', '.join(stray[:5])}"
            )
        if self.split == "train" and len(anns) != len(frames):
            problems.append(f"{self.annotation_dir / name}: {len(anns)} annotations for {len(frames)} frames")
        starts: dict[str, list[int]] = {}
        for oid, obj in sorted(self.meta[name].items()):
            missing = sorted(set(obj.frames) - set(stems))
            if missing:
                problems.append(
                    f"{self.meta_path}: video {name!r} object {oid} lists frames without images: {', '.join(missing[:5])}"
                )
                continue
            if obj.frames[0] not in anns:
                problems.append(
                    f"{self.annotation_dir / name / (obj.frames[0] + '.png')}: annotation missing "
                    f"for object {oid}'s first appearance"
                )
                continue
            starts.setdefault(obj.frames[0], []).append(oid)
        if problems:
            return problems
        try:
            size = image_size(frames[0])
            for stem, p in sorted(anns.items()):
                if not (full or stem in starts):
                    continue
                m = read_mask(p)
                if m.shape != size:
                    problems.append(
                        f"{p}: mask size {m.shape[1]}x{m.shape[0]} differs from frame size {size[1]}x{size[0]}"
                    )
                    continue
                absent = [oid for oid in starts.get(stem, []) if not np.any(m == oid)]
                if absent:
                    log.warning("%s: objects %s are listed as appearing here but have no pixels", p, absent)
            if full:
                for f in frames:
                    fr = read_frame(f)
                    if fr.shape[:2] != size:
                        problems.append(
                            f"{f}: frame size {fr.shape[1]}x{fr.shape[0]} differs from {size[1]}x{size[0]}"
                        )
        except DataError as exc:
            problems.append(str(exc))
        return problems

    def validate(self, *, full: bool = False, progress: Progress | None = None) -> list[str]:
        """Check the split; return every problem found (empty list = valid).

        Every video in ``meta.json`` has frames; every object's first-appearance frame has an image
        and an annotation of the frame's size; in ``train`` every frame is annotated. With ``full``,
        every frame and mask is decoded.
        """
        progress = ensure_progress(progress)
        progress.start(f"validate {self.split}", total=len(self.sequence_names))
        problems: list[str] = []
        for name in self.sequence_names:
            problems.extend(self._check_video(name, full))
            progress.advance()
        return problems


def build_youtube_manifest(root: str | os.PathLike, *, extra: dict | None = None) -> dict:
    """Describe every split of a YouTube-VOS root: videos, frame counts, sizes, objects, first appearances."""
    root = Path(root)
    manifest: dict = {"dataset": "youtube-vos-2019", "splits": {}, "sequences": {}}
    for split in YOUTUBE_SPLITS:
        if not (root / split / "meta.json").is_file():
            continue
        add_split(manifest, split, YouTubeVOS(root, split), lambda seq: {
            "first_appearance": {str(k): v for k, v in seq.first_appearance.items()},
            "categories": {str(k): v for k, v in seq.categories.items()},
        })
    if extra:
        manifest.update(extra)
    return manifest


def _find_split_dirs(tmp: Path) -> dict[str, Path]:
    """The train/valid folders of an extracted archive, at its top or one folder down."""
    for base in [tmp, *sorted(p for p in tmp.iterdir() if p.is_dir())]:
        found = {s: base / s for s in YOUTUBE_SPLITS if (base / s).is_dir()}
        if found:
            return found
    return {}


def prepare_youtube_vos(
    root: str | os.PathLike,
    archive: str | os.PathLike | Sequence[str | os.PathLike],
    progress: Progress | None = None,
    *,
    full: bool = True,
) -> dict:
    """Extract YouTube-VOS 2019 ``train``/``valid`` zips into ``root``, validate, write the manifest.

    Every archive is extracted beside ``root`` and validated (``full``: every frame and mask
    decoded) before any split folder is merged into ``root``: one bad archive changes nothing.
    """
    archives = [Path(archive)] if isinstance(archive, (str, os.PathLike)) else [Path(a) for a in archive]

    def validate_split(arc: Path, split: str, folder: Path) -> list[str]:
        if not (folder / "meta.json").is_file():
            raise DataError(f"{arc}: {split}/meta.json missing")
        return YouTubeVOS(folder.parent, split).validate(full=full, progress=progress)

    progress = ensure_progress(progress)
    return prepare_split_archives(Path(root), archives, progress, what="YouTube-VOS 2019", extract=extracted_zip,
                                  find_splits=_find_split_dirs, validate_split=validate_split, build=build_youtube_manifest)


def youtube_summary(manifest: dict) -> list[dict]:
    """One row per split: videos, frames, annotated frames, objects, objects appearing after frame 0."""
    seqs = manifest.get("sequences", {})
    rows = []
    for row in manifest_summary(manifest):
        info = [seqs[n] for n in manifest["splits"][row["split"]] if n in seqs]
        late = sum(sum(1 for v in i["first_appearance"].values() if v > 0) for i in info)
        rows.append(
            {
                "split": row["split"],
                "videos": row["sequences"],
                **{k: v for k, v in row.items() if k not in ("split", "sequences")},
                "late objects": late,
            }
        )
    return rows
