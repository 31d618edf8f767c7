"""The benchmarks `evaluate` and `package-submission` know: their layouts, objects and scoring rules.

Each benchmark (a *task*) fixes which annotation files are read, which objects a sequence has,
which frames score each object and which predicted ids are allowed (:class:`GroundTruth`), and
for a submission which frames need a mask (:class:`SubmissionVideo`). Per-frame J and F are the
DAVIS-2017 definitions everywhere but MOSEv2 (:mod:`vosbench.metrics.mosev2`).

========== ================================ ==========================================================
task       layout                           rule
========== ================================ ==========================================================
davis2017  ROOT/Annotations/<res>/<seq>     the official toolkit: objects 1..max id of the first
           ImageSets/2017/<split>.txt       annotation, frames 1..T-2, every object on every one
davis2016  as DAVIS-2017, grey 0/255 masks;  vos-benchmark's: one object (every nonzero pixel), frames
           ImageSets/480p/<split>.txt too   1..T-2, scored from the first where it is in the ground
                                            truth or the prediction
late       DAVIS-2017 layout                vos-benchmark's: every id of any annotation is an object,
                                            frames 1..T-2, each scored from the first frame where it is
                                            in the ground truth or the prediction
youtube-vos ROOT/<split>/meta.json           each meta.json object on the annotated frames after its
                                            first appearance; seen/unseen by category
mose       ROOT/<split>/{JPEGImages,        the first annotation's objects, frames 1..T-2
           Annotations}/<video>
lvos       ROOT/<split>/<split>_meta.json    each object on the annotated frames of its frame range
                                            [start, end); V; seen/unseen by unseen_videos.txt
mosev2     ROOT/<split>/{JPEGImages,        each meta.json object on frames 1..T-2: smoothed J, F and
           Annotations}/<video>, meta.json  the area-adaptive F_new; disappearance/reappearance J&F_new
                                            (:mod:`vosbench.metrics.mosev2`)
sav        ROOT/sav_<split>.txt,            SAM 2's SA-V evaluator: each object folder on its own
           Annotations_6fps/<video>/<obj>/  annotated frames but the first and last, from the first
                                            where it is in the ground truth or the prediction
                                            (:mod:`vosbench.metrics.sav`)
========== ================================ ==========================================================
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from vosbench.data.davis import DavisDataset, VideoSequence
from vosbench.data.davis2016 import Davis2016Dataset
from vosbench.data.frames import list_frame_files
from vosbench.data.imageio import VOID_ID
from vosbench.data.lvos import LvosDataset
from vosbench.data.mose import MoseDataset
from vosbench.data.mosev2 import Mosev2Dataset, is_mosev2_meta
from vosbench.data.sav import SavDataset, is_sav_root
from vosbench.data.youtube import YouTubeVOS
from vosbench.errors import DataError
from vosbench.metrics.fastpng import read_id_mask
from vosbench.metrics.validation import ObjectIds, davis2017_objects, first_annotation_ids

TASKS = ("davis2017", "davis2016", "late", "youtube-vos", "mose", "lvos", "mosev2", "sav")
DAVIS_TASKS = ("davis2017", "davis2016", "late")
# the tasks whose objects are fixed before scoring and scored on their own frames
STATIC_TASKS = ("youtube-vos", "mose", "lvos", "mosev2")

TITLES = {
    "davis2017": "DAVIS-2017",
    "davis2016": "DAVIS-2016",
    "late": "late objects (vos-benchmark rules)",
    "youtube-vos": "YouTube-VOS 2019",
    "mose": "MOSE",
    "lvos": "LVOS",
    "mosev2": "MOSEv2",
    "sav": "SA-V",
}

RULES = {
    "davis2017": "the official DAVIS-2017 toolkit: objects 1..max id of the first annotation, frames 1..T-2",
    "davis2016": "vos-benchmark's DAVIS-2016: one object (every nonzero pixel), frames 1..T-2, "
    "scored from the first frame where it is in the ground truth or the prediction",
    "late": "vos-benchmark's: every annotated id is an object, frames 1..T-2, each scored from the first "
    "frame where it is in the ground truth or the prediction",
    "youtube-vos": "YouTube-VOS: each meta.json object on the annotated frames after its first appearance",
    "mose": "MOSE: the first annotation's objects, frames 1..T-2",
    "lvos": "LVOS: each object on the annotated frames of its frame range [start, end)",
    "mosev2": "the MOSEv2 scorer's: each meta.json object on frames 1..T-2; J with +1 smoothing, F and the "
    "area-adaptive F_new; J&F_new also over the disappearance and reappearance segments",
    "sav": "SA-V: each object on its own annotated frames but the first and last, from the first where it is "
    "in the ground truth or the prediction; every object weighs the same",
}

MIN_ANNOTATED_FRAMES = 3  # DAVIS-style rules: the first and the last are not scored
DAVIS2016_OBJECTS = (1, VOID_ID)  # the one object, written 1 (vosbench) or 255 (as distributed)


@dataclass(frozen=True)
class GroundTruth:
    """The annotation files of one sequence, sorted by name, and how the benchmark scores them.

    DAVIS-style tasks score ``paths[1:-1]``; the static tasks (YouTube-VOS, MOSE, LVOS) score
    object ``objects[k]`` on the frames ``scored[k]`` (for MOSE, empty ``objects`` means those of
    the first annotation, on ``paths[1:-1]``). ``allowed`` are the ids a prediction may hold
    (None: from the first annotation or, for ``late``, from every annotation).
    """

    name: str
    paths: tuple[Path, ...]
    task: str = "davis2017"
    objects: tuple[int, ...] = ()
    scored: tuple[frozenset[str], ...] = ()
    allowed: ObjectIds | None = None
    seen: tuple[bool | None, ...] = ()

    @property
    def scored_frames(self) -> list[str]:
        if self.task in ("youtube-vos", "lvos"):
            union = frozenset().union(*self.scored) if self.scored else frozenset()
            return [p.stem for p in self.paths if p.stem in union]
        return [p.stem for p in self.paths[1:-1]]


@dataclass(frozen=True)
class SubmissionVideo:
    """What a submission must hold for one video: a mask per frame from ``required_from`` on."""

    name: str
    frame_paths: tuple[Path, ...]
    required_from: int
    objects: ObjectIds


def list_pngs(folder: Path) -> list[Path]:
    """The annotation PNGs of one sequence folder in frame order (:mod:`vosbench.data.frames`)."""
    return list_frame_files(folder, (".png",))


def _frame_count(folder: Path) -> int | None:
    if not folder.is_dir():
        return None
    return len(list_frame_files(folder))


def _is_davis2016_mask(mask) -> bool:
    values = set(first_annotation_ids(mask)) | ({VOID_ID} if (mask == VOID_ID).any() else set())
    return values == {VOID_ID}


class Benchmark:
    """One split of one benchmark; see the module docstring for the layouts and rules."""

    def __init__(self, task: str, dataset, split: str, resolution: str = "480p", detected: str = ""):
        if task not in TASKS:
            raise DataError(f"unknown task {task!r}; expected one of auto, {', '.join(TASKS)}")
        self.task = task
        self.dataset = dataset
        self.split = split
        self.resolution = resolution
        self.detected = detected  # why auto chose this task, for the CLI

    @property
    def title(self) -> str:
        return TITLES[self.task]

    @property
    def rule(self) -> str:
        return RULES[self.task]

    @cached_property
    def sequence_names(self) -> list[str]:
        """The split's sequences in file order, each once (the official toolkit keys them in a dict)."""
        return list(dict.fromkeys(self.dataset.sequence_names))

    @property
    def annotation_dir(self) -> Path:
        return self.dataset.annotation_dir

    @property
    def image_dir(self) -> Path:
        return self.dataset.image_dir

    def with_task(self, task: str, detected: str = "") -> Benchmark:
        return Benchmark(task, self.dataset, self.split, self.resolution, detected)

    # --- ground truth for evaluation ---------------------------------------------------------

    def _davis_problem(self, name: str, paths: list[Path]) -> str | None:
        folder = self.annotation_dir / name
        if not paths:
            return f"{name}: no annotations in {folder}"
        if len(paths) < MIN_ANNOTATED_FRAMES:
            return f"{name}: {len(paths)} annotated frame(s) in {folder}, at least {MIN_ANNOTATED_FRAMES} needed (the first and last are not scored)"
        n_frames = _frame_count(self.image_dir / name)
        if n_frames is not None and n_frames != len(paths):
            return f"{name}: {len(paths)} annotations for {n_frames} frames in {folder} (every frame needs ground truth)"
        return None

    def _mosev2_ground_truth(self, name: str) -> GroundTruth | str:
        """MOSEv2: every frame annotated (``meta.json``'s length), its objects on frames 1..T-2."""
        entry = self.dataset.entry(name)
        paths = list_pngs(self.annotation_dir / name)
        if len(paths) != entry.length:
            return (f"{name}: {len(paths)} annotations in {self.annotation_dir / name} but {self.dataset.meta_path.name} "
                    f"gives length {entry.length} (every frame needs ground truth)")
        problem = self._davis_problem(name, paths)
        if problem:
            return problem
        if not entry.objects:
            return f"{name}: no objects in {self.dataset.meta_path.name}"
        stems = frozenset(p.stem for p in paths[1:-1])
        allowed = ObjectIds(name, entry.objects, self.dataset.meta_path.name)
        return GroundTruth(name, tuple(paths), self.task, entry.objects, (stems,) * len(entry.objects), allowed)

    def _one_ground_truth(self, name: str) -> GroundTruth | str:
        if self.task == "mosev2":
            return self._mosev2_ground_truth(name)
        if self.task == "sav":  # per-object folders (vosbench.metrics.sav)
            from vosbench.metrics.sav import sav_ground_truth

            return sav_ground_truth(self.dataset, name)
        paths = list_pngs(self.annotation_dir / name)
        if self.task in DAVIS_TASKS or self.task == "mose":
            problem = self._davis_problem(name, paths)
            if problem:
                return problem
            allowed = ObjectIds(name, DAVIS2016_OBJECTS, "DAVIS-2016's one object, written 1 or 255", 1) if self.task == "davis2016" else None
            return GroundTruth(name, tuple(paths), self.task, allowed=allowed)
        if not paths:
            return f"{name}: no annotations in {self.annotation_dir / name}"
        stems = [p.stem for p in paths]
        seq = self.dataset.sequence(name)
        objects, scored, seen = [], [], []
        if self.task == "youtube-vos":
            for oid, obj in sorted(seq.objects.items()):
                first = obj.frames[0]
                if first not in stems:
                    return f"{name}: object {oid} first appears on frame {first}, which has no annotation in {self.annotation_dir / name}"
                frames = frozenset(s for s in stems if s > first)
                if frames:  # an object introduced by the last annotation has nothing to score
                    objects.append(oid)
                    scored.append(frames)
                    seen.append(self._seen_category(obj.category))
            source = "meta.json"
        else:  # lvos
            unseen = self.dataset.unseen_videos
            for oid, obj in sorted(seq.objects.items()):
                frames = frozenset(s for s in stems if obj.covers(s))
                if not frames:
                    return f"{name}: object {oid}'s frame range {obj.start}..{obj.end} holds no annotation in {self.annotation_dir / name}"
                objects.append(oid)
                scored.append(frames)
                seen.append(None if unseen is None else name not in unseen)
            source = self.dataset.meta_path.name
        allowed = ObjectIds(name, tuple(sorted(seq.objects)), source)
        return GroundTruth(name, tuple(paths), self.task, tuple(objects), tuple(scored), allowed, tuple(seen))

    def ground_truth(self, names: list[str] | None = None) -> list[GroundTruth]:
        """Annotation lists of ``names`` (default: the split); one DataError lists every problem."""
        names = self.sequence_names if names is None else list(names)
        gts, problems = [], []
        for name in names:
            try:
                gt = self._one_ground_truth(name)
            except DataError as exc:
                gt = str(exc)
            if isinstance(gt, str):
                problems.append(gt)
            else:
                gts.append(gt)
        if problems:
            raise DataError(f"ground truth of split {self.split!r} unusable: " + "; ".join(problems))
        return gts

    @cached_property
    def _seen_categories(self) -> frozenset[str] | None:
        """YouTube-VOS: the categories of ROOT/train/meta.json (seen in training), None when unknown."""
        if self.task != "youtube-vos" or self.split == "train":
            return None
        meta = Path(self.dataset.root) / "train" / "meta.json"
        if not meta.is_file():
            return None
        try:
            videos = json.loads(meta.read_text(encoding="utf-8")).get("videos", {})
            cats = {o.get("category") for v in videos.values() for o in v.get("objects", {}).values()}
        except (OSError, ValueError, AttributeError):
            return None
        cats.discard(None)
        return frozenset(cats) or None

    def _seen_category(self, category: str | None) -> bool | None:
        seen = self._seen_categories
        if seen is None or category is None:
            return None
        return category in seen

    # --- what a submission must hold ------------------------------------------------------------

    def submission_video(self, name: str) -> SubmissionVideo:
        """The frames that need a mask and the allowed ids of video ``name`` (reads its first annotations)."""
        seq: VideoSequence = self.dataset.sequence(name)
        frames = seq.frame_paths
        if self.task in DAVIS_TASKS or self.task == "mose":
            first = seq.annotation_paths.get(seq.frame_paths[0].stem)
            if first is None:
                raise DataError(f"{self.annotation_dir / name}: no annotation of the first frame {seq.frame_paths[0].stem}")
            mask = read_id_mask(first, allow_gray=True)
            if self.task == "davis2016":
                objects = ObjectIds(name, DAVIS2016_OBJECTS, "DAVIS-2016's one object, written 1 or 255", 1)
            elif self.task == "mose":
                objects = ObjectIds(name, tuple(first_annotation_ids(mask)), "its first annotation")
            else:
                objects = davis2017_objects(name, mask)
            return SubmissionVideo(name, frames, 0, objects)
        if self.task == "mosev2":  # every frame, the meta.json objects
            return SubmissionVideo(name, frames, 0, ObjectIds(name, tuple(seq.object_ids), self.dataset.meta_path.name))
        starts = seq.first_appearance
        source = "meta.json" if self.task == "youtube-vos" else self.dataset.meta_path.name
        objects = ObjectIds(name, tuple(sorted(seq.object_ids)), source)
        return SubmissionVideo(name, frames, min(starts.values(), default=0), objects)


def _davis_dataset(data: Path, split: str, resolution: str):
    if (data / "ImageSets" / "2017" / f"{split}.txt").is_file():
        return DavisDataset(data, split, resolution)
    return Davis2016Dataset(data, split, resolution)


def detect_layout(data: str | os.PathLike, split: str) -> str:
    """``sav``, ``youtube-vos``, ``mosev2``, ``lvos``, ``mose`` or ``davis`` from the files under ``data``."""
    data = Path(data)
    if is_sav_root(data, split):
        return "sav"
    if (data / split / "meta.json").is_file():
        return "mosev2" if is_mosev2_meta(data / split / "meta.json") else "youtube-vos"
    if (data / split / f"{split}_meta.json").is_file():
        return "lvos"
    if (data / split / "JPEGImages").is_dir() and not (data / "ImageSets").is_dir():
        return "mose"
    return "davis"


def _detect_davis_task(dataset) -> tuple[str, str]:
    """davis2016 when every first annotation holds only 0 and 255, else davis2017."""
    firsts = []
    for name in dict.fromkeys(dataset.sequence_names):
        pngs = list_pngs(dataset.annotation_dir / name)
        if not pngs:
            return "davis2017", ""
        firsts.append(pngs[0])
    try:
        if firsts and all(_is_davis2016_mask(read_id_mask(p, allow_gray=True)) for p in firsts):
            return "davis2016", "every first annotation holds only 0 and 255 (one object)"
    except DataError:
        pass  # the evaluation reports the broken file
    return "davis2017", ""


def open_benchmark(data: str | os.PathLike, split: str = "val", resolution: str = "480p", task: str = "auto") -> Benchmark:
    """The benchmark split at ``data``; ``task="auto"`` detects it from the layout (and, for the
    DAVIS layout, from the first annotations' values)."""
    data = Path(data)
    if task != "auto" and task not in TASKS:
        raise DataError(f"unknown task {task!r}; expected one of auto, {', '.join(TASKS)}")
    if not data.is_dir():
        raise DataError(f"{data}: dataset root not found")
    layout = detect_layout(data, split)
    wanted = {"davis2017": "davis", "davis2016": "davis", "late": "davis"}.get(task, task)
    if task != "auto" and wanted != layout:
        layout = wanted  # the reader names what is missing
    if layout == "youtube-vos":
        return Benchmark("youtube-vos", YouTubeVOS(data, split), split, resolution, "meta.json" if task == "auto" else "")
    if layout == "lvos":
        return Benchmark("lvos", LvosDataset(data, split), split, resolution, f"{split}_meta.json" if task == "auto" else "")
    if layout == "mosev2":
        return Benchmark("mosev2", Mosev2Dataset(data, split), split, resolution,
                         'meta.json with video lengths (MOSEv2)' if task == "auto" else "")
    if layout == "sav":
        return Benchmark("sav", SavDataset(data, split), split, resolution, f"sav_{split}.txt" if task == "auto" else "")
    if layout == "mose":
        return Benchmark("mose", MoseDataset(data, split), split, resolution, "JPEGImages without ImageSets" if task == "auto" else "")
    dataset = _davis_dataset(data, split, resolution)
    if task == "auto":
        task, why = _detect_davis_task(dataset)
        return Benchmark(task, dataset, split, resolution, why)
    return Benchmark(task, dataset, split, resolution)
