"""How hard the procedural dataset is: two reference predictions scored per profile.

For each profile the script generates the dataset (timed), writes the "copy the first-frame mask
to every frame" and the "oracle with identity swap" (ground truth with each look-alike group's ids
permuted after its paths cross) predictions for the val split, and scores them over all videos and
over the look-alike videos only. Scores are DAVIS J&F from ``vosbench.metrics`` when it is
installed, and always plain mean J (``vosbench.data.synthetic.baselines.mean_j``).

    .venv/bin/python benchmarks/synthetic_baselines.py [--profiles tiny,small,davis] [--seed 0] [--root DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from vosbench.data.synthetic import generate_synthetic
from vosbench.data.synthetic.baselines import BASELINES, mean_j, write_baseline


def jf_scores(root: Path, results: Path, split: str, subset: list[str]) -> tuple[float, float] | None:
    """(J&F over all objects, J&F over the subset's objects) from vosbench.metrics, if present."""
    try:
        from vosbench.metrics import evaluate_results
    except ImportError:
        return None
    res = evaluate_results(root, results, split, write_csv=False, workers=1)
    jf = [(o.j.mean + o.f.mean) / 2 for o in res.objects]
    sub = [(o.j.mean + o.f.mean) / 2 for o in res.objects if o.sequence in set(subset)]
    return float(np.mean(jf)), float(np.mean(sub)) if sub else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", default="tiny,small,davis")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="val")
    ap.add_argument("--root", type=Path, default=None, help="keep the datasets here (default: a temp folder)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        base = args.root or Path(tmp)
        rows = []
        for profile in args.profiles.split(","):
            root = base / f"synthetic-{profile}"
            t0 = time.perf_counter()
            manifest = generate_synthetic(root, profile, seed=args.seed)
            gen_s = time.perf_counter() - t0
            names = manifest["splits"][args.split]
            lookalike = [n for n in names if manifest["sequences"][n]["synthetic"]["lookalike"]]
            n_frames = sum(e["frames"] for e in manifest["sequences"].values())
            for kind in BASELINES:
                out = base / f"results-{profile}-{kind}"
                write_baseline(root, out, kind, args.split)
                j = mean_j(root, out, args.split)
                jf = jf_scores(root, out, args.split, lookalike)
                rows.append({
                    "profile": profile, "videos": len(manifest["sequences"]), "frames": n_frames,
                    "gen_s": round(gen_s, 1), "baseline": kind,
                    f"{args.split} videos": len(names), "look-alike": len(lookalike),
                    "J all": round(100 * j.mean, 1), "J look-alike": round(100 * j.mean_over(lookalike), 1),
                    "J&F all": "-" if jf is None else round(100 * jf[0], 1),
                    "J&F look-alike": "-" if jf is None else round(100 * jf[1], 1),
                })
        cols = list(rows[0])
        widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
        print(" | ".join(c.ljust(w) for c, w in zip(cols, widths)))
        print("-+-".join("-" * w for w in widths))
        for r in rows:
            print(" | ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths)))
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
