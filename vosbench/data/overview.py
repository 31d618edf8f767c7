"""Describe a DAVIS-layout split (sequences, frames, objects, look-alike flags) and draw a
contact sheet of first frames with their masks overlaid, so a person can see what a dataset holds."""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vosbench.data.davis import DavisDataset
from vosbench.data.imageio import DAVIS_PALETTE, VOID_ID
from vosbench.errors import ConfigError, DataError
from vosbench.fsutil import atomic_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SequenceInfo:
    """One sequence of a split, with the synthetic generator's difficulty flags when known."""

    name: str
    frames: int
    annotated_frames: int
    height: int
    width: int
    object_ids: tuple[int, ...]
    depth: bool
    lookalike: bool | None = None  # None: not a synthetic dataset (unknown)
    lookalike_ids: tuple[int, ...] = ()
    distractors: int | None = None
    exits: int | None = None  # exit spans of annotated objects
    occlusions: int | None = None  # occlusion spans of annotated objects


def read_manifest(root: str | os.PathLike) -> dict | None:
    """``ROOT/manifest.json`` if present and readable, else None (with a warning when corrupt)."""
    path = Path(root) / "manifest.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable manifest ignored (%s)", path, exc)
        return None


def describe_split(root: str | os.PathLike, split: str = "val", resolution: str = "480p") -> list[SequenceInfo]:
    """Per-sequence facts of a split, read from the files (and the manifest's synthetic entries)."""
    ds = DavisDataset(root, split, resolution)
    manifest = read_manifest(root) or {}
    entries = manifest.get("sequences", {}) if isinstance(manifest.get("sequences"), dict) else {}
    out = []
    for seq in ds:
        h, w = seq.size
        syn = (entries.get(seq.name) or {}).get("synthetic")
        extra: dict = {}
        if isinstance(syn, dict):
            objs = syn.get("objects", [])
            extra = {
                "lookalike": bool(syn.get("lookalike")),
                "lookalike_ids": tuple(sorted(i for g in syn.get("lookalike_groups", []) for i in g.get("ids", []))),
                "distractors": len(syn.get("distractors", [])),
                "exits": sum(len(o.get("exits", [])) for o in objs),
                "occlusions": sum(len(o.get("occlusions", [])) for o in objs),
            }
        out.append(SequenceInfo(name=seq.name, frames=seq.num_frames, annotated_frames=len(seq.annotation_paths),
                                height=h, width=w, object_ids=tuple(seq.object_ids), depth=seq.has_depth, **extra))
    return out


def overlay_mask(frame: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend DAVIS colours over the objects of ``mask`` and draw their outlines."""
    out = frame.astype(np.float32)
    fg = (mask > 0) & (mask != VOID_ID)
    colours = DAVIS_PALETTE[mask].astype(np.float32)
    out[fg] = (1 - alpha) * out[fg] + alpha * colours[fg]
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    for oid in np.unique(mask[fg]):
        m = (mask == oid).astype(np.uint8)
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, tuple(int(c) for c in DAVIS_PALETTE[oid]), 1)
    return out


def contact_sheet(root: str | os.PathLike, out: str | os.PathLike, split: str = "val", resolution: str = "480p",
                  *, columns: int = 6, thumb_width: int = 240, max_sequences: int = 48) -> Path:
    """Write a PNG grid of the split's first frames with their masks overlaid; returns its path.

    Each tile is labelled with the sequence name (and ``LA`` for look-alike videos when known).
    """
    if columns < 1 or thumb_width < 16 or max_sequences < 1:
        raise ConfigError("contact sheet needs columns >= 1, thumb_width >= 16 and max_sequences >= 1")
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"{out}: the contact sheet is written as PNG; use a .png file name")
    infos = {i.name: i for i in describe_split(root, split, resolution)}
    ds = DavisDataset(root, split, resolution)
    names = ds.sequence_names[:max_sequences]
    tiles = []
    for name in names:
        seq = ds.sequence(name)
        frame = overlay_mask(seq.frame(0), seq.first_mask())
        h, w = frame.shape[:2]
        th = max(8, int(round(h * thumb_width / w)))
        tile = cv2.resize(frame, (thumb_width, th), interpolation=cv2.INTER_AREA)
        label = name + ("  LA" if infos[name].lookalike else "")
        band = np.full((18, thumb_width, 3), 24, dtype=np.uint8)
        cv2.putText(band, label, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (240, 240, 240), 1, cv2.LINE_AA)
        tiles.append(np.concatenate([band, tile], axis=0))
    tile_h = max(t.shape[0] for t in tiles)
    cols = min(columns, len(tiles))
    rows = math.ceil(len(tiles) / cols)
    sheet = np.full((rows * (tile_h + 4) + 4, cols * (thumb_width + 4) + 4, 3), 255, dtype=np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        y, x = 4 + r * (tile_h + 4), 4 + c * (thumb_width + 4)
        sheet[y:y + tile.shape[0], x:x + thumb_width] = tile
    try:
        with atomic_path(out) as tmp:
            if not cv2.imwrite(str(tmp), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
                raise DataError(f"{out}: could not encode the contact sheet")
    except OSError as exc:
        raise DataError(f"{out}: cannot write ({exc.strerror or exc})") from None
    return out
