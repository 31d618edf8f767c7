"""The SA-V val/test layout (SAM 2's Segment Anything Video dataset), read lazily.

::

    ROOT/sav_<split>.txt                                 video ids of the split, one a line
    ROOT/JPEGImages_24fps/<video>/00000.jpg ...          every frame, 24 fps
    ROOT/Annotations_6fps/<video>/<obj>/00000.png ...    one binary mask per object and annotated
                                                         frame (every 4th frame: 00000, 00004, ...)

Objects are folders named by number (``000``, ``001``, ...) and may overlap (a person and their
hand), so each frame's annotation is :class:`~vosbench.masks.ObjectMasks`, never one label map.
A per-object PNG holds 0 and at most one other value (0/1 or 0/255, palette, grey or 1-bit);
every nonzero pixel is the object. Results of ``vosbench infer`` on an SA-V root use the same
per-object layout (``<out>/<video>/<obj>/<frame>.png``).

For inference each object joins at its first annotated frame whose mask is not empty (SA-V val
and test annotate every object from the video's first frame); the engine's label maps are made
at that edge, the smaller object keeping pixels that two given masks share, so a part inside a
whole (a hand on a person) stays a trackable object.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from vosbench.data.frames import FRAME_SUFFIXES, list_frame_files
from vosbench.data.imageio import write_mask
from vosbench.data.names import check_name, read_name_lines
from vosbench.data.youtube import YouTubeObject, YouTubeSequence
from vosbench.errors import DataError
from vosbench.masks import MAX_LABEL_ID, ObjectMasks

SAV_SPLITS = ("val", "test")
FRAMES_DIR = "JPEGImages_24fps"
ANNOTATIONS_DIR = "Annotations_6fps"


def split_file(root: str | os.PathLike, split: str) -> Path:
    """``ROOT/sav_<split>.txt``."""
    return Path(root) / f"sav_{split}.txt"


def is_sav_root(root: str | os.PathLike, split: str) -> bool:
    return split_file(root, split).is_file()


def binary_mask(values: np.ndarray, where: str) -> np.ndarray:
    """``H,W`` bool of a per-object PNG's decoded values: every nonzero pixel is the object.

    A mask with two or more nonzero values holds more than one object: a :class:`DataError`
    naming the values (the SA-V evaluator asserts the same)."""
    top = int(values.max()) if values.size else 0
    if top and np.count_nonzero(values == top) + np.count_nonzero(values == 0) != values.size:
        present = np.flatnonzero(np.bincount(values.ravel(), minlength=256))
        nonzero = [int(v) for v in present if v]
        if len(nonzero) > 1:
            raise DataError(
                f"{where}: holds values {', '.join(map(str, nonzero))}; an SA-V mask is binary "
                "(0 and one object value), one object per PNG"
            )
    return values != 0


def read_object_mask(path: str | os.PathLike) -> np.ndarray:
    """One per-object PNG as ``H,W`` bool (palette, grey or 1-bit; one-line DataError otherwise)."""
    from vosbench.metrics.fastpng import read_id_mask  # the fast decoder; metrics imports this module

    return binary_mask(read_id_mask(path, allow_gray=True), str(path))


def object_folder_problem(name: str) -> str | None:
    """Why ``name`` is not an SA-V object folder name (digits, e.g. ``000``), or None."""
    return None if name.isascii() and name.isdigit() else "is not an object folder (SA-V names objects 000, 001, ...)"


def write_object_masks(folder: Path, frame: str, masks: ObjectMasks, names: dict[int, str]) -> None:
    """Write ``folder/<names[id]>/<frame>.png`` (0/1 DAVIS-palette PNGs) for every object of ``names``;
    an object that ``masks`` lacks is written empty."""
    for oid, name in names.items():
        m = masks.mask(oid) if oid in masks.ids else np.zeros(masks.shape, bool)
        (folder / name).mkdir(exist_ok=True)
        write_mask(folder / name / f"{frame}.png", m.view(np.uint8))


@dataclass(frozen=True)
class SavSequence(YouTubeSequence):
    """One SA-V video for inference: its 24 fps frames and its objects' annotations.

    The engine sees label ``k + 1`` for object folder ``object_names[k]``; ``objects`` maps each
    label to its first non-empty annotated frame (the frame it joins on), ``object_paths`` each
    folder name to its annotation PNGs."""

    object_names: tuple[str, ...] = ()
    object_paths: dict[str, tuple[Path, ...]] = field(default_factory=dict)
    joining_paths: tuple[Path, ...] = ()  # the PNGs read to find each object's first non-empty mask

    def input_annotations(self, given: str) -> list[Path]:
        """The annotation PNGs a run with ``given`` depends on (for its provenance): the first frame's
        of every object (``"first"``), else those read up to each object's first non-empty mask."""
        if given == "first":
            stem = self.frame_paths[0].stem
            return [p for paths in self.object_paths.values() for p in paths if p.stem == stem]
        return list(self.joining_paths)

    @cached_property
    def label_names(self) -> dict[int, str]:
        """Engine label -> object folder name, for every object of the video."""
        return {k + 1: name for k, name in enumerate(self.object_names)}

    def has_mask(self, i: int) -> bool:
        return bool(self.objects_starting_at(i))

    def mask(self, i: int) -> np.ndarray | None:
        """Label map of the objects joining on frame ``i`` (smaller object on top where two overlap)."""
        labels = self.objects_starting_at(i)
        if not labels:
            return None
        stem = self.frame_paths[i].stem
        masks = []
        for label in labels:
            path = next(p for p in self.object_paths[self.label_names[label]] if p.stem == stem)
            m = read_object_mask(path)
            if m.shape != self.size:
                raise DataError(f"{path}: mask size {m.shape[1]}x{m.shape[0]} differs from frame size {self.size[1]}x{self.size[0]}")
            masks.append(m)
        order = np.argsort([int(m.sum()) for m in masks], kind="stable")
        given = ObjectMasks(tuple(labels[k] for k in order), np.stack([masks[k] for k in order]))
        return given.to_label_map()

    def write_prediction(self, folder: Path, frame: str, probs: np.ndarray, object_ids, *, independent: bool = False) -> None:
        """Write one frame's prediction in the per-object layout (every object of the video)."""
        masks = ObjectMasks.from_probabilities(probs, object_ids, independent=independent)
        write_object_masks(folder, frame, masks, self.label_names)


class SavDataset:
    """One split of an SA-V root (``val`` or ``test``)."""

    def __init__(self, root: str | os.PathLike, split: str = "val"):
        self.root = Path(root)
        self.split = split
        self.split_path = split_file(self.root, split)
        if not self.split_path.is_file():
            raise DataError(f"{self.split_path}: SA-V split file not found (expected ROOT/sav_<split>.txt)")

    @property
    def image_dir(self) -> Path:
        return self.root / FRAMES_DIR

    @property
    def annotation_dir(self) -> Path:
        return self.root / ANNOTATIONS_DIR

    @cached_property
    def sequence_names(self) -> list[str]:
        names = read_name_lines(self.split_path, "video id")
        if not names:
            raise DataError(f"{self.split_path}: no videos listed")
        return names

    def __len__(self) -> int:
        return len(self.sequence_names)

    def __iter__(self) -> Iterator[SavSequence]:
        for name in self.sequence_names:
            yield self.sequence(name)

    def frame_paths(self, name: str) -> list[Path]:
        return list_frame_files(self.image_dir / name, FRAME_SUFFIXES)

    def object_annotations(self, name: str) -> dict[str, tuple[Path, ...]]:
        """Object folder name -> its annotation PNGs (sorted) of video ``name``; a DataError when
        the video has no annotation folder, an entry is not a numbered object folder, or an object has no PNG."""
        folder = self.annotation_dir / name
        if not folder.is_dir():
            raise DataError(f"{folder}: no annotation folder for video {name!r} listed in {self.split_path.name}")
        try:
            entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
        except OSError as exc:
            raise DataError(f"{folder}: cannot list the objects ({exc.strerror or exc})") from None
        out: dict[str, tuple[Path, ...]] = {}
        for entry in entries:
            if not entry.is_dir():
                raise DataError(f"{entry}: expected only object folders in {folder} (SA-V's per-object layout)")
            problem = object_folder_problem(entry.name)
            if problem:
                raise DataError(f"{entry}: {problem}")
            pngs = list_frame_files(entry, (".png",))
            if not pngs:
                raise DataError(f"{entry}: object {entry.name} has no annotation PNGs")
            out[entry.name] = tuple(pngs)
        if not out:
            raise DataError(f"{folder}: video {name!r} has no object folders")
        return out

    def object_masks(self, name: str, frame: str) -> ObjectMasks:
        """The annotation of frame ``frame`` of video ``name``: every object annotated there (ids:
        the folder numbers), overlaps kept."""
        objects = self.object_annotations(name)
        paths = {int(obj): next((p for p in ps if p.stem == frame), None) for obj, ps in objects.items()}
        paths = {oid: p for oid, p in paths.items() if p is not None}
        if not paths:
            raise DataError(f"{self.annotation_dir / name}: no object is annotated on frame {frame}")
        masks = [read_object_mask(p) for p in paths.values()]
        if len({m.shape for m in masks}) > 1:
            raise DataError(f"{self.annotation_dir / name}: the objects' masks of frame {frame} differ in size")
        return ObjectMasks(tuple(paths), np.stack(masks))

    def check_frames(self, name: str, objects: dict[str, tuple[Path, ...]]) -> str | None:
        """A problem when an annotation names a frame the video's 24 fps frames lack (None when fine or no frames folder)."""
        frames_dir = self.image_dir / name
        if not frames_dir.is_dir():
            return None
        stems = {p.stem for p in self.frame_paths(name)}
        for obj, paths in objects.items():
            missing = [p.stem for p in paths if p.stem not in stems]
            if missing:
                return (f"{paths[0].parent}: annotated frame(s) {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''} "
                        f"of object {obj} have no frame among the {len(stems)} in {frames_dir}")
        return None

    def sequence(self, name: str) -> SavSequence:
        frames = self.frame_paths(name)
        if not frames:
            raise DataError(f"{self.image_dir / name}: no frames for video {name!r}")
        objects = self.object_annotations(name)
        problem = self.check_frames(name, objects)
        if problem:
            raise DataError(problem)
        if len(objects) > MAX_LABEL_ID:
            raise DataError(f"{self.annotation_dir / name}: {len(objects)} objects; at most {MAX_LABEL_ID} can be tracked at once")
        names = tuple(objects)
        joins, read = {}, []
        for k, obj in enumerate(names):
            for p in objects[obj]:
                read.append(p)
                if read_object_mask(p).any():
                    joins[k + 1] = YouTubeObject(k + 1, (p.stem,))
                    break  # an object never visible has nothing to track (written empty)
        return SavSequence(name=name, frame_paths=tuple(frames), objects=joins, object_names=names, object_paths=objects,
                           joining_paths=tuple(read))

    def validate(self, *, full: bool = False, progress=None) -> list[str]:
        """Problems of the split: listed videos without frames or annotations, bad object folders,
        annotated frames without a frame; with ``full`` every annotation is decoded (binary, one size per video)."""
        from vosbench.progress import ensure_progress

        progress = ensure_progress(progress)
        problems: list[str] = []
        names = self.sequence_names
        progress.start(f"validate sav {self.split}", total=len(names))
        for name in names:
            check_name(name, str(self.split_path), "video id")
            try:
                if not self.frame_paths(name):
                    raise DataError(f"{self.image_dir / name}: no frames for video {name!r}")
                objects = self.object_annotations(name)
                problem = self.check_frames(name, objects)
                if problem:
                    raise DataError(problem)
                if full:
                    from vosbench.data.imageio import image_size

                    size = image_size(self.frame_paths(name)[0])
                    for paths in objects.values():
                        for p in paths:
                            m = read_object_mask(p)
                            if m.shape != size:
                                raise DataError(f"{p}: mask size {m.shape[1]}x{m.shape[0]} differs from frame size {size[1]}x{size[0]}")
            except DataError as exc:
                problems.append(str(exc))
            progress.advance()
        return problems
