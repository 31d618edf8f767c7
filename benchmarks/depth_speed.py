"""Frames/s of `vosbench prepare depth` at 480p (854x480).

Rows: the tiny randomly initialised Depth Anything (vosbench.depth.tiny) with the real model's
518-pixel processor size and with a 56-pixel one, and `folder:` import of 16-bit PNGs. "predict" is
the estimator alone; "prepare" is the whole job (JPEG decode, predict, per-video range, 16-bit PNG
encode, atomic rename). A real model (e.g. a saved Depth-Anything-V2-Small folder) can be timed with
``--model PATH --device cuda`` where a GPU and the weights are available.

    .venv/bin/python benchmarks/depth_speed.py [--frames 8] [--threads 2] [--model PATH --device cuda]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vosbench.data.davis import DavisDataset
from vosbench.data.imageio import write_frame
from vosbench.depth.estimators import DepthEstimator, make_estimator
from vosbench.depth.prepare import prepare_depth
from vosbench.depth.tiny import write_tiny_depth_model

H, W = 480, 854


def make_root(root: Path, frames: int) -> Path:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:H, 0:W]
    for t in range(frames):
        img = np.stack([(xx + 3 * t) % 256, yy % 256, (xx + yy) % 256], axis=2).astype(np.uint8)
        img = np.clip(img.astype(np.int16) + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)
        write_frame(root / "JPEGImages" / "480p" / "clip" / f"{t:05d}.jpg", img)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("clip\n")
    return root


def time_row(name: str, root: Path, est: DepthEstimator, frames: int) -> tuple[str, float, float]:
    seq = DavisDataset(root, "val", "480p").sequence("clip")
    imgs = [seq.frame(i) for i in range(frames)]
    keys = None
    if getattr(est, "root", None) is not None:
        from vosbench.depth.estimators import FrameKey

        keys = [FrameKey("clip", n) for n in seq.frame_names]
    est.predict(imgs[:1], None if keys is None else keys[:1])  # warm-up
    t0 = time.perf_counter()
    est.predict(imgs, keys)
    predict_fps = frames / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    prepare_depth(root, "val", "480p", est, overwrite=True)
    prepare_fps = frames / (time.perf_counter() - t0)
    return name, predict_fps, prepare_fps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", help="also time this transformers depth model folder or hub id")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = make_root(tmp / "davis", args.frames)
        for size in (518, 56):
            folder = write_tiny_depth_model(tmp / f"tiny{size}", input_size=size)
            est = make_estimator(str(folder), device=args.device, batch_size=args.batch_size)
            rows.append(time_row(f"tiny Depth Anything, input {size}px", root, est, args.frames))
        if args.model:
            est = make_estimator(args.model, device=args.device, batch_size=args.batch_size)
            rows.append(time_row(f"{args.model}", root, est, args.frames))
        maps = tmp / "maps" / "clip"
        maps.mkdir(parents=True)
        for t in range(args.frames):
            Image.fromarray(np.full((H, W), 1000 * t, np.uint16)).save(maps / f"{t:05d}.png")
        rows.append(time_row("folder: import (16-bit PNG)", root, make_estimator(f"folder:{tmp / 'maps'}"), args.frames))
    print(f"depth preparation at 480p ({W}x{H}), {args.frames} frames, device {args.device}, "
          f"{args.threads} CPU threads, batch {args.batch_size}")
    print(f"{'estimator':<40} {'predict fps':>12} {'prepare fps':>12}")
    for name, p, q in rows:
        print(f"{name:<40} {p:>12.2f} {q:>12.2f}")


if __name__ == "__main__":
    main()
