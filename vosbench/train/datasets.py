"""Training samples: 3-frame clips from videos (main stage) or deformed static images (pretraining).

Every sample is a dict of tensors (``T`` frames, ``K`` = ``data.max_objects`` object slots)::

    images  T,3,H,W float32 in [0, 1]
    masks   T,K,H,W float32 one-hot per object slot (padded slots are all zero)
    target  T,H,W   int64 object ids 0..K (0 = background)
    valid   K       bool, True for real objects
    depth   T,1,H,W float32 in [0, 1] (only when the model uses depth)
    prior   T,K,H,W float32 (only for the SCM spatial prior) one-hot mask of the frame just before
            frame t in the video (SCM §2.3; its last annotated frame before t where not every frame
            has a mask, as in YouTube-VOS); entry 0 is frame 0's own mask. In static pretraining
            there is no video: the previous sampled frame's (deformed) mask.

A sample is a pure function of ``(seed, epoch, index)`` and the epoch's maximum skip, so a resumed
or distributed run draws exactly the samples an uninterrupted single-process run draws.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vosbench.data import augment as A
from vosbench.data.davis import DavisDataset, VideoSequence
from vosbench.data.imageio import VOID_ID, read_depth, read_frame, read_mask
from vosbench.data.static import StaticImageSet
from vosbench.data.youtube import YouTubeVOS
from vosbench.errors import DataError
from vosbench.train.config import AugmentSection, DataSection, SourceSection

log = logging.getLogger(__name__)

MAX_RETRIES = 10


# --------------------------------------------------------------------------- frame sampling


def sample_frame_indices(rng: np.random.Generator, n: int, clip_frames: int, max_skip: int) -> list[int]:
    """``clip_frames`` increasing indices into ``n`` frames, at most ``max_skip`` frames skipped between neighbours.

    With fewer than ``clip_frames`` frames, indices repeat (non-decreasing, starting at 0).
    """
    if n <= 0:
        raise ValueError("no frames to sample from")
    if n < clip_frames:
        return [0] + sorted(int(i) for i in rng.integers(0, n, size=clip_frames - 1))
    first = int(rng.integers(0, n - clip_frames + 1))
    out = [first]
    for i in range(1, clip_frames):
        remaining = clip_frames - 1 - i  # frames still to place after this one
        lo = out[-1] + 1
        hi = min(out[-1] + 1 + max_skip, n - 1 - remaining)
        out.append(int(rng.integers(lo, hi + 1)))
    return out


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class StaticItem:
    """One annotated still image (optionally with a depth map)."""

    image: Path
    mask: Path
    depth: Path | None = None


class VideoSource:
    """Annotated frames of every sequence of a DAVIS-layout (or YouTube-VOS) split."""

    def __init__(self, sequences: Sequence[VideoSequence], name: str):
        self.name = name
        self.sequences: list[VideoSequence] = []
        self.annotated: list[list[int]] = []  # per sequence, indices of frames with a mask
        for seq in sequences:
            idx = [i for i in range(seq.num_frames) if seq.has_mask(i)]
            if idx:
                self.sequences.append(seq)
                self.annotated.append(idx)
        if not self.sequences:
            raise DataError(f"{name}: no annotated frames to train on")
        single = [seq.name for seq, idx in zip(self.sequences, self.annotated) if len(idx) < 2]
        if len(single) == len(self.sequences):  # every clip would be one frame repeated: nothing to propagate
            raise DataError(f"{name}: every video has a single annotated frame ({', '.join(single[:3])}"
                            f"{', ...' if len(single) > 3 else ''}); training needs videos of two or more")
        if single:
            log.warning("%s: %d video(s) with a single annotated frame (%s%s) give clips of that frame repeated",
                        name, len(single), ", ".join(single[:3]), ", ..." if len(single) > 3 else "")

    def __len__(self) -> int:
        return len(self.sequences)

    def read_clip(self, rng: np.random.Generator, clip_frames: int, max_skip: int, depth: bool,
                  prior: bool = False) -> list[A.AugFrame]:
        """``clip_frames`` annotated frames; ``prior``: each carries the mask of the annotated frame
        just before it in the video (the first frame its own)."""
        k = int(rng.integers(len(self.sequences)))
        seq, ann = self.sequences[k], self.annotated[k]
        picks = sample_frame_indices(rng, len(ann), clip_frames, max_skip)
        frames = []
        for n, p in enumerate(picks):
            i = ann[p]
            m = seq.mask(i)
            assert m is not None
            before = seq.mask(ann[p - 1]) if prior and n > 0 and p > 0 else (m if prior else None)
            frames.append(A.AugFrame(seq.frame(i), m, seq.depth(i) if depth else None, before))
        return frames

    def static_items(self) -> list[StaticItem]:
        """Every annotated frame as a still image (pretraining from video datasets)."""
        items = []
        for seq, ann in zip(self.sequences, self.annotated):
            for i in ann:
                d = seq.depth_path(i) if seq.depth_dir is not None else None
                items.append(StaticItem(seq.frame_paths[i], seq.annotation_paths[seq.frame_paths[i].stem], d))
        return items


class StaticSource:
    """Still images with instance masks: ``root/images/*.jpg`` + ``root/masks/*.png`` (+ ``root/depth/*.png``)."""

    def __init__(self, items: list[StaticItem], name: str):
        if not items:
            raise DataError(f"{name}: no image/mask pairs to train on")
        self.items = items
        self.name = name

    @classmethod
    def from_folder(cls, root: str | os.PathLike) -> StaticSource:
        """A set written by ``vosbench prepare static`` (depth maps, if any, in ``root/depth/``)."""
        ds = StaticImageSet(root)
        items = [StaticItem(ds.image_path(i), ds.mask_path(i), ds.root / "depth" / f"{ds.names[i]}.png")
                 for i in range(len(ds))]
        return cls(items, str(root))

    def __len__(self) -> int:
        return len(self.items)

    def read_image(self, rng: np.random.Generator, depth: bool) -> A.AugFrame:
        item = self.items[int(rng.integers(len(self.items)))]
        d = None
        if depth:
            if item.depth is None or not item.depth.is_file():
                raise DataError(f"{item.depth or item.image}: depth map missing; create it with "
                                f"`vosbench prepare depth --data {self.name} --estimator NAME_OR_PATH`")
            d = read_depth(item.depth)
        return A.AugFrame(read_frame(item.image), read_mask(item.mask), d)


def data_roots(data: DataSection) -> list[str]:
    """The dataset root of every configured source (``data.root`` where a source names none)."""
    return [str(spec.root or data.root) for spec in (data.sources or [SourceSection(kind="davis")])]


def open_sources(data: DataSection) -> list[tuple[VideoSource | StaticSource, float]]:
    """Open every configured source (a single ``davis`` source at ``data.root`` when none is listed)."""
    specs = data.sources or [SourceSection(kind="davis")]
    out: list[tuple[VideoSource | StaticSource, float]] = []
    for spec in specs:
        root = Path(spec.root or data.root)
        split = spec.split or data.split
        if not str(spec.root or data.root):
            raise DataError("no dataset root given (use --data ROOT or data.root in the config)")
        if not root.is_dir():
            raise DataError(f"{root}: dataset root not found")
        if spec.kind == "static":
            out.append((StaticSource.from_folder(root), spec.weight))
        elif spec.kind == "youtube":
            out.append((VideoSource(list(YouTubeVOS(root, split)), f"{root}/{split}"), spec.weight))
        else:
            ds = DavisDataset(root, split, data.resolution)
            out.append((VideoSource(list(ds), f"{root} ({split})"), spec.weight))
    return out


# --------------------------------------------------------------------------- sample building


def select_objects(rng: np.random.Generator, first_mask: np.ndarray, max_objects: int) -> list[int]:
    """Up to ``max_objects`` ids present in the first frame, in random order."""
    ids = [int(i) for i in np.unique(first_mask) if i not in (0, VOID_ID)]
    if len(ids) > max_objects:
        ids = [ids[i] for i in rng.permutation(len(ids))[:max_objects]]
    return ids


def relabel(mask: np.ndarray, ids: list[int]) -> np.ndarray:
    """Map ``ids[k]`` to ``k + 1`` and everything else (other objects, void) to background."""
    lut = np.zeros(256, np.uint8)
    for k, i in enumerate(ids):
        lut[i] = k + 1
    return lut[mask]


def _deform_params(aug: AugmentSection, elastic: bool) -> A.DeformParams:
    return A.DeformParams(
        rotate=aug.rotate,
        scale=aug.scale,
        shear=aug.shear,
        translate=aug.translate,
        elastic_alpha=aug.elastic_alpha if elastic else 0.0,
        elastic_sigma=aug.elastic_sigma,
    )


def augment_clip(
    rng: np.random.Generator,
    frames: list[A.AugFrame],
    data: DataSection,
    aug: AugmentSection,
    *,
    static: bool,
) -> list[A.AugFrame]:
    """Resize the short side, flip, deform each frame, crop around the objects' union box, jitter colours.

    ``static``: the frames are copies of one image; each is deformed independently (elastic too).
    """
    short = int(rng.integers(data.short_side[0], data.short_side[1] + 1))
    frames = [A.resize_short_side(f, short) for f in frames]
    if aug.flip and rng.random() < 0.5:
        frames = [A.hflip(f) for f in frames]
    params = _deform_params(aug, elastic=static)
    frames = [A.random_deform(rng, f, params) for f in frames]
    origin = A.random_crop_origin(rng, frames[0].size, data.crop, A.union_bbox([f.mask for f in frames]))
    frames = [A.crop(f, origin, data.crop) for f in frames]
    jitter = {"brightness": aug.brightness, "contrast": aug.contrast, "saturation": aug.saturation, "hue": aug.hue}
    if any(jitter.values()):
        frames = [A.with_image(f, A.color_jitter(f.image, rng, **jitter)) for f in frames]
    return frames


def to_tensors(frames: list[A.AugFrame], max_objects: int, depth: bool, prior: bool = False) -> dict[str, torch.Tensor]:
    """Stack frames whose masks hold ids 1..k into the sample dict (objects absent from frame 0 dropped).

    ``prior``: the frames' prior masks become ``prior`` (or, for frames without one, the previous
    frame's mask).
    """
    present = [int(i) for i in np.unique(frames[0].mask) if 0 < i <= max_objects]
    masks_ids = np.stack([relabel(f.mask, present) for f in frames])  # T,H,W
    k = len(present)
    images = torch.from_numpy(np.stack([f.image for f in frames])).permute(0, 3, 1, 2).float().div_(255.0)
    target = torch.from_numpy(masks_ids.astype(np.int64))
    slots = torch.arange(1, max_objects + 1).view(1, -1, 1, 1)
    masks = (target.unsqueeze(1) == slots).float()  # T,K,H,W
    valid = torch.zeros(max_objects, dtype=torch.bool)
    valid[:k] = True
    out = {"images": images, "masks": masks, "target": target, "valid": valid}
    if depth:
        out["depth"] = torch.from_numpy(np.stack([f.depth for f in frames])).float().unsqueeze(1)
    if prior:
        before = [f.prior if f.prior is not None else frames[max(t - 1, 0)].mask for t, f in enumerate(frames)]
        prior_ids = torch.from_numpy(np.stack([relabel(m, present) for m in before]).astype(np.int64))
        out["prior"] = (prior_ids.unsqueeze(1) == slots).float()  # T,K,H,W
    return out


def _require_depth(src: VideoSource) -> None:
    """D-STM: fail before training (not later, inside a DataLoader worker) when a video has no Depth/."""
    for seq in src.sequences:
        if not seq.has_depth:
            seq.depth(0)  # raises the DataError naming the folder and the `vosbench prepare depth` command


class ClipDataset(Dataset):
    """``samples_per_epoch`` random clips per epoch from a weighted mix of sources.

    Call :meth:`set_epoch` before each epoch: it fixes the epoch's random stream and maximum skip.
    """

    def __init__(
        self,
        sources: list[tuple[VideoSource | StaticSource, float]],
        data: DataSection,
        aug: AugmentSection,
        *,
        depth: bool = False,
        seed: int = 0,
        prior: bool = False,
    ):
        if not sources:
            raise DataError("no training sources")
        self.data = data
        self.aug = aug
        self.depth = depth
        self.prior = prior  # SCM spatial prior: samples carry `prior` (see the module docstring)
        self.seed = seed
        self.static = data.stage == "static"
        self.sources: list[VideoSource | StaticSource] = []
        weights = []
        for src, w in sources:
            if depth and isinstance(src, VideoSource):
                _require_depth(src)
            if self.static and isinstance(src, VideoSource):
                src = StaticSource(src.static_items(), src.name)
            self.sources.append(src)
            weights.append(w)
        w = np.asarray(weights, np.float64)
        self.weights = w / w.sum()
        self.epoch = 0
        self.max_skip = 0

    def set_epoch(self, epoch: int, max_skip: int) -> None:
        self.epoch = epoch
        self.max_skip = max_skip

    def __len__(self) -> int:
        return self.data.samples_per_epoch

    def _raw_clip(self, rng: np.random.Generator, max_skip: int | None = None) -> list[A.AugFrame]:
        max_skip = self.max_skip if max_skip is None else max_skip
        src = self.sources[int(rng.choice(len(self.sources), p=self.weights))]
        n = self.data.clip_frames
        if isinstance(src, StaticSource):
            return [src.read_image(rng, self.depth)] * n
        return src.read_clip(rng, n, max_skip, self.depth, self.prior)

    def __getitem__(self, index: int | tuple[int, int, int]) -> dict[str, torch.Tensor]:
        """Sample ``index`` of the epoch set by :meth:`set_epoch`, or of the key ``(epoch, max_skip,
        index)`` (what :class:`vosbench.train.batches.RunBatches` yields; no per-epoch state)."""
        epoch, max_skip = self.epoch, self.max_skip
        if isinstance(index, tuple):
            epoch, max_skip, index = index
        rng = np.random.default_rng([self.seed, epoch, index])
        frames: list[A.AugFrame] = []
        for _ in range(MAX_RETRIES):
            raw = self._raw_clip(rng, max_skip)
            ids = select_objects(rng, raw[0].mask, self.data.max_objects)
            raw = [A.AugFrame(f.image, relabel(f.mask, ids), f.depth, None if f.prior is None else relabel(f.prior, ids))
                   for f in raw]
            frames = augment_clip(rng, raw, self.data, self.aug, static=self.static)
            if (frames[0].mask > 0).any():
                break
        # after MAX_RETRIES misses the last clip is used as is: all slots invalid, background-only loss
        return to_tensors(frames, self.data.max_objects, self.depth, self.prior)
