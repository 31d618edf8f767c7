"""`evaluate --task mosev2` against the public MOSEv2 scorer, on generated sets.

The scorer (henghuiding/MOSE-api, ``MOSEv2/sam2_rcms/tools/``: ``score.py``, ``metricsv2.py``,
``track_progress_rich.py``) is not part of vosbench (its licence forbids copying it); put those
three files in a folder outside the repository and name it with ``--scorer`` or the environment
variable ``MOSEV2_SCORER``. Needs numpy, opencv, scikit-image, Pillow and tqdm.

For each seed a MOSEv2 split with absences, returns, objects away from the first scored frames,
small and large objects at several frame sizes (``tests/metrics/mosev2_sets.py``), and with
``--real`` (default ``../shared/data/real_vos`` when present) the five real 854x480 DAVIS clips with
their object blanked on some frames, is scored by:

* vosbench: ``evaluate_results(..., task="mosev2")``;
* the scorer's own per-object functions (``process_video_chunk`` over its 15-frame chunks, then
  ``merge_chunk_results``), imported from the scorer folder: unrounded per-object J, F_new, F and
  disappearance / reappearance J and F_new;
* ``score.py`` itself as a subprocess: its printed global values (rounded to 2 decimals).

Prints the largest difference of each quantity (per object: fractions; global: percent, after
rounding vosbench's values to 2 decimals as the scorer does).

    MOSEV2_SCORER=/tmp/mosev2_scorer .venv/bin/python benchmarks/mosev2_crosscheck.py --seeds 4
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from tests.metrics.mosev2_sets import write_mosev2_set, write_real_mosev2_set  # noqa: E402
from vosbench.metrics import evaluate_results  # noqa: E402
from vosbench.metrics.mosev2 import ABSENT, F_NEW, segments  # noqa: E402

CHUNK = 15  # the scorer's frames per task; the values do not depend on it
GLOBAL = ("J&F_new", "J", "F_new", "disappear_J&F_new", "reappear_J&F_new", "F", "J&F")


def _scorer_module(folder: Path):
    sys.path.insert(0, str(folder))
    with contextlib.redirect_stdout(io.StringIO()):  # it prints system information on import
        return importlib.import_module("score")


def scorer_objects(score, meta: dict, ann: Path, pred: Path) -> dict[str, list]:
    """``<video>_<id>`` -> the scorer's [J, F_new, F, disappear J, disappear F_new, reappear J, reappear F_new]."""
    out = {}
    for vid, entry in meta.items():
        n = entry["length"]
        for oid in entry["objects"]:
            chunks = [score.process_video_chunk(vid, meta, str(pred), str(ann), s, min(s + CHUNK, n - 1), oid, 0)
                      for s in range(1, n - 1, CHUNK)]
            out[f"{vid}_{oid}"] = score.merge_chunk_results(chunks, vid, oid)
    return out


def scorer_global(folder: Path, meta_path: Path, ann: Path, pred: Path, out: Path) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "score.py", "--meta", str(meta_path), "--ann", str(ann), "--pred", str(pred),
                           "--output", str(out)], cwd=folder, capture_output=True, text=True, check=True)
    values = {}
    for name in GLOBAL:
        m = re.search(rf"^{re.escape(name)}: (\S+)$", proc.stdout, re.M)
        values[name] = float(m.group(1)) if m else float("nan")
    return values


def _segment_mean(values, segs) -> float | None:
    return None if not segs else float(np.mean([values[a:b].mean() for a, b in segs]))


def _diff(a, b) -> float:
    if a is None or b is None:
        return 0.0 if a is None and b is None else float("inf")
    return abs(float(a) - float(b))


def crosscheck(scorer: Path, work: Path, seeds: int, videos: int, real: Path | None = None) -> dict[str, float]:
    """Largest differences over ``seeds`` generated sets (and, with ``real``, the real clips once per seed)."""
    score = _scorer_module(scorer)
    worst = {k: 0.0 for k in ("J", "F_new", "F", "disappear_J", "disappear_F_new", "reappear_J", "reappear_F_new",
                              *(f"global {g}" for g in GLOBAL))}
    n_objects = n_dis = n_rea = 0
    sets = [("gen", seed) for seed in range(seeds)] + ([("real", seed) for seed in range(seeds)] if real else [])
    for kind, seed in sets:
        root, res = work / f"root-{kind}{seed}", work / f"res-{kind}{seed}"
        if kind == "real":
            meta = write_real_mosev2_set(real, root, res, seed=seed)
        else:
            meta = write_mosev2_set(root, res, seed=seed, n_videos=videos)
        split = root / "valid"
        result = evaluate_results(root, res, "valid", task="mosev2", workers=1, write_csv=False)
        ref = scorer_objects(score, meta, split / "Annotations", res)
        seqs = {s.name: s for s in result.sequences}
        for o in result.objects:
            s = seqs[o.sequence]
            k = s.object_ids.index(o.object_id)
            j, f, f_new = s.j[k], s.f[k], s.extra_frames[F_NEW][k]
            d_segs, r_segs = segments(s.extra_frames[ABSENT][k])
            mine = [j.mean(), f_new.mean(), f.mean(), _segment_mean(j, d_segs), _segment_mean(f_new, d_segs),
                    _segment_mean(j, r_segs), _segment_mean(f_new, r_segs)]
            theirs = ref[o.name]
            for name, a, b in zip(list(worst)[:7], mine, theirs):
                worst[name] = max(worst[name], _diff(a, b))
            n_objects += 1
            n_dis += d_segs != []
            n_rea += r_segs != []
        glob = scorer_global(scorer, split / "meta.json", split / "Annotations", res, work / f"out-{kind}{seed}")
        for g in GLOBAL:
            worst[f"global {g}"] = max(worst[f"global {g}"], _diff(round(result.extra[g], 2), glob[g]))
    worst["objects"] = n_objects
    worst["with disappearance"] = n_dis
    worst["with reappearance"] = n_rea
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scorer", type=Path, default=os.environ.get("MOSEV2_SCORER"),
                    help="folder holding the MOSEv2 scorer's score.py (default: $MOSEV2_SCORER)")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--videos", type=int, default=8, help="videos per seed")
    ap.add_argument("--work", type=Path, default=None, help="where to write the sets (default: a temp folder)")
    ap.add_argument("--real", type=Path, default=REPO.parent / "shared" / "data" / "real_vos",
                    help="the real DAVIS clips (also scored as MOSEv2 sets when the folder exists)")
    args = ap.parse_args()
    if args.scorer is None or not (args.scorer / "score.py").is_file():
        sys.exit("error: give the MOSEv2 scorer folder with --scorer or MOSEV2_SCORER (it must hold score.py)")
    with tempfile.TemporaryDirectory() as tmp:
        real = args.real if args.real and args.real.is_dir() else None
        worst = crosscheck(args.scorer.resolve(), args.work or Path(tmp), args.seeds, args.videos, real)
    print(json.dumps(worst, indent=1))
    print(f"{'quantity':<28} max |vosbench - scorer|")
    for k, v in worst.items():
        print(f"{k:<28} {v:.3g}")


if __name__ == "__main__":
    main()
