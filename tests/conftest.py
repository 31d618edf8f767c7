"""Shared fixtures: tiny DAVIS-layout folders built on the fly, and the real DAVIS clips in shared/."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from vosbench.data.imageio import write_frame, write_mask

REPO = Path(__file__).resolve().parents[1]
REAL_VOS = Path(os.environ.get("VOSBENCH_REAL_VOS", REPO.parent / "shared" / "data" / "real_vos"))
REAL_SEQUENCES = {
    "blackswan": "eor-vos/blackswan",
    "dog": "eor-vos/dog",
    "libby": "eor-vos/libby",
    "bmx-trees": "eor-vos/bmx-trees",
    "car-shadow": "osvos-tf/car-shadow",
}


def _disk_masks(n_frames: int, n_objects: int, h: int, w: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Moving discs, one per object, so masks change from frame to frame."""
    yy, xx = np.mgrid[0:h, 0:w]
    centres = rng.uniform([h * 0.25, w * 0.2], [h * 0.75, w * 0.8], size=(n_objects, 2))
    vel = rng.uniform(-2, 2, size=(n_objects, 2))
    radius = rng.uniform(min(h, w) * 0.12, min(h, w) * 0.22, size=n_objects)
    masks = []
    for t in range(n_frames):
        m = np.zeros((h, w), np.uint8)
        for k in range(n_objects):
            cy, cx = centres[k] + vel[k] * t
            m[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius[k] ** 2] = k + 1
        masks.append(m)
    return masks


@pytest.fixture
def make_davis_root(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_davis_root({"seq": (frames, objects)}, split="val", size=(48, 64))``.

    Writes JPEG frames (noise + object colours) and palette masks on every frame, and the split
    file. ``annotate="first"`` writes only the first-frame mask (test-dev style).
    """

    def make(
        sequences: dict[str, tuple[int, int]] | None = None,
        *,
        split: str = "val",
        size: tuple[int, int] = (48, 64),
        resolution: str = "480p",
        annotate: str = "all",
        root: Path | None = None,
        seed: int = 0,
    ) -> Path:
        sequences = sequences or {"alpha": (5, 2), "beta": (4, 1)}
        root = root or tmp_path / "davis"
        rng = np.random.default_rng(seed)
        h, w = size
        palette = rng.integers(0, 255, size=(8, 3))
        for name, (n_frames, n_obj) in sequences.items():
            masks = _disk_masks(n_frames, n_obj, h, w, rng)
            for t, m in enumerate(masks):
                img = rng.integers(0, 60, size=(h, w, 3)).astype(np.uint8)
                for k in range(1, n_obj + 1):
                    img[m == k] = palette[k]
                write_frame(root / "JPEGImages" / resolution / name / f"{t:05d}.jpg", img)
                if annotate == "all" or t == 0:
                    write_mask(root / "Annotations" / resolution / name / f"{t:05d}.png", m)
        sets = root / "ImageSets" / "2017"
        sets.mkdir(parents=True, exist_ok=True)
        with open(sets / f"{split}.txt", "a") as fh:
            fh.write("".join(f"{n}\n" for n in sequences))
        return root

    return make


@pytest.fixture(scope="session")
def real_vos_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DAVIS-layout root whose `val` split links the five real DAVIS clips in shared/."""
    if not REAL_VOS.is_dir():
        pytest.fail(f"real DAVIS clips not found at {REAL_VOS} (set VOSBENCH_REAL_VOS)")
    root = tmp_path_factory.mktemp("real_vos")
    for kind in ("JPEGImages", "Annotations"):
        (root / kind / "480p").mkdir(parents=True)
        for name, rel in REAL_SEQUENCES.items():
            os.symlink(REAL_VOS / rel / kind / "480p" / name, root / kind / "480p" / name)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("".join(f"{n}\n" for n in REAL_SEQUENCES))
    return root


@pytest.fixture
def davis_gt_results(make_davis_root, tmp_path: Path) -> tuple[Path, Path]:
    """A tiny DAVIS root (val: alpha 5 frames/2 objects, beta 4 frames/1 object, 48x64) and a
    results folder holding copies of its ground-truth masks, as `vosbench infer` would lay them out."""
    import shutil

    root = make_davis_root({"alpha": (5, 2), "beta": (4, 1)}, size=(48, 64))
    results = tmp_path / "results"
    shutil.copytree(root / "Annotations" / "480p", results)
    return root, results


@pytest.fixture(scope="session")
def tiny_synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``tiny`` procedural dataset (seed 0), generated once per test session; treat it as read-only.

    Splits train (3 videos), val (2) and test-dev (1, first-frame masks only); 8 frames of 96x160;
    depth maps; manifest.json with look-alike groups.
    """
    from vosbench.data.synthetic import generate_synthetic

    root = tmp_path_factory.mktemp("synthetic") / "tiny"
    generate_synthetic(root, "tiny", seed=0)
    return root
