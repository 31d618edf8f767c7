"""SA-V scoring (``--task sav``): per object on its own annotated frames, as SAM 2's SA-V evaluator.

Protocol (facebookresearch/sam2, ``sav_dataset/utils/sav_benchmark.py``), for each object folder
``Annotations_6fps/<video>/<obj>/`` of the split's videos:

* its frames are its annotation PNGs in name order, the first and the last dropped;
* ground truth and prediction are ``<obj>/<frame>.png`` binary masks (every nonzero pixel is
  the object; a PNG with two nonzero values is refused);
* the object joins the scoring on the first of those frames where the ground truth or the
  prediction is not empty, and is scored on every frame from there (two empty masks: J = F = 1);
* J and F per frame are the DAVIS-2017 definitions (:mod:`vosbench.metrics.boundary`, tolerance
  ``ceil(0.008 * diagonal)``); the object's J and F are their means over its scored frames;
* an object whose ground truth is empty on every scored frame is not reported (the SA-V
  evaluator stops with an assertion there); an object with fewer than 3 annotated frames is refused;
* globally every object weighs the same (not every video): J, F and J&F = (J + F) / 2, which
  :data:`EvaluationResult.extra` repeats in percent under the evaluator's names (``J&F``, ``J``, ``F``).

Predictions use the same layout, ``RESULTS/<video>/<obj>/<frame>.png`` (a folder or a zip of
one); frames that are not annotated are ignored, an object folder the ground truth lacks is
refused, and ``probs/`` folders and files (``vosbench infer``'s provenance) are skipped.
"""

from __future__ import annotations

import os
import posixpath
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vosbench.data.sav import binary_mask, object_folder_problem, read_object_mask
from vosbench.errors import DataError
from vosbench.metrics.boundary import DEFAULT_BOUND_TH, boundary_tolerance, disk_footprint
from vosbench.metrics.fastpng import decode_id_mask
from vosbench.metrics.frame import score_ids
from vosbench.metrics.report import SequenceScores
from vosbench.metrics.validation import raise_missing
from vosbench.metrics.results_source import open_results, read_zip_member, zip_pngs

MIN_OBJECT_FRAMES = 3  # the first and the last annotated frame are not scored
SKIPPED_ENTRIES = frozenset({"probs"})  # `vosbench infer --save-probs` folders beside the object folders


@dataclass(frozen=True)
class SavGroundTruth:
    """The annotation PNGs of one SA-V video, object by object (``objects[k]`` -> ``object_paths[k]``)."""

    name: str
    objects: tuple[str, ...]
    object_paths: tuple[tuple[Path, ...], ...]
    task: str = "sav"

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every annotation PNG (for sizing work)."""
        return tuple(p for paths in self.object_paths for p in paths)

    def scored(self, k: int) -> list[str]:
        """The frame stems that may score object ``k``: its annotated frames but the first and last."""
        return [p.stem for p in self.object_paths[k][1:-1]]

    @property
    def scored_frames(self) -> list[str]:
        return sorted({s for k in range(len(self.objects)) for s in self.scored(k)})


def sav_ground_truth(dataset, name: str) -> SavGroundTruth | str:
    """The ground truth of video ``name`` of a :class:`~vosbench.data.sav.SavDataset`, or its problem."""
    objects = dataset.object_annotations(name)
    problem = dataset.check_frames(name, objects)
    if problem:
        return problem
    for obj, paths in objects.items():
        if len(paths) < MIN_OBJECT_FRAMES:
            return (f"{paths[0].parent}: object {obj} has {len(paths)} annotated frame(s), at least "
                    f"{MIN_OBJECT_FRAMES} needed (the first and last are not scored)")
    return SavGroundTruth(name, tuple(objects), tuple(objects.values()))


# --- predictions in the per-object layout ---------------------------------------------------------


class _ObjectIndex:
    """``{video: {object: {frame stems}}}`` of a per-object results tree, and its reader."""

    _index: dict[str, dict[str, set[str]]]

    def sequences(self) -> set[str]:
        return set(self._index)

    def objects(self, video: str) -> set[str]:
        return set(self._index.get(video, {}))

    def frames(self, video: str, obj: str) -> set[str]:
        return set(self._index.get(video, {}).get(obj, ()))

    def read_object(self, video: str, obj: str, frame: str) -> np.ndarray:
        """The ``H,W`` bool mask of one object on one frame."""
        return binary_mask(self._decode(video, obj, frame), self.describe(video, obj, frame))


class ObjectFolderResults(_ObjectIndex):
    """Predictions in ``root/<video>/<obj>/<frame>.png``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: results folder not found")
        index: dict[str, dict[str, set[str]]] = {}
        try:
            for video in os.scandir(self.root):
                if not video.is_dir() or video.name.startswith("."):
                    continue
                objects = {}
                for obj in os.scandir(video.path):
                    if obj.is_dir() and not obj.name.startswith(".") and obj.name not in SKIPPED_ENTRIES:
                        objects[obj.name] = {n[:-4] for n in os.listdir(obj.path) if n.endswith(".png") and not n.startswith(".")}
                if objects:
                    index[video.name] = objects
        except OSError as exc:
            raise DataError(f"{exc.filename or self.root}: cannot list the predictions ({exc.strerror or exc})") from None
        self._index = index

    @property
    def output_dir(self) -> Path:
        return self.root

    def _decode(self, video: str, obj: str, frame: str) -> np.ndarray:
        from vosbench.metrics.fastpng import read_id_mask

        return read_id_mask(self.root / video / obj / f"{frame}.png", allow_gray=True)

    def describe(self, video: str, obj: str, frame: str) -> str:
        return str(self.root / video / obj / f"{frame}.png")


class ObjectZipResults(_ObjectIndex):
    """Predictions in a zip: ``<video>/<obj>/<frame>.png``, optionally under one top folder."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        pngs = zip_pngs(self.path)
        tops = {n.split("/")[0] for n in pngs if n.count("/") == 3}
        self.prefix = f"{tops.pop()}/" if not any(n.count("/") == 2 for n in pngs) and len(tops) == 1 else ""
        index: dict[str, dict[str, set[str]]] = {}
        for n in pngs:
            if not n.startswith(self.prefix):
                continue
            parts = n[len(self.prefix):].split("/")
            if len(parts) == 3 and all(parts) and not parts[2].startswith(".") and parts[1] not in SKIPPED_ENTRIES:
                index.setdefault(parts[0], {}).setdefault(parts[1], set()).add(parts[2][:-4])
        self._index = index
        self._zip: zipfile.ZipFile | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_zip"] = None  # each process opens its own handle
        return state

    @property
    def output_dir(self) -> Path:
        return self.path.parent

    def _member(self, video: str, obj: str, frame: str) -> str:
        return posixpath.join(self.prefix + video, obj, f"{frame}.png")

    def _decode(self, video: str, obj: str, frame: str) -> np.ndarray:
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.path)
        where = self.describe(video, obj, frame)
        return decode_id_mask(read_zip_member(self._zip, self._member(video, obj, frame), where), where, allow_gray=True)

    def describe(self, video: str, obj: str, frame: str) -> str:
        return f"{self.path}:{self._member(video, obj, frame)}"


def open_object_results(path: str | os.PathLike) -> ObjectFolderResults | ObjectZipResults:
    """A per-object results folder or a zip of one."""
    return open_results(path, folder=ObjectFolderResults, zipped=ObjectZipResults, layout="<video>/<obj>/<frame>.png")


def check_object_predictions(gts: list[SavGroundTruth], results, where: str) -> None:
    """One DataError listing every missing video, object and scored frame, and every object folder the ground truth lacks."""
    if not results.sequences():
        raise DataError(f"{where}: no predictions found (expected <video>/<obj>/<frame>.png masks, SA-V's per-object layout)")
    missing_videos, missing_objects, missing_frames, extra = [], [], [], []
    for gt in gts:
        if gt.name not in results.sequences():
            missing_videos.append(gt.name)
            continue
        have = results.objects(gt.name)
        extra += [f"{gt.name}/{o}" for o in sorted(have - set(gt.objects))]
        for k, obj in enumerate(gt.objects):
            if obj not in have:
                missing_objects.append(f"{gt.name}/{obj}")
                continue
            frames = results.frames(gt.name, obj)
            missing_frames += [f"{gt.name}/{obj}/{s}.png" for s in gt.scored(k) if s not in frames]
    raise_missing(where, [("object folder(s) that the ground truth lacks", extra), ("video(s) missing", missing_videos),
                          ("object(s) missing", missing_objects), ("frame(s) missing", missing_frames)])


def score_sav(gt: SavGroundTruth, results, *, bound_th: float = DEFAULT_BOUND_TH) -> SequenceScores:
    """Per-frame J and F of every object of one SA-V video (NaN where an object is not scored)."""
    frames = gt.scored_frames
    column = {s: t for t, s in enumerate(frames)}
    jm = np.full((len(gt.objects), len(frames)), np.nan)
    fm = np.full((len(gt.objects), len(frames)), np.nan)
    reported = []
    footprints: dict[tuple[int, int], np.ndarray] = {}
    for k, obj in enumerate(gt.objects):
        started = in_gt = False
        paths = {p.stem: p for p in gt.object_paths[k]}
        for stem in gt.scored(k):
            g = read_object_mask(paths[stem])
            p = results.read_object(gt.name, obj, stem)
            if p.shape != g.shape:
                raise DataError(f"{results.describe(gt.name, obj, stem)}: prediction size {p.shape[1]}x{p.shape[0]} "
                                f"differs from the annotation's {g.shape[1]}x{g.shape[0]}")
            g_any = bool(g.any())
            in_gt |= g_any
            started = started or g_any or bool(p.any())
            if not started:
                continue
            fp = footprints.get(g.shape)
            if fp is None:
                fp = footprints[g.shape] = disk_footprint(boundary_tolerance(g.shape, bound_th))
            j, f = score_ids(g.view(np.uint8), p.view(np.uint8), (1,), fp)
            jm[k, column[stem]], fm[k, column[stem]] = j[0], f[0]
        if in_gt:
            reported.append(k)
    return SequenceScores(gt.name, frames, jm[reported], fm[reported],
                          object_ids=tuple(int(gt.objects[k]) for k in reported))


def sav_extras(result) -> dict[str, float]:
    """The SA-V evaluator's global values, in percent: J&F, J, F (means over every object)."""
    j = float(np.mean([o.j.mean for o in result.objects])) * 100
    f = float(np.mean([o.f.mean for o in result.objects])) * 100
    return {"J&F": (j + f) / 2, "J": j, "F": f}
