"""How hard the procedural dataset is: two reference predictions scored per profile.

For each profile the script generates the dataset (timed; an existing dataset of the same profile
and seed under ``--root`` is reused), writes the "copy the first-frame mask to every frame" and the
"oracle with identity swap" (ground truth with each look-alike group's ids permuted after its paths
cross) predictions for the val split, and scores them over all videos, the look-alike videos and
the others. Scores are DAVIS J&F from ``vosbench.metrics`` when it is installed, and always plain
mean J (``vosbench.data.synthetic.baselines.mean_j``).

    .venv/bin/python benchmarks/synthetic_baselines.py [--profiles tiny,small,davis] [--seed 0] [--root DIR]

With ``--root runs/data`` the datasets live in ``runs/data/<profile>`` (what
``vosbench prepare synthetic --root runs/data/<profile> --profile <profile>`` writes).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from vosbench.data.overview import read_manifest
from vosbench.data.synthetic import DATASET_NAME, PROFILES, generate_synthetic
from vosbench.data.synthetic.baselines import BASELINES, mean_j, write_baseline


def jf_scores(root: Path, results: Path, split: str, subsets: list[list[str]]) -> list[float] | None:
    """J&F over all objects, then over each subset's objects, from vosbench.metrics if present."""
    try:
        from vosbench.metrics import evaluate_results
    except ImportError:
        return None
    res = evaluate_results(root, results, split, write_csv=False, workers=1)
    jf = {(o.sequence, o.object_id): (o.j.mean + o.f.mean) / 2 for o in res.objects}
    out = [float(np.mean(list(jf.values())))]
    for subset in subsets:
        vals = [v for (seq, _), v in jf.items() if seq in set(subset)]
        out.append(float(np.mean(vals)) if vals else float("nan"))
    return out


def dataset(root: Path, profile: str, seed: int) -> tuple[dict, float | None]:
    """The profile's dataset at ``root``: reused when it holds the same profile and seed, else
    generated. Returns the manifest and the generation seconds (None when reused)."""
    manifest = read_manifest(root)
    gen = (manifest or {}).get("generator", {})
    if manifest and manifest.get("dataset") == DATASET_NAME and gen.get("profile") == profile \
            and gen.get("seed") == seed and gen.get("videos") == PROFILES[profile].videos:
        return manifest, None
    t0 = time.perf_counter()
    manifest = generate_synthetic(root, profile, seed=seed)
    return manifest, time.perf_counter() - t0


def _pct(x: float) -> float:
    return round(100 * x, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", default="tiny,small,davis")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="val")
    ap.add_argument("--root", type=Path, default=None,
                    help="keep (and reuse) the datasets in ROOT/<profile> (default: a temp folder)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        base = args.root or Path(tmp)
        rows = []
        for profile in args.profiles.split(","):
            manifest, gen_s = dataset(base / profile, profile, args.seed)
            root = base / profile
            names = manifest["splits"][args.split]
            lookalike = [n for n in names if manifest["sequences"][n]["synthetic"]["lookalike"]]
            other = [n for n in names if n not in set(lookalike)]
            n_frames = sum(e["frames"] for e in manifest["sequences"].values())
            for kind in BASELINES:
                out = Path(tmp) / f"results-{profile}-{kind}"
                write_baseline(root, out, kind, args.split)
                j = mean_j(root, out, args.split)
                jf = jf_scores(root, out, args.split, [lookalike, other])
                rows.append({
                    "profile": profile, "videos": len(manifest["sequences"]), "frames": n_frames,
                    "gen_s": "reused" if gen_s is None else round(gen_s, 1), "baseline": kind,
                    f"{args.split} videos": len(names), "look-alike": len(lookalike),
                    "J all": _pct(j.mean), "J look-alike": _pct(j.mean_over(lookalike)),
                    "J other": _pct(j.mean_over(other)),
                    **{f"J&F {k}": "-" if jf is None else _pct(v)
                       for k, v in zip(("all", "look-alike", "other"), jf or [0, 0, 0])},
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
