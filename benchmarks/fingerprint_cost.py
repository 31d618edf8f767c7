"""What the data fingerprints of docs/reuse.md cost on the real DAVIS clips in ../shared.

Rows: `infer`'s per-sequence inputs under --given first (frames by name/size/mtime, the first mask
hashed) and --given first-appearance (every mask hashed), `ablate`'s data key (frames and depth by
stat, every mask hashed), and for comparison hashing every frame's bytes. Warm page cache (each
row runs once after one warm-up pass).

    .venv/bin/python benchmarks/fingerprint_cost.py [--real-vos ../shared/data/real_vos]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

from vosbench.ablation.steps import data_content_fingerprint
from vosbench.data.davis import DavisDataset
from vosbench.infer.run import read_inputs

REPO = Path(__file__).resolve().parents[1]
SEQUENCES = {"blackswan": "eor-vos", "dog": "eor-vos", "libby": "eor-vos", "bmx-trees": "eor-vos",
             "car-shadow": "osvos-tf"}


def link_root(real: Path, root: Path) -> Path:
    """A DAVIS-layout root (val) whose sequence folders link the real clips."""
    for kind in ("JPEGImages", "Annotations"):
        (root / kind / "480p").mkdir(parents=True)
        for name, source in SEQUENCES.items():
            os.symlink(real / source / name / kind / "480p" / name, root / kind / "480p" / name)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("".join(f"{n}\n" for n in SEQUENCES))
    return root


def timed(fn) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-vos", type=Path, default=REPO.parent / "shared" / "data" / "real_vos")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = link_root(args.real_vos, Path(tmp) / "real")
        seqs = list(DavisDataset(root, "val"))
        frames = [p for s in seqs for p in s.frame_paths]
        masks = [p for s in seqs for p in s.annotation_paths.values()]
        print(f"{len(seqs)} sequences, {len(frames)} frames ({sum(p.stat().st_size for p in frames) / 1e6:.1f} MB), "
              f"{len(masks)} annotations ({sum(p.stat().st_size for p in masks) / 1e6:.2f} MB)")
        rows = {
            "infer inputs, --given first": lambda: [read_inputs(s, "first") for s in seqs],
            "infer inputs, --given first-appearance": lambda: [read_inputs(s, "first-appearance") for s in seqs],
            "ablate data key": lambda: data_content_fingerprint(root),
            "hash every frame's bytes (not used)": lambda: [hashlib.sha256(p.read_bytes()) for p in frames],
        }
        print(f"| {'fingerprint':<42} | ms |\n|{'-' * 44}|----|")
        for name, fn in rows.items():
            print(f"| {name:<42} | {timed(fn) * 1000:.1f} |")


if __name__ == "__main__":
    main()
