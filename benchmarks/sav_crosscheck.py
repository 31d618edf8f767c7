"""`evaluate --task sav` against SAM 2's SA-V evaluator, run outside the repository.

Generates (under --work) an SA-V-layout set: ``sav_val.txt``, ``Annotations_6fps/<video>/<obj>/
<frame>.png`` on every 4th frame, with overlapping objects (a "hand" inside a "person"),
objects that leave and come back, objects that first appear after the first annotated frame,
tiny objects (1-12 pixels), frame sizes that change the boundary tolerance, masks written 0/1
palette or 0/255 grey; and predictions made by shifting, growing, shrinking, dropping and
inventing masks (some on frames the ground truth does not annotate, which both tools ignore).
Then scores it with ``vosbench.metrics.evaluate_results(task="sav")`` and, in a separate
process, with ``benchmark()`` of the reference's ``utils/sav_benchmark.py`` (a checkout of
facebookresearch/sam2's ``sav_dataset/`` given by --reference; it needs cv2, PIL, scikit-image
and tqdm), and prints the largest per-object and global differences of J, F and J&F (percent).

    git --git-dir=<sam2 mirror> archive HEAD sav_dataset | tar -x -C /tmp/sam2ref
    .venv/bin/python benchmarks/sav_crosscheck.py --reference /tmp/sam2ref/sav_dataset
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from vosbench.metrics import evaluate_results

SIZES = ((120, 200), (96, 96), (150, 110), (64, 180))


def _ellipse(shape, centre, axes, angle=0.0) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.ellipse(m, (int(centre[1]), int(centre[0])), (max(1, int(axes[1])), max(1, int(axes[0]))), angle, 0, 360, 1, -1)
    return m.astype(bool)


def _save(path: Path, mask: np.ndarray, rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if rng.random() < 0.5:
        img = Image.fromarray(mask.astype(np.uint8), "P")
        img.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    else:
        img = Image.fromarray(mask.astype(np.uint8) * 255, "L")
    img.save(path)


def _video_objects(rng, shape, n_frames):
    """Ground-truth masks per object: list of (T,H,W) bool arrays."""
    h, w = shape
    t = np.arange(n_frames)
    objects = []
    # a person and a hand inside it (overlap)
    c = np.array([h * 0.5, w * 0.4]) + rng.uniform(-5, 5, 2)
    person = np.stack([_ellipse(shape, c + [0, 1.5 * i], (h * 0.3, w * 0.15), 5 * i) for i in t])
    hand = np.stack([_ellipse(shape, c + [h * 0.1, 1.5 * i + w * 0.05], (h * 0.06, w * 0.04)) for i in t])
    objects += [person, hand]
    # one that leaves and comes back
    c2 = np.array([h * 0.25, w * 0.75])
    gone = set(rng.choice(np.arange(2, n_frames - 1), size=2, replace=False).tolist())
    objects.append(np.stack([np.zeros(shape, bool) if i in gone else _ellipse(shape, c2 + [i, -i], (h * 0.1, w * 0.12)) for i in t]))
    # one that first appears later
    start = int(rng.integers(1, n_frames - 2))
    objects.append(np.stack([_ellipse(shape, (h * 0.8, w * 0.2 + 2 * i), (h * 0.08, w * 0.1)) if i >= start else np.zeros(shape, bool) for i in t]))
    # a tiny one (1..12 pixels)
    tiny = np.zeros((n_frames, *shape), bool)
    for i in t:
        y, x = int(rng.integers(0, h - 3)), int(rng.integers(0, w - 4))
        tiny[i, y : y + int(rng.integers(1, 4)), x : x + int(rng.integers(1, 5))] = True
    objects.append(tiny)
    return objects


def _predict(rng, gt: np.ndarray) -> np.ndarray:
    """A perturbed copy of one object's (T,H,W) masks."""
    out = np.empty_like(gt)
    kernel = np.ones((3, 3), np.uint8)
    for i, g in enumerate(gt):
        m = g.astype(np.uint8)
        r = rng.random()
        if r < 0.1:
            m[:] = 0  # dropped
        elif r < 0.2:
            m = cv2.dilate(m, kernel, iterations=int(rng.integers(1, 4)))
        elif r < 0.3:
            m = cv2.erode(m, kernel)
        elif r < 0.5:
            m = np.roll(m, (int(rng.integers(-4, 5)), int(rng.integers(-4, 5))), axis=(0, 1))
        if rng.random() < 0.15:  # a false positive blob, also where the ground truth is empty
            y, x = int(rng.integers(0, m.shape[0] - 6)), int(rng.integers(0, m.shape[1] - 6))
            m[y : y + 5, x : x + 5] = 1
        out[i] = m.astype(bool)
    return out


def generate(root: Path, pred: Path, n_videos: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    names = [f"sav_{i:06d}" for i in range(n_videos)]
    (root / "sav_val.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "sav_val.txt").write_text("".join(f"{n}\n" for n in names))
    for v, name in enumerate(names):
        shape = SIZES[v % len(SIZES)]
        n_frames = int(rng.integers(5, 12))
        for k, gt in enumerate(_video_objects(rng, shape, n_frames)):
            p = _predict(rng, gt)
            for i in range(n_frames):
                stem = f"{4 * i:05d}"
                _save(root / "Annotations_6fps" / name / f"{k:03d}" / f"{stem}.png", gt[i], rng)
                _save(pred / name / f"{k:03d}" / f"{stem}.png", p[i], rng)
                if i + 1 < n_frames:  # a 24 fps frame without annotation: ignored by both
                    _save(pred / name / f"{k:03d}" / f"{4 * i + 1:05d}.png", rng.random(shape) < 0.5, rng)


REFERENCE_RUN = """
import json, sys
sys.path.insert(0, sys.argv[1])
from utils.sav_benchmark import benchmark
jf, j, f, objects = benchmark([sys.argv[2]], [sys.argv[3]], True, 1, verbose=False, skip_first_and_last=True)
out = {"global": [jf[0], j[0], f[0]],
       "objects": {v: {o: [iou[o], bf[o]] for o in iou} for v, (iou, bf) in objects[0].items()}}
json.dump(out, open(sys.argv[4], "w"))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", type=Path, required=True, help="The sav_dataset/ folder of facebookresearch/sam2.")
    ap.add_argument("--work", type=Path, default=None, help="Folder for the generated set (default: a temp folder).")
    ap.add_argument("--videos", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--python", default=sys.executable, help="Python that runs the reference.")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="sav-crosscheck-"))
    root, pred = work / "sav", work / "pred"
    if not (root / "sav_val.txt").is_file():
        generate(root, pred, args.videos, args.seed)
    ours = evaluate_results(root, pred, "val", task="sav", workers=1, write_csv=False)
    ref_json = work / "reference.json"
    subprocess.run([args.python, "-c", REFERENCE_RUN, str(args.reference), str(root / "Annotations_6fps"), str(pred), str(ref_json)],
                   check=True, stdout=subprocess.DEVNULL)
    ref = json.loads(ref_json.read_text())
    ours_obj = {(o.sequence, f"{o.object_id:03d}"): (100 * o.j.mean, 100 * o.f.mean) for o in ours.objects}
    ref_obj = {(v, o): tuple(jf) for v, objs in ref["objects"].items() for o, jf in objs.items()}
    if set(ours_obj) != set(ref_obj):
        print(f"object sets differ: only vosbench {sorted(set(ours_obj) - set(ref_obj))}, only reference {sorted(set(ref_obj) - set(ours_obj))}")
        return 1
    dj = max(abs(ours_obj[k][0] - ref_obj[k][0]) for k in ref_obj)
    df = max(abs(ours_obj[k][1] - ref_obj[k][1]) for k in ref_obj)
    djf = max(abs(sum(ours_obj[k]) / 2 - sum(ref_obj[k]) / 2) for k in ref_obj)
    g = ours.extra
    dg = max(abs(g["J&F"] - ref["global"][0]), abs(g["J"] - ref["global"][1]), abs(g["F"] - ref["global"][2]))
    print(f"{len(ref_obj)} objects in {len(ref['objects'])} videos ({work})")
    print("| value | max abs difference (percent points) |\n|---|---|")
    print(f"| per-object J | {dj:.3g} |\n| per-object F | {df:.3g} |\n| per-object J&F | {djf:.3g} |\n| global J&F, J, F | {dg:.3g} |")
    print(f"global: vosbench J&F {g['J&F']:.6f} J {g['J']:.6f} F {g['F']:.6f}; reference {ref['global'][0]:.6f} {ref['global'][1]:.6f} {ref['global'][2]:.6f}")
    return 0 if max(dj, df, djf, dg) <= 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
