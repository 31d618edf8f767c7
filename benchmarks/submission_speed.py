"""Time of `vosbench package-submission` and `vosbench visualize` on the five real DAVIS clips.

Builds a DAVIS-layout root linking the clips in ../shared/data/real_vos (480p, 279 frames), uses
their ground truth as "results", and prints per-step wall time and ms per frame: validation alone,
validation + zip, a second zip (checked byte-identical), and visualize (overlay PNGs + MP4 + J/F
plot). Single process.

    .venv/bin/python benchmarks/submission_speed.py [--real-vos ../shared/data/real_vos] [--no-visualize]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from vosbench.submission import package_submission, validate_results
from vosbench.visualize import visualize_results

CLIPS = {
    "blackswan": "eor-vos/blackswan",
    "dog": "eor-vos/dog",
    "libby": "eor-vos/libby",
    "bmx-trees": "eor-vos/bmx-trees",
    "car-shadow": "osvos-tf/car-shadow",
}


def make_root(real: Path, work: Path) -> tuple[Path, Path]:
    root = work / "davis"
    for kind in ("JPEGImages", "Annotations"):
        (root / kind / "480p").mkdir(parents=True)
        for name, rel in CLIPS.items():
            os.symlink(real / rel / kind / "480p" / name, root / kind / "480p" / name)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("".join(f"{n}\n" for n in CLIPS))
    results = work / "results"
    for name in CLIPS:
        shutil.copytree(root / "Annotations" / "480p" / name, results / name)
    return root, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_vos"
    parser.add_argument("--real-vos", type=Path, default=default)
    parser.add_argument("--no-visualize", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, results = make_root(args.real_vos, Path(tmp))
        rows = []
        t = time.perf_counter()
        report = validate_results(results, root, "val")
        rows.append(("validate", time.perf_counter() - t))
        assert report.ok, report.problems
        frames = report.frames
        t = time.perf_counter()
        a = package_submission(results, root, "val", Path(tmp) / "a.zip")
        rows.append(("validate + zip", time.perf_counter() - t))
        t = time.perf_counter()
        b = package_submission(results, root, "val", Path(tmp) / "b.zip")
        rows.append(("validate + zip (again)", time.perf_counter() - t))
        same = (Path(tmp) / "a.zip").read_bytes() == (Path(tmp) / "b.zip").read_bytes()
        if not args.no_visualize:
            t = time.perf_counter()
            visualize_results(results, root, "val", out_dir=Path(tmp) / "vis")
            rows.append(("visualize (PNGs + MP4 + plot)", time.perf_counter() - t))
    print(
        f"{len(CLIPS)} sequences, {frames} frames at 480p; zip {a.size_bytes / 1e6:.2f} MB, "
        f"byte-identical on repeat: {same and a.sha256 == b.sha256}"
    )
    print(f"{'step':<32}{'seconds':>10}{'ms/frame':>10}")
    for name, sec in rows:
        print(f"{name:<32}{sec:>10.2f}{1000 * sec / frames:>10.1f}")


if __name__ == "__main__":
    main()
