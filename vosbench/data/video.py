"""One video as a one-sequence dataset: a video file (mp4/mov/webm/...) or a folder of frames.

``vosbench infer --video V --first-mask M`` reads its input through :func:`open_video`, which
checks everything before any model runs (a corrupt or unreadable video, frames of mixed sizes, a
mask of another size or without objects are one :class:`DataError`) and presents the video as a
:class:`SingleVideo`, the one-sequence dataset the ordinary ``infer_dataset`` run takes. So every
model spec, TTA, finetuning, ensembles and ``--save-probs`` work on it unchanged, and its masks
are the ones the same checkpoint gives on a DAVIS-layout root holding the same frames.

A video file is decoded once with PyAV into lossless PNG frames ``00000.png ...`` in a temp
folder (removed when the ``with`` block ends): the whole file is decoded up front, so a file that
breaks off half way is refused before anything is written. A frames folder is read in place, in
the order of the frame numbers its names end in (:mod:`vosbench.data.frames`, one common prefix):
``frame_2.jpg`` before ``frame_10.jpg``.

The given mask belongs to frame 0, or to ``mask_frame``: its objects then join on that frame
(frames before it are background), as in Cutie's and SAM 2's propagation from a prompted frame.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vosbench.data.davis import VideoSequence
from vosbench.data.frames import FRAME_SUFFIXES, list_frame_files
from vosbench.data.imageio import VOID_ID, image_size, read_mask, write_mask
from vosbench.errors import DataError
from vosbench.fsutil import TEMP_MARK, sha256_file, temp_prefix
from vosbench.progress import Progress, ensure_progress

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v")


@dataclass(frozen=True)
class SingleVideo:
    """A one-sequence dataset (what ``infer_dataset`` reads) over one video and its given mask.

    Results go straight into the output folder (``OUT/<frame>.png``), not ``OUT/<seq>/``.
    """

    seq: VideoSequence
    source: Path  # the video file or frames folder the user named
    fps: float | None  # frames per second of a video file (None for a frames folder)
    mask_frame: int  # index of the frame the given mask belongs to
    identity: dict  # what the results depend on: content hashes of the frames and the mask

    @property
    def sequence_names(self) -> list[str]:
        return [self.seq.name]

    @property
    def split(self) -> str:
        return self.source.name

    @property
    def given(self) -> str:
        """The annotations a run reads: the one mask, joining on its frame."""
        return "first" if self.mask_frame == 0 else "first-appearance"

    def sequence(self, name: str) -> VideoSequence:
        if name != self.seq.name:
            raise DataError(f"{self.source}: holds one video, {self.seq.name!r}, not {name!r}")
        return self.seq

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[VideoSequence]:
        yield self.seq


def list_frame_folder(folder: Path, exclude: Path | None = None) -> list[Path]:
    """The frames (jpg/png) of ``folder`` in frame-number order (:func:`vosbench.data.frames.list_frame_files`:
    names are frame numbers, one file per number); a :class:`DataError` when there are none."""
    frames = list_frame_files(folder, exclude=exclude)
    if not frames:
        raise DataError(f"{folder}: no frames (jpg or png) in the folder")
    return frames


def _check_frame_sizes(frames: list[Path], progress: Progress) -> tuple[int, int]:
    """The common (height, width) of ``frames`` (image headers only), else a :class:`DataError`."""
    size = image_size(frames[0])
    progress.start(f"checking {frames[0].parent.name}", total=len(frames))
    for p in frames:
        h, w = image_size(p)
        if (h, w) != size:
            raise DataError(f"{p}: frame size {w}x{h} differs from the first frame's {size[1]}x{size[0]} "
                            f"({frames[0].name}); a video's frames must share one size")
        progress.advance()
    return size


def _decode_video(path: Path, folder: Path, progress: Progress) -> tuple[list[Path], float | None]:
    """Decode every frame of ``path`` into ``folder/00000.png ...``; returns the paths and the frame rate."""
    import av  # imported here: `vosbench --help` does not load FFmpeg

    try:
        container = av.open(str(path))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (av.FFmpegError, OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise DataError(f"{path}: cannot open the video ({why}; corrupt, truncated or not a video)") from None
    frames: list[Path] = []
    with container:
        if not container.streams.video:
            raise DataError(f"{path}: no video stream in the file")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        expected = int(stream.frames or 0)  # from the container's index; 0 where unknown
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else None
        progress.start(f"decoding {path.name}", total=expected or None)
        size = None
        try:
            for frame in container.decode(stream):
                rgb = frame.to_ndarray(format="rgb24")
                if size is None:
                    size = rgb.shape[:2]
                elif rgb.shape[:2] != size:
                    raise DataError(f"{path}: frame {len(frames)} is {rgb.shape[1]}x{rgb.shape[0]}, the first "
                                    f"{size[1]}x{size[0]}; a video's frames must share one size")
                out = folder / f"{len(frames):05d}.png"
                Image.fromarray(rgb).save(out, format="PNG", compress_level=1)  # lossless, fast
                frames.append(out)
                progress.advance()
        except av.FFmpegError as exc:
            why = getattr(exc, "strerror", None) or exc
            raise DataError(f"{path}: corrupt video, decoding stopped after {len(frames)} frames ({why})") from None
    if not frames:
        raise DataError(f"{path}: corrupt or empty video (no frame could be decoded)")
    if expected and len(frames) < expected:
        raise DataError(f"{path}: corrupt or truncated video: decoded {len(frames)} of the {expected} frames "
                        "its header lists")
    return frames, fps


def _read_given_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    """The given mask as object ids: a palette PNG (indices) or a grey PNG (values; a 0/255 mask is one object)."""
    if not path.is_file():
        raise DataError(f"{path}: mask file not found")
    mask = read_mask(path, allow_gray=True)
    if mask.shape != size:
        raise DataError(f"{path}: mask size {mask.shape[1]}x{mask.shape[0]} differs from the video's "
                        f"frame size {size[1]}x{size[0]}")
    with Image.open(path) as img:
        grey = img.mode != "P"
    values = set(np.unique(mask).tolist())
    if grey and values == {0, VOID_ID}:  # a binary 0/255 mask (DAVIS-2016 style): one object
        mask = (mask == VOID_ID).astype(np.uint8)
    if not set(np.unique(mask).tolist()) - {0, VOID_ID}:
        raise DataError(f"{path}: the mask has no objects (every pixel is background 0 or void 255)")
    return mask


def _folder_identity(frames: list[Path]) -> str:
    """One SHA-256 over the frames' names and contents, in order."""
    h = hashlib.sha256()
    for p in frames:
        h.update(p.name.encode() + b"\0" + bytes.fromhex(sha256_file(p)))
    return h.hexdigest()


@contextlib.contextmanager
def open_video(
    video: str | os.PathLike,
    mask: str | os.PathLike,
    mask_frame: int = 0,
    progress: Progress | None = None,
) -> Iterator[SingleVideo]:
    """Check and open ``video`` (a video file or a frames folder) with its given ``mask`` of frame
    ``mask_frame``; the decoded frames of a video file live until the ``with`` block ends."""
    video, mask = Path(video), Path(mask)
    progress = ensure_progress(progress)
    if mask_frame < 0:
        raise DataError(f"--mask-frame must be 0 or more, got {mask_frame}")
    if not video.exists():
        raise DataError(f"{video}: video file or frames folder not found")
    with tempfile.TemporaryDirectory(prefix=temp_prefix("video"), suffix=TEMP_MARK) as tmp:
        scratch = Path(tmp)
        if video.is_dir():
            frames = list_frame_folder(video, exclude=mask)
            size = _check_frame_sizes(frames, progress)
            fps = None
            identity = {"frames_sha256": _folder_identity(frames), "frames": len(frames)}
        else:
            if video.suffix.lower() in FRAME_SUFFIXES:
                raise DataError(f"{video}: one image, not a video; pass the folder of frames")
            (scratch / "frames").mkdir()
            frames, fps = _decode_video(video, scratch / "frames", progress)
            size = image_size(frames[0])
            identity = {"video_sha256": sha256_file(video), "frames": len(frames)}
        if mask_frame >= len(frames):
            raise DataError(f"--mask-frame {mask_frame} is past the video's last frame ({len(frames) - 1})")
        ids = _read_given_mask(mask, size)
        given = scratch / "mask.png"  # the mask as a palette PNG, read by the ordinary annotation path
        write_mask(given, ids)
        identity.update(mask_sha256=sha256_file(given), mask_frame=mask_frame)
        seq = VideoSequence(
            name=video.stem if video.is_file() else video.name,
            frame_paths=tuple(frames),
            annotation_paths={frames[mask_frame].stem: given},
        )
        try:
            yield SingleVideo(seq, video, fps, mask_frame, identity)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
