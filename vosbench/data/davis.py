"""The DAVIS-2017 folder layout, read lazily.

::

    ROOT/JPEGImages/<res>/<seq>/00000.jpg ...
    ROOT/Annotations/<res>/<seq>/00000.png ...   palette PNGs, pixel = object id
    ROOT/Depth/<res>/<seq>/00000.png ...         optional, 16-bit
    ROOT/ImageSets/2017/{train,val,test-dev,test-challenge}.txt

``<res>`` is ``480p`` or ``Full-Resolution``. The embedded procedural dataset writes the same
layout, so everything downstream reads data through :class:`DavisDataset`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from vosbench.data.frames import FRAME_SUFFIXES, list_frame_files
from vosbench.data.imageio import VOID_ID, image_size, read_depth, read_frame, read_mask
from vosbench.data.names import check_name, read_name_lines
from vosbench.errors import DataError
from vosbench.fsutil import atomic_write_text
from vosbench.progress import Progress, ensure_progress

log = logging.getLogger(__name__)

RESOLUTIONS = ("480p", "Full-Resolution")
DAVIS_SPLITS = ("train", "val", "test-dev", "test-challenge")


@dataclass(frozen=True)
class VideoSequence:
    """One video: frame paths, the annotations that exist, and optional depth maps.

    Pixels are only read on request (``frame(i)``, ``mask(i)``, ``depth(i)``).
    """

    name: str
    frame_paths: tuple[Path, ...]
    annotation_paths: dict[str, Path] = field(default_factory=dict)  # frame stem -> png
    depth_dir: Path | None = None
    depth_hint: str = ""  # command that creates the depth maps, for the error message

    def __len__(self) -> int:
        return len(self.frame_paths)

    @property
    def num_frames(self) -> int:
        return len(self.frame_paths)

    @property
    def frame_names(self) -> list[str]:
        return [p.stem for p in self.frame_paths]

    @cached_property
    def size(self) -> tuple[int, int]:
        """(height, width) of the first frame."""
        if not self.frame_paths:
            raise DataError(f"sequence {self.name!r} has no frames")
        return image_size(self.frame_paths[0])

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` as ``H,W,3`` uint8 RGB."""
        return read_frame(self.frame_paths[i])

    def frames(self) -> Iterator[np.ndarray]:
        for p in self.frame_paths:
            yield read_frame(p)

    def has_mask(self, i: int) -> bool:
        return self.frame_paths[i].stem in self.annotation_paths

    def mask(self, i: int) -> np.ndarray | None:
        """Annotation of frame ``i`` as ``H,W`` uint8 ids (255 = void), or None if not annotated."""
        p = self.annotation_paths.get(self.frame_paths[i].stem)
        if p is None:
            return None
        m = read_mask(p)
        if m.shape != self.size:
            raise DataError(f"{p}: mask size {m.shape[1]}x{m.shape[0]} differs from frame size {self.size[1]}x{self.size[0]}")
        return m

    def first_mask(self) -> np.ndarray:
        m = self.mask(0)
        if m is None:
            raise DataError(f"sequence {self.name!r}: no annotation for the first frame {self.frame_paths[0].stem}")
        return m

    @cached_property
    def object_ids(self) -> list[int]:
        """Object ids present in the first-frame mask (void and background excluded)."""
        ids = np.unique(self.first_mask())
        return [int(i) for i in ids if i not in (0, VOID_ID)]

    @property
    def first_appearance(self) -> dict[int, int]:
        """Object id -> index of the frame whose annotation introduces it (always 0 in DAVIS).

        YouTube-VOS sequences override this: there objects may first appear after frame 0.
        """
        return {i: 0 for i in self.object_ids}

    @property
    def has_depth(self) -> bool:
        return self.depth_dir is not None and self.depth_dir.is_dir()

    def depth_path(self, i: int) -> Path:
        if self.depth_dir is None:
            raise DataError(f"sequence {self.name!r} has no depth folder")
        return self.depth_dir / f"{self.frame_paths[i].stem}.png"

    def depth(self, i: int) -> np.ndarray:
        """Depth of frame ``i`` as ``H,W`` float32 in [0,1]; a clear error when not prepared."""
        if self.depth_dir is None:  # e.g. YouTube-VOS: `vosbench prepare depth` writes DAVIS-layout roots only
            raise DataError(f"sequence {self.name!r}: this dataset layout has no Depth/ folder; depth models "
                            "(D-STM) need a DAVIS-layout root prepared with `vosbench prepare depth`")
        if not self.has_depth:
            hint = f"; create it with `{self.depth_hint}`" if self.depth_hint else ""
            raise DataError(f"depth maps missing: {self.depth_dir} does not exist{hint}")
        p = self.depth_path(i)
        if not p.exists():
            hint = f"; create it with `{self.depth_hint}`" if self.depth_hint else ""
            raise DataError(f"{p}: depth map missing{hint}")
        d = read_depth(p)
        if d.shape != self.size:
            raise DataError(f"{p}: depth size {d.shape[1]}x{d.shape[0]} differs from frame size {self.size[1]}x{self.size[0]}")
        return d


def unique_names(names: list[str], source: str | os.PathLike) -> list[str]:
    """``names`` in order, each once; one warning names those ``source`` lists more than once."""
    unique = list(dict.fromkeys(names))
    if len(unique) < len(names):
        twice = [n for n in unique if names.count(n) > 1]
        log.warning("%s lists %s more than once; each sequence is used once", source, ", ".join(twice))
    return unique


class DavisDataset:
    """A DAVIS-2017-layout dataset root, one split at one resolution."""

    def __init__(self, root: str | os.PathLike, split: str = "val", resolution: str = "480p"):
        self.root = Path(root)
        self.split = split
        self.resolution = resolution
        if not self.root.is_dir():
            raise DataError(f"{self.root}: dataset root not found")
        if resolution not in RESOLUTIONS:
            raise DataError(f"unknown resolution {resolution!r}; expected one of {', '.join(RESOLUTIONS)}")
        self.split_file = self.root / "ImageSets" / "2017" / f"{split}.txt"
        if not self.split_file.is_file():
            available = sorted(p.stem for p in (self.root / "ImageSets" / "2017").glob("*.txt"))
            extra = f" (available: {', '.join(available)})" if available else ""
            raise DataError(f"{self.split_file}: split file not found{extra}")

    @property
    def image_dir(self) -> Path:
        return self.root / "JPEGImages" / self.resolution

    @property
    def annotation_dir(self) -> Path:
        return self.root / "Annotations" / self.resolution

    @property
    def depth_dir(self) -> Path:
        return self.root / "Depth" / self.resolution

    @cached_property
    def sequence_names(self) -> list[str]:
        names = read_name_lines(self.split_file)
        if not names:
            raise DataError(f"{self.split_file}: lists no sequences")
        return unique_names(names, self.split_file)

    def __len__(self) -> int:
        return len(self.sequence_names)

    def __iter__(self) -> Iterator[VideoSequence]:
        for name in self.sequence_names:
            yield self.sequence(name)

    def smallest_short_side(self) -> int:
        """The smallest short side (pixels) of the sequences' first frames; reads image headers only."""
        return min(min(seq.size) for seq in self)

    def sequence(self, name: str) -> VideoSequence:
        check_name(name, str(self.split_file), "sequence name")
        frames = list_frame_files(self.image_dir / name, FRAME_SUFFIXES)
        if not frames:
            raise DataError(f"{self.image_dir / name}: no frames for sequence {name!r} listed in {self.split_file.name}")
        anns = {p.stem: p for p in list_frame_files(self.annotation_dir / name, (".png",))}
        return VideoSequence(
            name=name,
            frame_paths=tuple(frames),
            annotation_paths=anns,
            depth_dir=self.depth_dir / name,
            depth_hint=(f"vosbench prepare depth --data {self.root} --split {self.split} "
                        f"--resolution {self.resolution} --estimator NAME_OR_PATH"),
        )

    def validate(self, *, full: bool = False, progress: Progress | None = None) -> list[str]:
        """Check the layout; return every problem found (empty list = valid).

        Checks every sequence has frames and a first-frame annotation of the frame's size; where
        more than the first frame is annotated, that images and annotations pair up. With
        ``full``, every frame and mask is decoded (catches corrupt files). ``progress`` advances
        once per sequence.
        """
        problems: list[str] = []
        progress = ensure_progress(progress)
        progress.start(f"validate {self.split}", total=len(self.sequence_names))
        for name in self.sequence_names:
            progress.advance()
            frames = list_frame_files(self.image_dir / name, FRAME_SUFFIXES)
            if not frames:
                problems.append(f"{self.image_dir / name}: no frames for sequence {name!r}")
                continue
            anns = {p.stem: p for p in list_frame_files(self.annotation_dir / name, (".png",))}
            first = frames[0].stem
            if first not in anns:
                problems.append(f"{self.annotation_dir / name / (first + '.png')}: first-frame annotation missing")
                continue
            stems = {p.stem for p in frames}
            stray = sorted(set(anns) - stems)
            if stray:
                problems.append(f"{self.annotation_dir / name}: annotations without frames: {', '.join(stray[:5])}")
            if len(anns) > 1 and len(anns) != len(frames):
                problems.append(
                    f"{self.annotation_dir / name}: {len(anns)} annotations for {len(frames)} frames"
                )
            try:
                size = image_size(frames[0])
                to_check = list(anns.values()) if full else [anns[first]]
                for p in to_check:
                    m = read_mask(p)
                    if m.shape != size:
                        problems.append(
                            f"{p}: mask size {m.shape[1]}x{m.shape[0]} differs from frame size {size[1]}x{size[0]}"
                        )
                if full:
                    for f in frames:
                        fr = read_frame(f)
                        if fr.shape[:2] != size:
                            problems.append(f"{f}: frame size {fr.shape[1]}x{fr.shape[0]} differs from {size[1]}x{size[0]}")
            except DataError as exc:
                problems.append(str(exc))
        return problems


def list_splits(root: str | os.PathLike) -> list[str]:
    return sorted(p.stem for p in (Path(root) / "ImageSets" / "2017").glob("*.txt"))


def build_manifest(root: str | os.PathLike, resolution: str = "480p", *, dataset: str = "davis2017",
                   extra: dict | None = None, splits: list[str] | None = None) -> dict:
    """Describe the splits of a DAVIS-layout root (all by default): sequences, frame counts, sizes, object ids."""
    root = Path(root)
    manifest: dict = {"dataset": dataset, "resolution": resolution, "splits": {}, "sequences": {}}
    for split in list_splits(root) if splits is None else splits:
        ds = DavisDataset(root, split, resolution)
        manifest["splits"][split] = ds.sequence_names
        for seq in ds:
            if seq.name in manifest["sequences"]:
                continue
            h, w = seq.size
            manifest["sequences"][seq.name] = {
                "frames": seq.num_frames,
                "annotated_frames": len(seq.annotation_paths),
                "height": h,
                "width": w,
                "object_ids": seq.object_ids,
                "depth": seq.has_depth,
            }
    if extra:
        manifest.update(extra)
    return manifest


def write_manifest(path: str | os.PathLike, manifest: dict) -> None:
    atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
