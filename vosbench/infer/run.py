"""``vosbench infer``: run an ensemble (one checkpoint or many) over a dataset split.

Output: ``<out>/<seq>/<frame>.png`` DAVIS palette masks at the original resolution and frame
names, and ``<out>/<seq>/provenance.json`` (checkpoint hashes, resolved options, vosbench
version, and the fingerprints of the sequence's frames and of the annotations the run may read:
:mod:`vosbench.provenance`). Each sequence is built in a temp folder and renamed into place when complete, so an
interrupted one leaves nothing behind; a finished sequence is skipped on re-run when its
provenance matches, and a mismatch refuses the run (``overwrite`` redoes them). With
``save_probs``, ``<out>/<seq>/probs/<frame>.npz`` holds the soft probabilities (``probs``: uint8
``K+1,H,W`` = round(255 p); ``object_ids``) for later ensembling.

What a run may read (``given``): ``"first"`` reads only frame 0's annotation, the DAVIS
semi-supervised protocol; the later annotations of a DAVIS-layout split are ground truth and are
never opened. ``"first-appearance"`` reads each object's first annotated frame, the YouTube-VOS
protocol: each object joins on the frame whose annotation introduces it (on YouTube-VOS from
``meta.json``, elsewhere the first annotation where its id appears). The default (None) is
``"first-appearance"`` on a YouTube-VOS 2019 root (``ROOT/<split>/meta.json``, e.g. ``--split
valid``), whose split ships exactly those masks, and ``"first"`` everywhere else. On an SA-V
root (``ROOT/sav_<split>.txt``) the default is ``"first-appearance"`` too: each object joins on its first annotated frame with a non-empty mask
(:mod:`vosbench.data.sav`), and the results use SA-V's per-object layout,
``<out>/<video>/<obj>/<frame>.png`` (0/1 masks, every 24 fps frame, every object of the video).
When every member is an ``hf:`` tracker (SAM-family), objects are scored independently
(``EngineConfig.independent_objects``) and each is kept where its own probability exceeds 0.5,
overlaps included; with STM-family members objects come out one per pixel
(:class:`vosbench.masks.ObjectMasks`).

Multi-device: under ``torchrun``, ``srun`` or a SLURM job array (:mod:`vosbench.cluster`) each rank
takes its share of the sequences, dealt longest-first so that the ranks finish together.

Device and precision are resolved once, here at the run's edge (:func:`vosbench.precision.resolve_numerics`),
logged in one line, and passed down to the models, the engines and the online finetuning.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from vosbench.cluster import deal_longest_first
from vosbench.data.davis import DavisDataset, VideoSequence
from vosbench.data.imageio import VOID_ID, write_mask
from vosbench.data.kind import EMBEDDED, EMBEDDED_NOTE, dataset_kind, embedded_only
from vosbench.data.mosev2 import Mosev2Dataset, is_mosev2_meta
from vosbench.data.sav import SavDataset, is_sav_root
from vosbench.data.video import SingleVideo
from vosbench.data.youtube import YouTubeSequence, YouTubeVOS
from vosbench.errors import ConfigError, DataError, NumericalError
from vosbench.fsutil import TEMP_MARK, atomic_dir, sweep_temps, temp_prefix
from vosbench.infer.ensemble import LoadedMember, load_members, video_predictor
from vosbench.infer.frameio import IO_THREADS, BackgroundWriter, FramePrefetcher
from vosbench.infer.options import InferOptions
from vosbench.infer.probs import labels_of
from vosbench.infer.recipe import MemberSpec, Recipe, parse_ensemble
from vosbench.precision import Numerics, apply_backend_policy, resolve_numerics
from vosbench.progress import Progress, ensure_progress
from vosbench.provenance import PROVENANCE_FILE, check_same_provenance, make_record, sequence_inputs, write_provenance

if TYPE_CHECKING:
    from vosbench.infer.engine import EngineConfig
    from vosbench.infer.finetune import FinetuneConfig

log = logging.getLogger(__name__)

GIVEN_MODES = ("first", "first-appearance")
# options that do not change the masks, left out of the provenance
_NOT_PROVENANCE = ("device", "overwrite", "offload_state")


@dataclass
class SequenceResult:
    name: str
    frames: int
    objects: int
    status: str  # "written" | "skipped"
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class InferSummary:
    out: Path
    split: str
    members: list[str]
    rank: int = 0
    world_size: int = 1
    sequences: list[SequenceResult] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    peak_cuda_mb: float | None = None
    device: str = ""  # the device and precision that ran (auto resolved)
    precision: str = ""

    @property
    def written(self) -> list[SequenceResult]:
        return [s for s in self.sequences if s.status == "written"]

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.written)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.written)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**2 if sys.platform == "darwin" else peak / 1024


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=temp_prefix("write-test"), suffix=TEMP_MARK):
            pass
    except OSError as exc:
        raise ConfigError(f"{out}: output folder is not writable ({exc.strerror or exc})") from None


def resolve_given(given: str | None, dataset: DavisDataset | YouTubeVOS | SingleVideo) -> str:
    """The ``given`` mode a run uses: the one asked for, else the layout's protocol."""
    if isinstance(dataset, SingleVideo):  # its one given mask, on the frame it belongs to
        return dataset.given
    if given is None:
        return "first-appearance" if isinstance(dataset, (YouTubeVOS, SavDataset)) else "first"
    if given not in GIVEN_MODES:
        raise ConfigError(f"--given must be one of {', '.join(GIVEN_MODES)}, got {given!r}")
    return given


class GivenMasks:
    """The annotations a run may read, frame by frame: ``at(i)`` -> (mask, ids of objects joining there).

    ``"first"``: frame 0 only. ``"first-appearance"``: on YouTube-VOS the frames ``meta.json``
    names as first appearances (only the objects starting there are taken from each), elsewhere
    every annotation, taking the ids not seen before.
    """

    def __init__(self, seq: VideoSequence, mode: str):
        self.seq, self.mode = seq, mode
        self.known: set[int] = set()

    def _ids(self, mask: np.ndarray, wanted: list[int] | None) -> list[int]:
        present = [int(o) for o in np.unique(mask) if o not in (0, VOID_ID) and int(o) not in self.known]
        return present if wanted is None else [o for o in present if o in wanted]

    def at(self, i: int) -> tuple[np.ndarray | None, list[int]]:
        seq = self.seq
        if self.mode == "first":
            if i != 0:
                return None, []
            mask = seq.first_mask()
            ids = self._ids(mask, None)
        elif isinstance(seq, YouTubeSequence):
            starting = seq.objects_starting_at(i)
            if not starting or not seq.has_mask(i):
                return None, []
            mask = seq.mask(i)
            ids = self._ids(mask, starting)
        else:
            if not seq.has_mask(i):
                return None, []
            mask = seq.mask(i)
            ids = self._ids(mask, None)
        self.known.update(ids)
        return mask, ids

    def later_objects(self) -> bool:
        """Whether objects may join after frame 0 (their masks are read only when reached)."""
        if self.mode == "first":
            return False
        if isinstance(self.seq, YouTubeSequence):
            return any(start > 0 for start in self.seq.first_appearance.values())
        return any(self.seq.has_mask(i) for i in range(1, self.seq.num_frames))


DepthSource = Callable[[int], np.ndarray]


def _missing_depth(seq: VideoSequence) -> DataError:
    hint = f" (`{seq.depth_hint}`)" if seq.depth_hint else ""
    return DataError(
        f"sequence {seq.name!r} has no depth maps ({seq.depth_dir} missing) for a depth (D-STM) checkpoint: "
        f"prepare them{hint} or pass --depth-estimator SPEC"
    )


def _depth_source(seq: VideoSequence, estimator, scratch: Path, device_progress: Progress) -> DepthSource:
    """Depth of frame i: the dataset's maps, else maps estimated now (normalised per video exactly
    as ``vosbench prepare depth`` does, in a scratch folder)."""
    if seq.has_depth:
        return seq.depth
    if estimator is None:
        raise _missing_depth(seq)
    from vosbench.data.imageio import read_depth
    from vosbench.depth.prepare import PercentileNormalization, _prepare_sequence

    folder = scratch / seq.name
    device_progress.start(f"{seq.name} (depth)", total=seq.num_frames)
    _prepare_sequence(seq, folder, estimator, estimator.describe(), PercentileNormalization(), device_progress)
    names = seq.frame_names
    return lambda i: read_depth(folder / f"{names[i]}.png")


def _make_estimator(spec: str | None, device: str):
    if spec is None:
        return None
    try:
        from vosbench.depth import make_estimator
    except ImportError:
        raise ConfigError("--depth-estimator needs the vosbench.depth module, which is not installed") from None
    return make_estimator(spec, device=device, batch_size=4)


def infer_sequence(
    seq: VideoSequence,
    members: Sequence[LoadedMember],
    options: InferOptions,
    folder: Path,
    device: torch.device,
    depth: DepthSource | None = None,
    progress: Progress | None = None,
    *,
    engine: EngineConfig | None = None,
    finetune: FinetuneConfig | None = None,
) -> int:
    """Propagate one sequence, writing its PNGs (and probabilities) into ``folder``; returns #objects.

    ``engine``/``finetune``: the configs with the run's resolved numerics (default: built from
    ``options``). Frames are decoded ahead and masks encoded behind the network, on a few threads."""
    progress = ensure_progress(progress)
    n = seq.num_frames
    if n == 0:
        raise DataError(f"sequence {seq.name!r} has no frames")
    with ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="infer-io") as pool:
        frames = FramePrefetcher(pool, seq.frame, n, pin=device.type == "cuda")
        writer = BackgroundWriter(pool)
        try:
            k = _propagate(seq, members, options, folder, device, depth, progress, frames, writer,
                           engine or options.engine(), finetune or options.finetune())
            writer.flush()  # every file is on disk before the caller renames the folder into place
        except BaseException:
            frames.close()
            writer.cancel()
            raise
    return k


def _save_probs(path: Path, probs: np.ndarray, object_ids: np.ndarray) -> None:
    np.savez_compressed(path, probs=probs, object_ids=object_ids)


def _propagate(seq: VideoSequence, members: Sequence[LoadedMember], options: InferOptions, folder: Path,
               device: torch.device, depth: DepthSource | None, progress: Progress, frames: FramePrefetcher,
               writer: BackgroundWriter, engine: EngineConfig, finetune: FinetuneConfig) -> int:
    h, w = seq.size
    given = GivenMasks(seq, options.given or "first")
    first_mask, ids = given.at(0)
    if first_mask is None:  # every object of this video appears later
        first_mask = np.zeros((h, w), np.uint8)
    if not ids and not given.later_objects():
        where = seq.annotation_paths.get(seq.frame_paths[0].stem, seq.frame_paths[0])
        hint = "" if given.mode == "first-appearance" else "; --given first-appearance reads later first appearances"
        raise DataError(f"{where}: sequence {seq.name!r}: the first-frame annotation has no objects to propagate{hint}")
    needs_depth = any(m.needs_depth for m in members)
    decoded = frames.get(0)
    first = decoded[0]
    first_depth = depth(0) if needs_depth and depth is not None else None
    predictor = video_predictor(
        members, engine, options.tta(), finetune, (first, first_mask, ids, first_depth), progress,
        sequence=seq,
    )
    if options.save_probs:
        (folder / "probs").mkdir()
    for i, name in enumerate(seq.frame_names):
        frame, pixels = decoded if i == 0 else frames.get(i)
        if frame.shape[:2] != (h, w):
            raise DataError(
                f"{seq.frame_paths[i]}: frame size {frame.shape[1]}x{frame.shape[0]} differs from the "
                f"sequence's {w}x{h}"
            )
        image = pixels.to(device, non_blocking=True).float().div_(255)
        mask, objects = None, None
        if i == 0:
            mask, objects = first_mask, ids
        else:
            later, new = given.at(i)
            if new:  # objects that first appear on this frame (--given first-appearance)
                mask, objects = later, new
        d = None
        if needs_depth:
            d_np = first_depth if i == 0 else depth(i)
            d = torch.from_numpy(np.array(d_np, dtype=np.float32)).to(device)
        probs = predictor.step(image, mask, objects, d)
        if not bool(torch.isfinite(probs).all()):
            raise NumericalError(
                f"sequence {seq.name!r} frame {name}: the model produced non-finite probabilities (NaN or inf); "
                "nothing was written for this sequence"
            )
        per_object = getattr(seq, "write_prediction", None)
        if per_object is not None:  # SA-V: one binary PNG per object, <obj>/<frame>.png (vosbench.masks)
            writer.submit(functools.partial(per_object, independent=engine.independent_objects),
                          folder, name, probs.cpu().numpy(), predictor.object_ids)
        else:
            writer.submit(write_mask, folder / f"{name}.png", labels_of(probs, predictor.object_ids))
        if options.save_probs:
            q = (probs.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
            writer.submit(_save_probs, folder / "probs" / f"{name}.npz", q, np.array(predictor.object_ids))
        progress.advance(1)
    return len(predictor.object_ids)


def _provenance(members: Sequence[LoadedMember], options: InferOptions, **context: object) -> dict:
    """What makes this run's masks: checkpoint contents and weights, options, data split."""
    hashes: dict[Path, str] = {}
    checkpoints = []
    for m in members:
        path = m.spec.checkpoint
        if path not in hashes:
            hashes[path] = m.sha256()  # a checkpoint file, or a folder of saved probabilities
        entry = {"sha256": hashes[path], "weight": round(float(m.weight), 9)}
        if m.hf is not None:  # hf: member: which model (hub id or folder) and its family
            entry.update(model=m.hf.spec, model_type=m.hf.model_type)
        checkpoints.append(entry)
    opts = {k: v for k, v in dataclasses.asdict(options).items() if k not in _NOT_PROVENANCE}
    opts["scales"] = [float(s) for s in opts["scales"]]
    return make_record(checkpoints, opts, data=context,
                       checkpoint_files=[m.label for m in members])


def read_inputs(seq: VideoSequence, given: str | None) -> dict[str, str]:
    """The fingerprints of what a run reads of ``seq`` (:mod:`vosbench.provenance`): its frames, and
    the annotations ``given`` lets it open (frame 0's for ``"first"``, else all of the sequence's)."""
    per_object = getattr(seq, "input_annotations", None)  # SA-V: several PNGs per frame (vosbench.data.sav)
    if per_object is not None:
        annotations = per_object(given or "first")
    elif (given or "first") == "first":
        first = seq.annotation_paths.get(seq.frame_paths[0].stem) if seq.frame_paths else None
        annotations = [first] if first is not None else []
    else:
        annotations = [seq.annotation_paths[s] for s in seq.frame_names if s in seq.annotation_paths]
    return sequence_inputs(seq.frame_paths, annotations)


def _target(out: Path, seq: VideoSequence, dataset: object) -> Path:
    """Where a sequence's masks go: ``out/<seq>``, or ``out`` itself for one video."""
    return out if isinstance(dataset, SingleVideo) else out / seq.name


def _check_video_out(out: Path) -> None:
    """A non-empty ``--out`` of one video must hold earlier results (never replace someone's folder)."""
    if not (out / PROVENANCE_FILE).is_file():
        raise ConfigError(f"{out}: --out is not empty and holds no vosbench results ({PROVENANCE_FILE}); "
                          "choose a new or empty folder")


def embedded_model_note(members: Sequence[LoadedMember], dataset: object) -> str | None:
    """One line when every model member has seen only the embedded procedural dataset and the data is real."""
    models = [m for m in members if m.model is not None]
    if not models or not all(embedded_only(m.trained_on) for m in models):
        return None
    if isinstance(dataset, DavisDataset) and dataset_kind(dataset.root) == EMBEDDED:
        return None
    names = ", ".join(dict.fromkeys(m.spec.checkpoint.name for m in models))
    return EMBEDDED_NOTE.format(model=names)


def open_dataset(
    data: str | os.PathLike | SingleVideo, split: str, resolution: str
) -> DavisDataset | YouTubeVOS | SavDataset | SingleVideo:
    """An SA-V split when ``data/sav_<split>.txt`` exists; a YouTube-VOS or MOSEv2 split when
    ``data/<split>/meta.json`` does (MOSEv2's lists video lengths; its results are MOSE's
    ``<out>/<video>/<frame>.png``, every frame); else the DAVIS layout (a :class:`SingleVideo`,
    one video, is taken as it is)."""
    if isinstance(data, SingleVideo):
        return data
    if is_sav_root(data, split):
        return SavDataset(data, split)
    if (Path(data) / split / "meta.json").is_file():
        if is_mosev2_meta(Path(data) / split / "meta.json"):
            return Mosev2Dataset(data, split)  # type: ignore[return-value]
        return YouTubeVOS(data, split)
    return DavisDataset(data, split, resolution)


def _share(dataset: DavisDataset | YouTubeVOS | SavDataset, rank: int, world_size: int) -> tuple[list[VideoSequence], str]:
    """This rank's sequences (all of them alone; else dealt longest-first by frame count) and a
    line saying what it took ("" alone)."""
    names = dataset.sequence_names
    if world_size == 1:
        return [dataset.sequence(n) for n in names], ""
    every = {n: dataset.sequence(n) for n in names}
    mine = deal_longest_first([(n, s.num_frames) for n, s in every.items()], world_size)[rank]
    frames = sum(every[n].num_frames for n in mine)
    line = (f"rank {rank}/{world_size} takes {len(mine)} of {len(names)} sequences ({frames} of "
            f"{sum(s.num_frames for s in every.values())} frames, longest first): {', '.join(mine) or 'none'}")
    return [every[n] for n in mine], line


def infer_dataset(
    ensemble: str | os.PathLike | Recipe | Sequence[MemberSpec],
    data: str | os.PathLike | SingleVideo,
    split: str = "val",
    resolution: str = "480p",
    out: str | os.PathLike = "results",
    options: InferOptions | None = None,
    progress: Progress | None = None,
    *,
    rank: int = 0,
    world_size: int = 1,
    numerics: Numerics | None = None,
    announce: Callable[[str], None] | None = None,
) -> InferSummary:
    """Segment every sequence of ``split`` (this rank's share) and write the results under ``out``.

    ``ensemble``: a checkpoint path, ``"a.pt,b.pt"``, a recipe TOML path, a :class:`Recipe` or
    member specs. Options the caller leaves at None in :meth:`InferOptions.resolve` come from the
    recipe; pass a ready :class:`InferOptions` to use it as is. ``data`` may be one video
    (:func:`vosbench.data.video.open_video`): its masks go straight into ``out``. ``numerics``: the
    device and precision already resolved by the caller (default: resolved here from ``options``).
    With ``world_size > 1`` this rank takes its share of the sequences, dealt longest-first.
    ``announce`` receives the lines that say, once every input is checked and before any work,
    what runs where (device, GPU, precision and why; this rank's share); default: the log.
    """
    if isinstance(ensemble, Recipe):
        recipe = ensemble
    elif isinstance(ensemble, (str, os.PathLike)):
        recipe = parse_ensemble(ensemble)
    else:
        recipe = Recipe(members=list(ensemble))
    options = (options or InferOptions.resolve(recipe)).validate()  # validate before any work
    hf_members = [m for m in recipe.members if m.hf_reference is not None]
    if hf_members and options.finetune_steps > 0:
        from vosbench.infer.ensemble import refuse_finetune

        raise ConfigError(refuse_finetune(hf_members[0].spec))
    if not 0 <= rank < world_size:
        raise ConfigError(f"rank {rank} out of range for world size {world_size}")
    progress = ensure_progress(progress)
    # the one resolution of this run's device and precision; online finetuning trains, so its
    # ``auto`` is resolved for training (bf16 where the GPU has it, though inference runs fp16)
    numerics = numerics or resolve_numerics(options.device, options.precision, "infer")
    tuning = resolve_numerics(numerics.device, options.precision, "train") if options.finetune_steps > 0 else None
    device = numerics.device
    apply_backend_policy(numerics)
    engine, finetune = options.engine(numerics), options.finetune(tuning)
    # from here on the options name what actually runs (auto resolved)
    options = dataclasses.replace(options, device=str(device), precision=numerics.precision)
    dataset = open_dataset(data, split, resolution)
    options = dataclasses.replace(options, given=resolve_given(options.given, dataset))
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: --out exists and is not a folder")
    members = load_members(recipe, device, engine, trainable=options.finetune_steps > 0,
                           offload_state=options.offload_state)
    if isinstance(dataset, SavDataset) and all(m.hf is not None for m in members):
        # SA-V's layout holds overlaps: SAM-family members score each object on its own
        engine = dataclasses.replace(engine, independent_objects=True)
    note = embedded_model_note(members, dataset)
    if note:
        log.warning("%s", note)
    summary = InferSummary(out, split, [f"{m.label} ({m.preset}, w={m.weight:.3g})" for m in members],
                           rank, world_size, device=options.device, precision=options.precision)
    needs_depth = any(m.needs_depth for m in members)
    sequences, share = _share(dataset, rank, world_size)
    estimator = None
    if needs_depth:
        missing = [s for s in sequences if not s.has_depth]
        if missing and options.depth_estimator is None:
            raise _missing_depth(missing[0])
        if missing:
            estimator = _make_estimator(options.depth_estimator, options.device)
    _check_writable(out)
    extra: dict[str, object] = {}
    if tuning is not None and tuning.precision != numerics.precision:
        extra["finetune_precision"] = tuning.precision  # what the finetuning ran, when not the inference's
    if isinstance(dataset, SingleVideo):  # one video: its frames straight into out
        split = dataset.split
        records = {seq.name: _provenance(members, options, video=dataset.identity, **extra) for seq in sequences}
        summary.split = split
    else:
        run_record = _provenance(members, options, split=split, resolution=resolution, **extra)
        run_record["data_root"] = str(Path(data).absolute())
        records = {seq.name: {**run_record, "inputs": read_inputs(seq, options.given)} for seq in sequences}
    sweep_temps(out)  # temp folders of a killed run
    if isinstance(dataset, SingleVideo):
        sweep_temps(out.parent)  # out itself is built beside it
    done = set()
    for seq in sequences:  # refuse before any work when a finished folder holds other results
        target = _target(out, seq, dataset)
        if isinstance(dataset, SingleVideo):
            if not any(not p.name.startswith(".") for p in target.iterdir()):  # empty, or only hidden files
                continue
            _check_video_out(target)
        elif not target.is_dir():
            continue
        if not options.overwrite:
            check_same_provenance(target, records[seq.name])
            done.add(seq.name)
    say = announce or log.info
    say(numerics.announce())
    if tuning is not None and tuning.precision != numerics.precision:
        say(f"online finetuning: {tuning.announce()}")
    if share:
        say(share)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with contextlib.ExitStack() as stack:
        scratch = out
        if estimator:
            scratch = Path(stack.enter_context(
                tempfile.TemporaryDirectory(prefix=temp_prefix("depth"), suffix=TEMP_MARK, dir=out)))
        for seq in sequences:
            target = _target(out, seq, dataset)
            if seq.name in done:
                summary.sequences.append(SequenceResult(seq.name, seq.num_frames, 0, "skipped"))
                continue
            depth = _depth_source(seq, estimator, scratch, progress) if needs_depth else None
            progress.start(seq.name, total=seq.num_frames + (options.finetune_steps * len(members)))
            t0 = time.perf_counter()
            try:
                with atomic_dir(target) as tmp:
                    k = infer_sequence(seq, members, options, tmp, device, depth, progress,
                                       engine=engine, finetune=finetune)
                    write_provenance(tmp, records[seq.name])
            except OSError as exc:
                raise DataError(f"{target}: cannot write results ({exc.strerror or exc})") from None
            summary.sequences.append(SequenceResult(seq.name, seq.num_frames, k, "written", time.perf_counter() - t0))
    summary.peak_rss_mb = peak_rss_mb()
    if device.type == "cuda":
        summary.peak_cuda_mb = torch.cuda.max_memory_allocated(device) / 1024**2
    return summary
