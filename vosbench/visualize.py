"""Look at results: masks overlaid on frames (PNG frames and an MP4 per sequence) and per-frame J/F plots.

Output, per sequence ``<out>/<seq>/``::

    <seq>.mp4              frames with the masks blended in DAVIS colours and object outlines, as an
                           H.264 MP4 (yuv420p, faststart) that browsers play
    <seq>_jf.png           J and F of every object on every scored frame (needs ground truth)
    frames/00000.png ...   the same frames as PNGs (only when asked for: ~0.5 MB a 480p frame)

With ``compare``, each frame shows the ground truth (left) beside the prediction (right), whose
error pixels are painted: false positives magenta, false negatives cyan, another object yellow.

Each sequence folder is written atomically (built under a temp name, then renamed).

The video is encoded by PyAV (``av``), whose wheels ship FFmpeg with libx264: OpenCV's own
writer only offers ``mp4v`` (MPEG-4 Part 2), which browsers do not play.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from vosbench.data.davis import DavisDataset, VideoSequence
from vosbench.data.frames import frame_number
from vosbench.data.imageio import DAVIS_PALETTE, VOID_ID
from vosbench.errors import ConfigError, DataError
from vosbench.fsutil import atomic_dir, atomic_path, sweep_temps
from vosbench.metrics import (
    ArrayResults,
    GroundTruth,
    MaskReader,
    SequenceScores,
    open_results,
    score_sequence,
)
from vosbench.progress import Progress, ensure_progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VisualizeOptions:
    """How overlays look and what is written."""

    alpha: float = 0.5  # opacity of the mask colour over the frame
    outline: bool = True  # draw each object's contour at full opacity
    fps: float = 12.0  # frame rate of the MP4
    video: bool = True
    frames: bool = False  # the overlaid frames as PNGs too (large: ~0.5 MB a 480p frame)
    plot: bool = True  # per-frame J/F plot where the ground truth covers every frame
    compare: bool = False  # ground truth (left) beside the prediction with its error pixels (right)

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"overlay alpha must lie in [0, 1], got {self.alpha}")
        if self.fps <= 0:
            raise ConfigError(f"video fps must be positive, got {self.fps}")


@dataclass(frozen=True)
class SequenceVisual:
    """What :func:`visualize_results` wrote for one sequence."""

    name: str
    folder: Path
    num_frames: int
    size: tuple[int, int]  # H, W
    frames_dir: Path | None
    video: Path | None
    plot: Path | None
    scores: SequenceScores | None  # per-frame J and F (vosbench.metrics), None without ground truth


def outline_thickness(size: tuple[int, int]) -> int:
    """Contour width in pixels: 2 at 480p, 1 for small frames."""
    return max(1, round(min(size) / 240))


def overlay_masks(
    frame: np.ndarray, mask: np.ndarray, alpha: float = 0.5, outline: bool = True
) -> np.ndarray:
    """Blend an id mask into an ``H,W,3`` uint8 RGB frame in DAVIS colours; outline each object."""
    if frame.shape[:2] != mask.shape:
        raise DataError(
            f"mask size {mask.shape[1]}x{mask.shape[0]} differs from frame size {frame.shape[1]}x{frame.shape[0]}"
        )
    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    colours = DAVIS_PALETTE[mask]  # H,W,3
    blend = cv2.addWeighted(frame, 1.0 - alpha, colours, alpha, 0.0)
    out = np.where((mask != 0)[..., None], blend, frame)
    if outline:
        width = outline_thickness(mask.shape)
        for obj in np.unique(mask):
            if obj == 0:
                continue
            binary = (mask == obj).astype(np.uint8)
            contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
            colour = tuple(int(c) for c in DAVIS_PALETTE[obj])
            cv2.drawContours(out, contours, -1, colour, width)
    return out


# Error pixels in the comparison view: colours outside the DAVIS palette's first entries (the objects).
FALSE_POSITIVE = (255, 0, 255)  # magenta: an object predicted where the ground truth is background
FALSE_NEGATIVE = (0, 255, 255)  # cyan: an object of the ground truth predicted as background
WRONG_OBJECT = (255, 255, 0)  # yellow: predicted as another object
PANEL_GAP = 4  # white pixels between the two panels


def error_pixels(gt: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean ``H,W`` maps of the prediction's errors against the ground truth (void 255 is never an error)."""
    scored = gt != VOID_ID
    return {
        "false positive": scored & (gt == 0) & (pred != 0),
        "false negative": scored & (gt != 0) & (pred == 0),
        "wrong object": scored & (gt != 0) & (pred != 0) & (pred != gt),
    }


def _label(image: np.ndarray, parts: list[tuple[str, tuple[int, int, int]]]) -> None:
    """Write ``parts`` (text, RGB colour) left to right in the top-left corner, on a dark band (frames
    under 120 pixels high stay unlabelled: the text would hide them)."""
    if image.shape[0] < 120:
        return
    scale = max(0.35, image.shape[0] / 960)
    thick = max(1, round(scale * 2))
    (_, th), base = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    x, y = 4, 4 + th
    widths = [cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0][0] for t, _ in parts]
    band = image[: y + base + 4, : min(image.shape[1], x + sum(widths) + 8 * len(parts))]
    band[:] = (band * 0.4).astype(np.uint8)
    for (text, colour), w in zip(parts, widths):
        cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv2.LINE_AA)
        x += w + 8


def compare_panels(frame: np.ndarray, gt: np.ndarray, pred: np.ndarray, alpha: float = 0.5,
                   outline: bool = True) -> np.ndarray:
    """``H, 2W+gap, 3``: the ground truth over the frame (left), the prediction over the frame with its
    error pixels painted (right): false positives magenta, false negatives cyan, wrong object yellow."""
    if gt.shape != pred.shape:
        raise DataError(f"ground truth size {gt.shape[1]}x{gt.shape[0]} differs from the prediction's "
                        f"{pred.shape[1]}x{pred.shape[0]}")
    left = overlay_masks(frame, np.where(gt == VOID_ID, 0, gt).astype(np.uint8), alpha, outline)
    right = overlay_masks(frame, pred, alpha, outline)
    errors = error_pixels(gt, pred)
    for colour, where in zip((FALSE_POSITIVE, FALSE_NEGATIVE, WRONG_OBJECT), errors.values()):
        right[where] = colour
    _label(left, [("ground truth", (255, 255, 255))])
    _label(right, [("prediction", (255, 255, 255)), ("false pos.", FALSE_POSITIVE), ("false neg.", FALSE_NEGATIVE),
                   ("wrong obj.", WRONG_OBJECT)])
    gap = np.full((frame.shape[0], PANEL_GAP, 3), 255, np.uint8)
    return np.concatenate([left, gap, right], axis=1)


def mean_jf(scores: SequenceScores) -> tuple[float, float]:
    """(J-Mean, F-Mean) of a sequence: the mean over objects of each object's mean over frames."""
    if not scores.j.size:
        return float("nan"), float("nan")
    return float(scores.j.mean(axis=1).mean()), float(scores.f.mean(axis=1).mean())


def per_frame_scores(
    name: str, annotation_paths: Sequence[Path], predictions: MaskReader | Mapping[str, np.ndarray]
) -> SequenceScores:
    """J and F per object on the frames the DAVIS evaluation scores (all annotated but first and last).

    Computed by :func:`vosbench.metrics.score_sequence`, so the values are the ones `vosbench
    evaluate` reports; ``predictions`` is a results source or a map of frame names to id masks.
    Object ids beyond the first annotation's are ignored here (``package-submission`` warns).
    """
    gt = GroundTruth(name, tuple(sorted(annotation_paths, key=frame_number)))  # frame order, as evaluate
    source = ArrayResults({name: predictions}) if isinstance(predictions, Mapping) else predictions
    return score_sequence(gt, source, ignore_extra_ids=True)


def plot_frame_scores(path: str | os.PathLike, scores: SequenceScores, title: str) -> None:
    """Write a PNG with J (top) and F (bottom) per object over the scored frames, atomically (in percent,
    as every printed score)."""
    fig = Figure(figsize=(10, 5.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 1, sharex=True)
    x = [int(n) if n.isdigit() else i for i, n in enumerate(scores.frames, start=1)]
    j_mean, f_mean = mean_jf(scores)
    object_ids = range(1, scores.n_objects + 1)
    for ax, values, label, mean in (
        (axes[0], 100 * scores.j, "J (region IoU, %)", 100 * j_mean),
        (axes[1], 100 * scores.f, "F (boundary, %)", 100 * f_mean),
    ):
        for k, obj in enumerate(object_ids):
            colour = DAVIS_PALETTE[obj] / 255.0
            ax.plot(x, values[k], color=colour, linewidth=1.6, label=f"object {obj} ({values[k].mean():.1f})")
        if scores.n_objects > 1:
            ax.plot(
                x,
                values.mean(axis=0),
                color="black",
                linestyle="--",
                linewidth=1.2,
                label=f"mean ({mean:.1f})",
            )
        ax.set_ylabel(label)
        ax.set_ylim(-2, 102)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    axes[1].set_xlabel("frame")
    axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"{title}: J&F {50 * (j_mean + f_mean):.1f} % (J {100 * j_mean:.1f}, F {100 * f_mean:.1f})")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


VIDEO_CODEC = "libx264"


class _Mp4Writer:
    """Streams RGB frames into an H.264 MP4 (PyAV), padding odd sizes to even (yuv420p needs them)."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float, final: Path | None = None):
        from fractions import Fraction

        import av  # imported here: `vosbench --help` does not load FFmpeg

        h, w = size
        self.path, self.final = path, final or path
        self.pad = ((0, h % 2), (0, w % 2), (0, 0))
        try:
            self.container = av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})
            self.stream = self.container.add_stream(VIDEO_CODEC, rate=Fraction(fps).limit_denominator(1001))
        except (av.FFmpegError, ValueError) as exc:
            raise DataError(f"{self.final}: cannot open an H.264 video writer ({exc})") from None
        self.stream.width, self.stream.height = w + w % 2, h + h % 2
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": "20", "preset": "fast"}
        self._av = av

    def write(self, rgb: np.ndarray) -> None:
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(np.pad(rgb, self.pad, mode="edge")),
                                                 format="rgb24")
        try:
            self.container.mux(self.stream.encode(frame))
        except self._av.FFmpegError as exc:
            raise DataError(f"{self.final}: cannot encode the video ({exc})") from None

    def close(self) -> None:
        try:
            self.container.mux(self.stream.encode(None))
            self.container.close()
        except self._av.FFmpegError as exc:
            raise DataError(f"{self.final}: cannot finish the video ({exc})") from None
        if not self.path.is_file() or self.path.stat().st_size == 0:
            raise DataError(f"{self.final}: no video was written")


def write_overlay_video(
    path: str | os.PathLike,
    frames: Iterable[tuple[np.ndarray, np.ndarray]],
    size: tuple[int, int],
    fps: float,
    alpha: float = 0.5,
    progress: Progress | None = None,
) -> Path:
    """Write ``(frame, mask)`` pairs as an H.264 overlay MP4 at ``path``, atomically (streamed)."""
    path, progress = Path(path), ensure_progress(progress)
    with atomic_path(path) as tmp:
        video = _Mp4Writer(tmp, size, fps, path)
        try:
            for frame, mask in frames:
                video.write(overlay_masks(frame, mask, alpha))
                progress.advance()
        finally:
            video.close()
    return path


def _write_png(path: Path, rgb: np.ndarray) -> None:
    """Fast PNG (zlib level 1; PIL's default level is ~10x slower on 480p frames)."""
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise DataError(f"{path}: OpenCV could not write the PNG")


def _check_complete(seq: VideoSequence, results: MaskReader) -> None:
    missing = [n for n in seq.frame_names if n not in results.frames(seq.name)]
    if missing:
        shown = ", ".join(f"{n}.png" for n in missing[:5]) + (
            f", ... ({len(missing)})" if len(missing) > 5 else ""
        )
        raise DataError(
            f"{results.describe(seq.name, missing[0])}: predicted mask missing (sequence {seq.name}: {shown})"
        )


def _visualize_sequence(
    seq: VideoSequence, results: MaskReader, out: Path, options: VisualizeOptions, progress: Progress
) -> SequenceVisual:
    """Overlay frame by frame (streamed: memory does not grow with the video's length)."""
    _check_complete(seq, results)
    size = seq.size
    if options.compare and not all(seq.has_mask(i) for i in range(seq.num_frames)):
        have = sum(seq.has_mask(i) for i in range(seq.num_frames))
        raise DataError(f"sequence {seq.name}: --compare needs ground truth on every frame "
                        f"({have} of {seq.num_frames} frames are annotated)")
    shown = (size[0], 2 * size[1] + PANEL_GAP) if options.compare else size
    progress.start(f"visualizing {seq.name}", total=seq.num_frames)
    with atomic_dir(out) as tmp:
        if options.frames:
            (tmp / "frames").mkdir()
        video = _Mp4Writer(tmp / f"{seq.name}.mp4", shown, options.fps, out / f"{seq.name}.mp4") if options.video else None
        try:
            for i, name in enumerate(seq.frame_names):
                frame, pred = seq.frame(i), results.read(seq.name, name)
                for what, shape, where in (
                    ("frame", frame.shape[:2], seq.frame_paths[i]),
                    ("mask", pred.shape, results.describe(seq.name, name)),
                ):
                    if shape != size:
                        raise DataError(
                            f"{where}: {what} size {shape[1]}x{shape[0]} differs from the "
                            f"sequence's {size[1]}x{size[0]}"
                        )
                if options.compare:
                    ov = compare_panels(frame, seq.mask(i), pred, options.alpha, options.outline)
                else:
                    ov = overlay_masks(frame, pred, options.alpha, options.outline)
                if options.frames:
                    _write_png(tmp / "frames" / f"{name}.png", ov)
                if video is not None:
                    video.write(ov)
                progress.advance()
        finally:
            if video is not None:
                video.close()
        scores = None
        if options.plot:
            if all(seq.has_mask(i) for i in range(seq.num_frames)) and seq.num_frames >= 3:
                scores = per_frame_scores(seq.name, list(seq.annotation_paths.values()), results)
                plot_frame_scores(tmp / f"{seq.name}_jf.png", scores, seq.name)
            else:
                log.info("%s: no ground truth on every frame (or under 3 frames); no J/F plot", seq.name)
    return SequenceVisual(
        name=seq.name,
        folder=out,
        num_frames=seq.num_frames,
        size=size,
        frames_dir=out / "frames" if options.frames else None,
        video=out / f"{seq.name}.mp4" if options.video else None,
        plot=out / f"{seq.name}_jf.png" if scores is not None else None,
        scores=scores,
    )


def default_out_dir(results: str | os.PathLike) -> Path:
    """``<results>-vis`` beside the results folder or zip (never inside a results folder)."""
    results = Path(results)
    name = results.stem if results.suffix.lower() == ".zip" else results.name
    return results.parent / f"{name}-vis"


def visualize_results(
    results: str | os.PathLike,
    data_root: str | os.PathLike,
    split: str = "val",
    *,
    sequences: Sequence[str] | None = None,
    out_dir: str | os.PathLike | None = None,
    resolution: str = "480p",
    options: VisualizeOptions | None = None,
    progress: Progress | None = None,
) -> list[SequenceVisual]:
    """Write overlays, videos and J/F plots for ``sequences`` (default: every sequence of the split).

    ``results`` is a results folder (``<seq>/<frame>.png``) or a submission zip.
    """
    results = Path(results)
    source = open_results(results)
    out_dir = default_out_dir(results) if out_dir is None else Path(out_dir)
    blocker = next((p for p in (out_dir, *out_dir.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ConfigError(f"{out_dir}: --out cannot be a folder ({blocker} is a file)")
    if results.is_dir() and (
        out_dir.resolve() == results.resolve() or results.resolve() in out_dir.resolve().parents
    ):
        raise DataError(f"{out_dir}: the output folder must not be inside the results folder {results}")
    options = options or VisualizeOptions()
    dataset = DavisDataset(data_root, split, resolution)
    names = list(dataset.sequence_names) if not sequences else list(sequences)
    unknown = [n for n in names if n not in dataset.sequence_names]
    if unknown:
        raise DataError(
            f"sequence {unknown[0]!r} is not in split {split!r} of {dataset.root} "
            f"(it has {', '.join(dataset.sequence_names[:8])}{', ...' if len(dataset) > 8 else ''})"
        )
    available = source.sequences()
    missing = [n for n in names if n not in available]
    if missing:
        raise DataError(f"{results}: no results for sequence{'s' * (len(missing) > 1)} {', '.join(missing)}")
    progress = ensure_progress(progress)
    sweep_temps(out_dir)  # sequence folders of a killed run
    return [_visualize_sequence(dataset.sequence(n), source, out_dir / n, options, progress) for n in names]
