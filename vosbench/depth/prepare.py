"""Prepare per-frame depth maps for a DAVIS-layout split: ``ROOT/Depth/<res>/<seq>/%05d.png``.

Monocular depth is relative: each prediction has its own unknown scale (and, for disparity, shift),
and that scale drifts from frame to frame. We normalise **per video**: one robust range
(``low``/``high`` percentiles over all frames of the sequence) maps raw depth to [0, 1]
(0 = near, 1 = far), so a value means the same distance in every frame of a video and an object
that does not move keeps its depth over time — what a memory network comparing frames needs.
Per-frame normalisation would stretch each frame to the full range and make depth jump when a
near object enters; a global (dataset) scale is meaningless across unrelated videos. Percentiles
rather than min/max keep a few outlier pixels (sky, reflections) from squashing the rest.

The range is stored in ``normalization.json`` next to the maps (written last). A sequence is
built in a temp folder and renamed into place, so a failure leaves nothing partial behind; a
finished sequence (JSON plus every PNG) is skipped on re-run unless ``overwrite``. Maps this
module did not write (no JSON, e.g. the synthetic dataset's rendered depth) are never replaced
without ``overwrite``: complete ones are skipped, incomplete ones are an error.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from vosbench.data.davis import DavisDataset, VideoSequence
from vosbench.data.imageio import write_depth
from vosbench.depth.estimators import DepthEstimator, FrameKey
from vosbench.errors import ConfigError, DataError
from vosbench.fsutil import atomic_dir, atomic_write_text, sweep_temps
from vosbench.progress import Progress, ensure_progress

log = logging.getLogger(__name__)

NORMALIZATION_FILE = "normalization.json"
_RAW_FILE = ".raw_depth.npy"
FORMULA = "png / 65535 = clip((raw - low) / (high - low), 0, 1); 0 = near, 1 = far"


def _checked_map(pred: object, shape: tuple[int, int], source: Path) -> np.ndarray:
    """An estimator's map for the frame at ``source`` as float32, refused unless finite and frame-sized."""
    pred = np.asarray(pred, dtype=np.float32)
    if pred.shape != tuple(shape):
        raise DataError(f"{source}: estimator returned a {pred.shape} map for a {shape[0]}x{shape[1]} frame")
    if not np.all(np.isfinite(pred)):
        raise DataError(f"{source}: estimator returned NaN or infinite depth")
    return pred


@dataclass(frozen=True)
class PercentileNormalization:
    """Per-video robust range: raw values at the ``low``/``high`` percentiles map to 0 and 1.

    Percentiles are taken over a strided subsample of at most ``max_samples_per_frame`` pixels of
    every frame (exact for frames up to 256x256 with the default).
    """

    low: float = 1.0
    high: float = 99.0
    max_samples_per_frame: int = 65536

    def __post_init__(self) -> None:
        if not 0.0 <= self.low < self.high <= 100.0:
            raise ConfigError(f"normalisation percentiles must satisfy 0 <= low < high <= 100, got {self.low}, {self.high}")


@dataclass
class SequenceDepthResult:
    name: str
    frames: int
    status: Literal["written", "skipped"]
    seconds: float = 0.0
    low: float | None = None
    high: float | None = None
    note: str = ""


@dataclass
class DepthPrepareSummary:
    root: Path
    split: str
    resolution: str
    depth_dir: Path
    estimator: dict
    sequences: list[SequenceDepthResult] = field(default_factory=list)

    @property
    def written(self) -> list[SequenceDepthResult]:
        return [s for s in self.sequences if s.status == "written"]

    @property
    def skipped(self) -> list[SequenceDepthResult]:
        return [s for s in self.sequences if s.status == "skipped"]

    @property
    def frames_written(self) -> int:
        return sum(s.frames for s in self.written)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.written)

    @property
    def frames_per_second(self) -> float:
        return self.frames_written / self.seconds if self.seconds > 0 else 0.0


def is_finished(seq_dir: Path, frame_names: list[str]) -> bool:
    """True when ``normalization.json`` and a PNG for every frame exist."""
    return (seq_dir / NORMALIZATION_FILE).is_file() and all((seq_dir / f"{n}.png").is_file() for n in frame_names)


def normalize_depth(raw: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map raw depth to [0, 1] with ``(raw - low) / (high - low)``, clipped (0 = near, 1 = far)."""
    if high <= low:
        return np.zeros(raw.shape, np.float32)
    return np.clip((raw.astype(np.float32) - low) / (high - low), 0.0, 1.0)


def _subsample(depth: np.ndarray, max_samples: int) -> np.ndarray:
    h, w = depth.shape
    stride = max(1, math.ceil(math.sqrt(h * w / max_samples)))
    return depth[::stride, ::stride].ravel()


def _video_range(samples: np.ndarray, norm: PercentileNormalization) -> tuple[float, float]:
    low, high = (float(v) for v in np.percentile(samples, [norm.low, norm.high]))
    if high <= low:  # most pixels equal: fall back to the full range
        low, high = float(samples.min()), float(samples.max())
    return low, high


def prepare_depth(
    data: str | os.PathLike,
    split: str,
    resolution: str,
    estimator: DepthEstimator,
    *,
    overwrite: bool = False,
    normalization: PercentileNormalization | None = None,
    progress: Progress | None = None,
) -> DepthPrepareSummary:
    """Write 16-bit depth maps for every frame of ``split``; see the module docstring."""
    norm = normalization or PercentileNormalization()
    progress = ensure_progress(progress)
    dataset = DavisDataset(data, split, resolution)
    info = estimator.describe()
    summary = DepthPrepareSummary(dataset.root, split, resolution, dataset.depth_dir, info)
    sequences = list(dataset)
    sweep_temps(dataset.depth_dir)  # sequence folders of a run killed while writing them
    if not overwrite:
        for seq in sequences:
            _refuse_foreign_partial(dataset.depth_dir / seq.name, seq.frame_names)
    for seq in sequences:
        out_dir = dataset.depth_dir / seq.name
        if not overwrite and (is_finished(out_dir, seq.frame_names) or _is_foreign(out_dir, seq.frame_names)):
            summary.sequences.append(_skipped(seq, out_dir, info))
            continue
        progress.start(seq.name, total=seq.num_frames)
        t0 = time.perf_counter()
        try:
            low, high = _prepare_sequence(seq, out_dir, estimator, info, norm, progress)
        except OSError as exc:  # a file where a folder goes, disk full, no permission
            where = exc.filename or out_dir
            raise DataError(f"{where}: cannot write depth maps ({exc.strerror or exc})") from None
        summary.sequences.append(
            SequenceDepthResult(seq.name, seq.num_frames, "written", time.perf_counter() - t0, low, high)
        )
    return summary


def _is_foreign(seq_dir: Path, frame_names: list[str]) -> bool:
    """Complete maps without ``normalization.json``: made by something else (e.g. a renderer)."""
    return not (seq_dir / NORMALIZATION_FILE).exists() and all((seq_dir / f"{n}.png").is_file() for n in frame_names)


def _refuse_foreign_partial(seq_dir: Path, frame_names: list[str]) -> None:
    """Never silently replace maps we did not write: an incomplete foreign folder needs --overwrite."""
    if not seq_dir.is_dir() or (seq_dir / NORMALIZATION_FILE).exists():
        return
    if any(p.suffix == ".png" for p in seq_dir.iterdir()) and not _is_foreign(seq_dir, frame_names):
        raise DataError(f"{seq_dir}: holds depth maps for only some frames and no {NORMALIZATION_FILE} "
                        "(not made by `vosbench prepare depth`); pass --overwrite to replace them")


def _skipped(seq: VideoSequence, out_dir: Path, info: dict) -> SequenceDepthResult:
    note = ""
    try:
        stored = json.loads((out_dir / NORMALIZATION_FILE).read_text())
    except (OSError, ValueError):
        stored = {}
    if not stored:
        note = f"existing maps without {NORMALIZATION_FILE}; --overwrite to replace"
    elif stored.get("estimator") != info:
        note = "made by another estimator; --overwrite to redo"
        log.warning("%s: depth maps were made by %s, not %s; pass --overwrite to redo",
                    out_dir, stored.get("estimator"), info)
    return SequenceDepthResult(seq.name, seq.num_frames, "skipped", low=stored.get("low"),
                               high=stored.get("high"), note=note)


def _prepare_sequence(
    seq: VideoSequence,
    out_dir: Path,
    estimator: DepthEstimator,
    info: dict,
    norm: PercentileNormalization,
    progress: Progress,
) -> tuple[float, float]:
    """Predict every frame, pick the video's range, write PNGs then the JSON into a temp folder."""
    n = seq.num_frames
    h, w = seq.size
    names = seq.frame_names
    batch = max(1, int(getattr(estimator, "batch_size", 1)))
    with atomic_dir(out_dir) as tmp:
        # Raw predictions of the whole video on disk (float32, N,H,W): the range needs all of them.
        raw = np.lib.format.open_memmap(tmp / _RAW_FILE, mode="w+", dtype=np.float32, shape=(n, h, w))
        samples: list[np.ndarray] = []
        for start in range(0, n, batch):
            idx = range(start, min(n, start + batch))
            frames = []
            for i in idx:
                frame = seq.frame(i)
                if frame.shape[:2] != (h, w):
                    raise DataError(f"{seq.frame_paths[i]}: frame size {frame.shape[1]}x{frame.shape[0]} "
                                    f"differs from the sequence's {w}x{h}")
                frames.append(frame)
            preds = estimator.predict(frames, [FrameKey(seq.name, names[i]) for i in idx])
            if len(preds) != len(frames):
                raise DataError(f"{seq.name}: estimator returned {len(preds)} maps for {len(frames)} frames")
            for i, pred in zip(idx, preds):
                pred = _checked_map(pred, (h, w), seq.frame_paths[i])
                raw[i] = pred
                samples.append(_subsample(pred, norm.max_samples_per_frame))
            progress.advance(len(frames))
        low, high = _video_range(np.concatenate(samples), norm)
        progress.update(f"{seq.name} (writing)")

        def write(i: int) -> None:
            write_depth(tmp / f"{names[i]}.png", normalize_depth(raw[i], low, high))

        # PNG encoding dominates once depth is predicted; zlib releases the GIL, so threads help.
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            list(pool.map(write, range(n)))
        del raw
        (tmp / _RAW_FILE).unlink()
        record = {
            "method": "percentile",
            "low_percentile": norm.low,
            "high_percentile": norm.high,
            "low": low,
            "high": high,
            "formula": FORMULA,
            "frames": n,
            "height": h,
            "width": w,
            "estimator": info,
        }
        atomic_write_text(tmp / NORMALIZATION_FILE, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return low, high



def is_static_set(root: str | os.PathLike) -> bool:
    """A `vosbench prepare static` folder (``images/`` + ``masks/``) rather than a DAVIS layout."""
    root = Path(root)
    return (root / "images").is_dir() and (root / "masks").is_dir() and not (root / "JPEGImages").is_dir()


def prepare_static_depth(
    root: str | os.PathLike,
    estimator: DepthEstimator,
    *,
    overwrite: bool = False,
    normalization: PercentileNormalization | None = None,
    progress: Progress | None = None,
) -> DepthPrepareSummary:
    """Depth maps for a static image set (D-STM pretraining): ``ROOT/depth/<name>.png``, 16-bit.

    Each still image is its own "video", so its range is its own (the same percentiles as a
    sequence's); ``ROOT/depth/normalization.json`` records every image's range and the estimator.
    Images whose map exists are skipped (``overwrite`` redoes them); each PNG is written atomically,
    so an interrupted run resumes where it stopped.
    """
    from vosbench.data.static import StaticImageSet

    norm = normalization or PercentileNormalization()
    progress = ensure_progress(progress)
    images = StaticImageSet(root)
    out_dir = images.root / "depth"
    info = estimator.describe()
    record_path = out_dir / NORMALIZATION_FILE
    try:
        record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    except ValueError:
        record = {}
    if overwrite:
        record = {}
    elif record.get("images") and record.get("estimator") != info:
        raise DataError(f"{record_path}: the maps there were made by {record.get('estimator')}; "
                        "pass --overwrite to redo them with this estimator")
    ranges: dict[str, list[float]] = dict(record.get("images", {}))
    summary = DepthPrepareSummary(images.root, "static", "", out_dir, info)
    sweep_temps(out_dir)  # maps and the record of a run killed while writing them
    # an existing map is kept (ours, or one put there by hand) unless overwrite
    todo = [i for i in range(len(images)) if overwrite or not (out_dir / f"{images.names[i]}.png").is_file()]
    skipped = len(images) - len(todo)
    if skipped:
        summary.sequences.append(SequenceDepthResult("(already made)", skipped, "skipped"))
    progress.start(f"depth of {images.root.name}", total=len(todo))
    t0 = time.perf_counter()
    batch = max(1, int(getattr(estimator, "batch_size", 1)))
    try:
        out_dir.mkdir(exist_ok=True)
        for start in range(0, len(todo), batch):
            idx = todo[start:start + batch]
            frames = [images.image(i) for i in idx]
            preds = estimator.predict(frames, [FrameKey("", images.names[i]) for i in idx])
            if len(preds) != len(frames):
                raise DataError(f"{images.root}: estimator returned {len(preds)} maps for {len(frames)} images")
            for i, frame, pred in zip(idx, frames, preds):
                pred = _checked_map(pred, frame.shape[:2], images.image_path(i))
                low, high = _video_range(_subsample(pred, norm.max_samples_per_frame), norm)
                write_depth(out_dir / f"{images.names[i]}.png", normalize_depth(pred, low, high))
                ranges[images.names[i]] = [low, high]
            progress.advance(len(idx))
    except OSError as exc:  # a file where the folder goes, disk full, no permission
        raise DataError(f"{exc.filename or out_dir}: cannot write depth maps ({exc.strerror or exc})") from None
    finally:
        if ranges:  # what was written so far, so a re-run skips it
            atomic_write_text(record_path, json.dumps({
                "method": "percentile, per image", "low_percentile": norm.low, "high_percentile": norm.high,
                "formula": FORMULA,
                "estimator": info, "images": dict(sorted(ranges.items())),
            }, indent=2) + "\n")
    if todo:
        summary.sequences.append(SequenceDepthResult("(images)", len(todo), "written", time.perf_counter() - t0))
    return summary
