"""Frame decoding and mask encoding beside the network: ms per frame, main thread vs I/O threads.

``vosbench infer`` used to decode each JPEG and encode each PNG on the main thread between two
network steps; on a GPU the device idles meanwhile. It now decodes ahead and encodes behind on a
few threads (``vosbench.infer.frameio``). This measures the loop on real 854x480 frames with the
network replaced by a wait of ``--step-ms`` (a CUDA step is such a wait for the CPU: the main
thread blocks on the device and releases the GIL), so the numbers are the I/O cost alone and
how much of it the threads hide. Labels written are the sequence's own annotations.

    .venv/bin/python benchmarks/infer_io.py [--seq ../shared/data/real_vos/eor-vos/dog] [--step-ms 0 10 25]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from vosbench.data.imageio import read_frame, read_mask, write_mask
from vosbench.infer.frameio import IO_THREADS, BackgroundWriter, FramePrefetcher

REPO = Path(__file__).resolve().parents[1]


def sequential(frames: list[Path], labels: list[np.ndarray], out: Path, step: float) -> float:
    t0 = time.perf_counter()
    for i, path in enumerate(frames):
        np.array(read_frame(path))
        time.sleep(step)
        write_mask(out / f"{i:05d}.png", labels[i])
    return time.perf_counter() - t0


def threaded(frames: list[Path], labels: list[np.ndarray], out: Path, step: float) -> float:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(IO_THREADS) as pool:
        pre = FramePrefetcher(pool, lambda i: read_frame(frames[i]), len(frames))
        writer = BackgroundWriter(pool)
        for i in range(len(frames)):
            pre.get(i)
            time.sleep(step)
            writer.submit(write_mask, out / f"{i:05d}.png", labels[i])
        writer.flush()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seq", type=Path, default=REPO.parent / "shared" / "data" / "real_vos" / "eor-vos" / "dog")
    ap.add_argument("--step-ms", type=float, nargs="+", default=[0.0, 10.0, 25.0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    frames = sorted((args.seq / "JPEGImages" / "480p").glob("*/*.jpg"))
    masks = sorted((args.seq / "Annotations" / "480p").glob("*/*.png"))
    if not frames:
        raise SystemExit(f"no frames under {args.seq}/JPEGImages/480p/<seq>/")
    labels = [read_mask(masks[min(i, len(masks) - 1)]) for i in range(len(frames))]
    h, w = labels[0].shape
    print(f"{len(frames)} frames of {args.seq.name} ({w}x{h}), {IO_THREADS} I/O threads, best of {args.repeats}")
    print(f"{'step ms':>8} {'main thread ms/frame':>21} {'I/O threads ms/frame':>21} {'I/O hidden':>11}")
    with tempfile.TemporaryDirectory() as td:
        out = Path(td)
        for step_ms in args.step_ms:
            step = step_ms / 1000
            seq = min(sequential(frames, labels, out, step) for _ in range(args.repeats)) / len(frames) * 1000
            thr = min(threaded(frames, labels, out, step) for _ in range(args.repeats)) / len(frames) * 1000
            io = seq - step_ms
            hidden = (seq - thr) / io if io > 0 else 0.0
            print(f"{step_ms:>8.0f} {seq:>21.1f} {thr:>21.1f} {100 * hidden:>10.0f}%")


if __name__ == "__main__":
    main()
