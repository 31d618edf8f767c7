"""Generated MOSEv2 roots and predictions with the cases MOSEv2 scores apart: objects that leave
the frame and come back (several times), objects absent from the first scored frames, small
objects (Ḟ's tolerance below DAVIS's) and large ones (capped at it), frame sizes whose DAVIS
tolerance is not a whole number, false positives while the object is away and misses when it returns."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from vosbench.data.imageio import write_mask

SIZES = ((480, 854), (120, 200), (64, 96), (300, 533), (97, 131))


def _object_track(n: int, shape: tuple[int, int], rng: np.random.Generator, small: bool) -> list[np.ndarray]:
    h, w = shape
    cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
    if small:
        ay, ax = rng.uniform(1.5, 12), rng.uniform(1.5, 12)
    else:
        ay, ax = rng.uniform(0.12, 0.3) * h, rng.uniform(0.12, 0.3) * w
    vy, vx = rng.uniform(-2, 2, size=2)
    out = []
    for t in range(n):
        m = np.zeros(shape, np.uint8)
        cv2.ellipse(m, (int(cx + vx * t), int(cy + vy * t)), (max(1, int(ax)), max(1, int(ay))),
                    float(rng.uniform(0, 30)), 0, 360, 1, -1)
        out.append(m.astype(bool))
    return out


def _absences(n: int, rng: np.random.Generator) -> np.ndarray:
    """Frames where the object is away: none, one gap, several gaps, or away from frame 1 on for a while."""
    away = np.zeros(n, bool)
    kind = rng.integers(0, 4)
    if kind == 1:
        s = int(rng.integers(2, n - 3))
        away[s : s + int(rng.integers(1, 4))] = True
    elif kind == 2:
        for _ in range(3):
            s = int(rng.integers(1, n - 1))
            away[s : s + int(rng.integers(1, 3))] = True
    elif kind == 3:
        away[1 : int(rng.integers(2, n // 2 + 2))] = True
        if rng.random() < 0.5:
            away[n - 3 : n - 1] = True
    away[0] = False  # every object is in the first frame (it is given there)
    return away


def _predict(gt: np.ndarray, rng: np.random.Generator, away: bool) -> np.ndarray:
    r = rng.random()
    if away:
        if r < 0.5:
            return np.zeros_like(gt)
        p = np.zeros_like(gt)
        h, w = gt.shape
        y, x = int(rng.integers(0, h - 4)), int(rng.integers(0, w - 4))
        p[y : y + int(rng.integers(1, 12)), x : x + int(rng.integers(1, 12))] = True  # a false positive
        return p
    if r < 0.1:
        return np.zeros_like(gt)  # missed
    obj = gt.astype(np.uint8)
    k = np.ones((int(rng.integers(1, 3)) * 2 + 1,) * 2, np.uint8)
    if r < 0.4:
        obj = cv2.erode(obj, k)
    elif r < 0.7:
        obj = cv2.dilate(obj, k)
    obj = np.roll(obj, tuple(int(s) for s in rng.integers(-3, 4, size=2)), axis=(0, 1))
    return obj.astype(bool)


def write_mosev2_set(root: Path, results: Path, seed: int = 0, n_videos: int = 6, split: str = "valid",
                     sizes: tuple[tuple[int, int], ...] = SIZES) -> dict:
    """A MOSEv2 split at ``root/<split>`` (frames as tiny JPEGs, every frame annotated, meta.json)
    and predictions for every frame under ``results``; returns the meta ``videos`` dict."""
    rng = np.random.default_rng(seed)
    videos = {}
    for v in range(n_videos):
        name = f"v{seed}_{v}"
        shape = sizes[v % len(sizes)]
        n = int(rng.integers(8, 16))
        n_obj = int(rng.integers(1, 4))
        gt = np.zeros((n, *shape), np.uint8)
        pred = np.zeros((n, *shape), np.uint8)
        for k in range(1, n_obj + 1):
            track = _object_track(n, shape, rng, small=bool(rng.random() < 0.5))
            away = _absences(n, rng)
            for t in range(n):
                if not away[t]:
                    gt[t][track[t]] = k
                pred[t][_predict(track[t], rng, bool(away[t])) & (pred[t] == 0)] = k
        for t in range(n):
            write_mask(root / split / "Annotations" / name / f"{t:05d}.png", gt[t])
            write_mask(results / name / f"{t:05d}.png", pred[t])
            frame = root / split / "JPEGImages" / name / f"{t:05d}.jpg"
            frame.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(frame), np.zeros((*shape, 3), np.uint8))
        videos[name] = {"length": n, "height": shape[0], "width": shape[1],
                        "objects": {str(k): {"category": "thing"} for k in range(1, n_obj + 1)}}
    (root / split / "meta.json").write_text(json.dumps({"videos": videos}))
    return videos


REAL_CLIPS = {"blackswan": "eor-vos/blackswan", "dog": "eor-vos/dog", "libby": "eor-vos/libby",
              "bmx-trees": "eor-vos/bmx-trees", "car-shadow": "osvos-tf/car-shadow"}


def write_real_mosev2_set(real_vos: Path, root: Path, results: Path, seed: int = 0, split: str = "valid") -> dict:
    """The five real DAVIS clips of ``shared/data/real_vos`` (854x480, one object each) as a MOSEv2
    split: frames linked, the object's ground truth blanked on one or two runs of frames (a
    disappearance and a return), predictions eroded, dilated or shifted, missed now and then, with
    a false positive while the object is away."""
    from vosbench.data.imageio import read_mask

    rng = np.random.default_rng(seed)
    videos = {}
    for name, rel in REAL_CLIPS.items():
        src = real_vos / rel
        (root / split / "JPEGImages").mkdir(parents=True, exist_ok=True)
        (root / split / "JPEGImages" / name).symlink_to(src / "JPEGImages" / "480p" / name)
        gts = [read_mask(p) != 0 for p in sorted((src / "Annotations" / "480p" / name).glob("*.png"))]
        n = len(gts)
        away = np.zeros(n, bool)
        for _ in range(int(rng.integers(1, 3))):
            s = int(rng.integers(2, n - 4))
            away[s : s + int(rng.integers(1, 6))] = True
        for t, g in enumerate(gts):
            gt = np.where(g & ~away[t], 1, 0).astype(np.uint8)
            pred = _predict(g, rng, bool(away[t])).astype(np.uint8)
            write_mask(root / split / "Annotations" / name / f"{t:05d}.png", gt)
            write_mask(results / name / f"{t:05d}.png", pred)
        videos[name] = {"length": n, "height": gts[0].shape[0], "width": gts[0].shape[1], "objects": {"1": {}}}
    (root / split / "meta.json").write_text(json.dumps({"videos": videos}))
    return videos
