"""``vosbench infer --video``: segment one video file or frames folder from one given mask.

The video is opened as a one-sequence dataset (:func:`vosbench.data.video.open_video`) and run by
the ordinary :func:`~vosbench.infer.run.infer_dataset`, so every model spec, TTA, finetuning,
ensembles, ``--save-probs`` and the provenance/skip rules are those of a dataset run. Output::

    OUT/<frame>.png          palette masks at the video's size (00000.png ... for a video file)
    OUT/provenance.json      checkpoints, options, content hashes of the frames and the mask
    OUT/probs/<frame>.npz    with save_probs
    OUT/overlay.mp4          with overlay: the masks over the frames, H.264, at the video's frame rate
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vosbench.data.imageio import read_mask
from vosbench.data.video import SingleVideo, open_video
from vosbench.infer.options import InferOptions
from vosbench.infer.recipe import MemberSpec, Recipe
from vosbench.infer.run import InferSummary, infer_dataset
from vosbench.progress import Progress, ensure_progress

OVERLAY_NAME = "overlay.mp4"
FOLDER_FPS = 24.0  # overlay frame rate for a frames folder, which has none (DAVIS was filmed at 24)


@dataclass
class VideoSummary:
    """What :func:`infer_video` did: the dataset-run summary plus the video's facts."""

    run: InferSummary
    frames: int
    size: tuple[int, int]  # H, W
    fps: float | None  # of a video file; None for a frames folder
    overlay: Path | None


def write_overlay(video: SingleVideo, out: Path, fps: float, progress: Progress | None = None) -> Path:
    """``out/overlay.mp4``: the masks in ``out`` over the video's frames."""
    from vosbench.visualize import write_overlay_video  # matplotlib and FFmpeg only when asked for

    seq = video.seq
    progress = ensure_progress(progress)
    progress.start(f"overlay {seq.name}", total=seq.num_frames)
    pairs = ((seq.frame(i), read_mask(out / f"{name}.png")) for i, name in enumerate(seq.frame_names))
    return write_overlay_video(out / OVERLAY_NAME, pairs, seq.size, fps, progress=progress)


def infer_video(
    ensemble: str | os.PathLike | Recipe | list[MemberSpec],
    video: str | os.PathLike,
    mask: str | os.PathLike,
    out: str | os.PathLike,
    *,
    mask_frame: int = 0,
    options: InferOptions | None = None,
    overlay: bool = False,
    progress: Progress | None = None,
) -> VideoSummary:
    """Segment ``video`` (a video file or a frames folder) from ``mask``, the id mask of frame
    ``mask_frame``, into ``out`` (``out/<frame>.png``); see the module docstring."""
    out = Path(out)
    existed = out.exists()
    with open_video(video, mask, mask_frame, progress) as source:
        try:
            summary = infer_dataset(ensemble, source, out=out, options=options, progress=progress)
        except BaseException:
            if not existed and out.is_dir() and not any(out.iterdir()):
                out.rmdir()  # a failed run leaves nothing behind, not even the folder
            raise
        made = write_overlay(source, out, source.fps or FOLDER_FPS, progress) if overlay else None
        return VideoSummary(summary, source.seq.num_frames, source.seq.size, source.fps, made)
