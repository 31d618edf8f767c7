"""Tiny hand-made DAVIS roots and result folders for the metric tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vosbench.data.imageio import write_mask


def write_davis(root: Path, sequences: dict[str, list[np.ndarray]], split: str = "val") -> Path:
    """Annotations for every frame and the split file (no JPEGs: evaluation needs none)."""
    for name, masks in sequences.items():
        for t, m in enumerate(masks):
            write_mask(root / "Annotations" / "480p" / name / f"{t:05d}.png", m)
    sets = root / "ImageSets" / "2017"
    sets.mkdir(parents=True, exist_ok=True)
    (sets / f"{split}.txt").write_text("".join(f"{n}\n" for n in sequences))
    return root


def write_results(folder: Path, sequences: dict[str, list[np.ndarray]]) -> Path:
    for name, masks in sequences.items():
        for t, m in enumerate(masks):
            write_mask(folder / name / f"{t:05d}.png", m)
    return folder


def moving_objects(n_frames: int, n_objects: int, size: tuple[int, int], rng: np.random.Generator) -> list[np.ndarray]:
    """Id masks of ellipses drifting across the frame; every object is visible in every frame."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    masks = []
    centres = rng.uniform([0.25 * h, 0.2 * w], [0.75 * h, 0.8 * w], size=(n_objects, 2))
    vel = rng.uniform(-1.5, 1.5, size=(n_objects, 2))
    axes = rng.uniform(0.08, 0.18, size=(n_objects, 2)) * [h, w]
    for t in range(n_frames):
        m = np.zeros((h, w), np.uint8)
        for k in range(n_objects):
            cy, cx = centres[k] + vel[k] * t
            m[((yy - cy) / axes[k, 0]) ** 2 + ((xx - cx) / axes[k, 1]) ** 2 <= 1] = k + 1
        masks.append(m)
    return masks


def perturb(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible prediction: shifted, eroded or dilated objects plus speckle noise."""
    out = np.zeros_like(mask)
    for k in np.unique(mask):
        if k in (0, 255):
            continue
        obj = (mask == k).astype(np.uint8)
        op = rng.integers(0, 3)
        size = int(rng.integers(1, 4)) * 2 + 1
        kernel = np.ones((size, size), np.uint8)
        if op == 0:
            obj = cv2.erode(obj, kernel)
        elif op == 1:
            obj = cv2.dilate(obj, kernel)
        obj = np.roll(obj, tuple(int(s) for s in rng.integers(-3, 4, size=2)), axis=(0, 1))
        out[obj > 0] = k
    speckle = rng.random(mask.shape) < 0.002
    out[speckle] = rng.integers(0, int(max(1, mask[mask != 255].max(initial=1))) + 1, size=int(speckle.sum()))
    return out


def messy_ids(shape: tuple[int, int], max_id: int, rng: np.random.Generator) -> np.ndarray:
    """Id mask with the cases the smooth generators miss: 0-5 overlapping ellipses that may leave
    the frame or be absent (so ids come with gaps), sometimes void (255) speckle, sometimes id noise."""
    m = np.zeros(shape, np.uint8)
    h, w = shape
    for _ in range(int(rng.integers(0, 6))):
        centre = (int(rng.integers(-5, w + 5)), int(rng.integers(-5, h + 5)))
        axes = (int(rng.integers(1, max(2, w))), int(rng.integers(1, max(2, h))))
        cv2.ellipse(m, centre, axes, float(rng.uniform(0, 180)), 0, 360, int(rng.integers(1, max_id + 1)), -1)
    if rng.random() < 0.3:
        m[rng.random(shape) < 0.03] = 255
    if rng.random() < 0.2:
        noise = rng.random(shape) < 0.02
        m[noise] = rng.integers(0, max_id + 1, size=int(noise.sum()))
    return m
