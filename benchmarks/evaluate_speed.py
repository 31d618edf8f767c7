"""Speed and memory of `vosbench evaluate` against vos-benchmark and plain PNG decoding.

Builds (once, under --work) a DAVIS-val-shaped set: 30 sequences of 60-80 frames at 480x854 with
1-5 objects -- the procedural dataset's ``davis`` profile when ``vosbench.data.synthetic`` is
available, otherwise moving random blobs -- and predictions made by perturbing the ground truth
(per-object erosion / dilation / shift, speckle noise). Then, each in a fresh process, on the same
cores:

* decode: read every ground-truth and predicted PNG once, single-threaded (PIL);
* vosbench: ``evaluate_results`` with N worker processes;
* vos-benchmark: ``vos_benchmark.benchmark.benchmark`` with N processes.

Prints a table (wall time, ratios, peak RSS of the main process and of the largest worker) and
the largest per-object difference between the two tools' J and F means (objects visible in the
first scored frame, where both tools agree by definition).

With ``--baseline TREE`` (another checkout of vosbench, e.g. ``git archive main | tar -x -C
/tmp/base``) the vosbench phase is also run with that tree's code, alternating with this one
``--repeat`` times in the same run, and the ratio of the median wall times is printed.

    .venv/bin/python benchmarks/evaluate_speed.py --workers 2
    .venv/bin/python benchmarks/evaluate_speed.py --workers 2 --baseline /tmp/base --repeat 3 --skip-vos-benchmark
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from vosbench.data.imageio import read_mask, write_mask

SEQUENCES = 30
SIZE = (480, 854)


def _blob_sequence(args: tuple[Path, str, int]) -> None:
    """One sequence of 1-5 moving, deforming ellipses (used when the synthetic generator is absent)."""
    root, name, seed = args
    rng = np.random.default_rng(seed)
    h, w = SIZE
    n_frames, n_obj = int(rng.integers(60, 81)), int(rng.integers(1, 6))
    centre = rng.uniform([0.2 * h, 0.15 * w], [0.8 * h, 0.85 * w], size=(n_obj, 2))
    vel = rng.uniform(-3, 3, size=(n_obj, 2))
    axes = rng.uniform([20, 25], [110, 160], size=(n_obj, 2))
    for t in range(n_frames):
        m = np.zeros(SIZE, np.uint8)
        for k in range(n_obj):
            cy, cx = np.clip(centre[k] + vel[k] * t, [0, 0], [h - 1, w - 1])
            ax = axes[k] * (1 + 0.15 * np.sin(0.2 * t + k))
            cv2.ellipse(m, (int(cx), int(cy)), (int(ax[1]), int(ax[0])), 10.0 * k + t, 0, 360, k + 1, -1)
        write_mask(root / "Annotations" / "480p" / name / f"{t:05d}.png", m)


def _make_blobs(root: Path, workers: int, n_sequences: int) -> None:
    names = [f"blobs-{i:02d}" for i in range(n_sequences)]
    with ProcessPoolExecutor(workers) as ex:
        list(ex.map(_blob_sequence, [(root, n, i) for i, n in enumerate(names)]))
    (root / "ImageSets" / "2017").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("".join(f"{n}\n" for n in names))


def _perturb_sequence(args: tuple[Path, Path, int]) -> None:
    gt_dir, out_dir, seed = args
    rng = np.random.default_rng(seed)
    for png in sorted(gt_dir.glob("*.png")):
        g = read_mask(png)
        ids = [int(i) for i in np.unique(g) if i not in (0, 255)]
        pred = np.zeros_like(g)
        for k in ids:
            obj = (g == k).astype(np.uint8)
            size = int(rng.integers(1, 6)) * 2 + 1
            op = (cv2.erode, cv2.dilate, None)[int(rng.integers(0, 3))]
            if op is not None:
                obj = op(obj, np.ones((size, size), np.uint8))
            obj = np.roll(obj, tuple(int(s) for s in rng.integers(-6, 7, size=2)), axis=(0, 1))
            pred[obj > 0] = k
        if ids:
            noise = rng.random(g.shape) < 0.0005
            pred[noise] = rng.choice(ids, size=int(noise.sum()))
        write_mask(out_dir / png.name, pred)


def prepare(work: Path, source: str, workers: int, n_sequences: int = SEQUENCES) -> tuple[Path, Path, str]:
    """The dataset root and the results folder under ``work`` (built once, then reused)."""
    root, results = work / "davis", work / "results"
    if not (root / "ImageSets" / "2017" / "val.txt").is_file():
        used = source
        if source in ("auto", "synthetic"):
            try:
                from vosbench.data.synthetic import generate_synthetic
            except ImportError:
                if source == "synthetic":
                    raise
                used = "blobs"
            else:
                print("generating the procedural dataset (davis profile) ...", flush=True)
                generate_synthetic(root, "davis", seed=0, videos=n_sequences)
                used = "synthetic"
        if used == "blobs":
            print("generating moving blobs ...", flush=True)
            _make_blobs(root, workers, n_sequences)
        (work / "source.txt").write_text(used)
    if not results.is_dir():
        print("writing perturbed predictions ...", flush=True)
        tmp = work / "results.partial"
        names = (root / "ImageSets" / "2017" / "val.txt").read_text().split()
        jobs = [(root / "Annotations" / "480p" / n, tmp / n, i) for i, n in enumerate(names)]
        with ProcessPoolExecutor(workers) as ex:
            list(ex.map(_perturb_sequence, jobs))
        os.replace(tmp, results)
    source_file = work / "source.txt"
    return root, results, source_file.read_text().strip() if source_file.is_file() else "existing"


# --- phases, each run in a fresh process so that its peak RSS is its own ---------------------------


def _rss_mb() -> tuple[float, float]:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return self_kb / 1024, children_kb / 1024


def _all_pngs(root: Path, results: Path) -> list[Path]:
    return sorted((root / "Annotations" / "480p").glob("*/*.png")) + sorted(results.glob("*/*.png"))


def _time_decoding(root: Path, results: Path, read) -> dict:
    pngs = _all_pngs(root, results)
    t0 = time.perf_counter()
    for p in pngs:
        read(p, allow_gray=True)
    return {"wall": time.perf_counter() - t0, "files": len(pngs)}


def phase_decode(root: Path, results: Path, workers: int, out: Path) -> dict:
    """Every PNG decoded once with PIL (``read_mask``), single-threaded."""
    return _time_decoding(root, results, read_mask)


def phase_decode_fast(root: Path, results: Path, workers: int, out: Path) -> dict:
    """Every PNG decoded once with vosbench's fast path (zlib-ng), single-threaded."""
    from vosbench.metrics.fastpng import read_id_mask

    return _time_decoding(root, results, read_id_mask)


def phase_vosbench(root: Path, results: Path, workers: int, out: Path) -> dict:
    from vosbench.metrics import evaluate_results

    t0 = time.perf_counter()
    result = evaluate_results(root, results, "val", workers=workers)
    wall = time.perf_counter() - t0
    means = {o.name: (o.j.mean, o.f.mean) for o in result.objects}
    frames = sum(len(s.frames) for s in result.sequences)
    return {"wall": wall, "objects": len(result.objects), "frames": frames, "jf": result.summary.jf_mean, "means": means}


def phase_vos_benchmark(root: Path, results: Path, workers: int, out: Path) -> dict:
    from vos_benchmark.benchmark import benchmark

    t0 = time.perf_counter()
    *_, objects = benchmark([str(root / "Annotations" / "480p")], [str(results)], num_processes=workers, verbose=False)
    wall = time.perf_counter() - t0
    means = {f"{seq}_{k}": (j[k] / 100, f[k] / 100) for seq, (j, f) in objects[0].items() for k in j}
    return {"wall": wall, "means": means}


PHASES = {
    "decode": phase_decode,
    "decode-fast": phase_decode_fast,
    "vosbench": phase_vosbench,
    "vos-benchmark": phase_vos_benchmark,
}


def run_phase(name: str, root: Path, results: Path, workers: int, out: Path, code: Path | None = None) -> dict:
    """Run one phase in a fresh process; ``code``: the vosbench tree to import (default: this one)."""
    cmd = [sys.executable, __file__, "--phase", name, "--data", str(root), "--results", str(results),
           "--workers", str(workers), "--phase-out", str(out)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(code or Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    subprocess.run(cmd, check=True, env=env)
    return json.loads(out.read_text())


def compare_with_baseline(root: Path, results: Path, workers: int, out: Path, baseline: Path, repeat: int) -> None:
    """Alternate this tree's and ``baseline``'s evaluation ``repeat`` times; print the medians and their ratio."""
    ours, base = [], []
    for _ in range(repeat):
        base.append(run_phase("vosbench", root, results, workers, out, baseline))
        ours.append(run_phase("vosbench", root, results, workers, out))
    same = all(b["means"] == o["means"] for b, o in zip(base, ours))
    t_ours, t_base = (float(np.median([r["wall"] for r in rs])) for rs in (ours, base))
    print(f"\nvosbench evaluate, this tree vs {baseline} ({repeat} alternating runs each, {workers} workers):")
    for label, t, rs in (("this tree", t_ours, ours), ("baseline ", t_base, base)):
        runs = ", ".join(f"{r['wall']:.2f}" for r in rs)
        print(f"  {label}: {t:.2f} s (runs {runs})")
    print(f"  ratio this/baseline (medians): {t_ours / t_base:.3f}; per-object J and F identical: {same}")


def _visible_in_first_scored_frame(root: Path) -> set[str]:
    keep = set()
    for seq in (root / "ImageSets" / "2017" / "val.txt").read_text().split():
        pngs = sorted((root / "Annotations" / "480p" / seq).glob("*.png"))
        first, second = read_mask(pngs[0]), read_mask(pngs[1])
        n = int(first[first != 255].max(initial=0))
        keep |= {f"{seq}_{k}" for k in range(1, n + 1) if (second == k).any()}
    return keep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=None, help="Folder for the generated data (kept; reused when present).")
    ap.add_argument("--workers", type=int, default=2, help="Processes for both evaluators.")
    ap.add_argument("--source", choices=("auto", "synthetic", "blobs"), default="auto")
    ap.add_argument("--sequences", type=int, default=SEQUENCES, help="Sequences to generate (DAVIS val has 30).")
    ap.add_argument("--skip-vos-benchmark", action="store_true")
    ap.add_argument("--baseline", type=Path, default=None, help="Another vosbench tree to time against (alternating).")
    ap.add_argument("--repeat", type=int, default=3, help="Alternating runs per tree with --baseline.")
    ap.add_argument("--phase", choices=tuple(PHASES), help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--results", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--phase-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.phase:
        out = PHASES[args.phase](args.data, args.results, args.workers, args.phase_out)
        out["rss_main_mb"], out["rss_worker_mb"] = _rss_mb()
        args.phase_out.write_text(json.dumps(out))
        return

    work = args.work or Path(tempfile.mkdtemp(prefix="vosbench-evalspeed-"))
    work.mkdir(parents=True, exist_ok=True)
    root, results, source = prepare(work, args.source, args.workers, args.sequences)
    out = work / "phase.json"
    if args.baseline is not None:
        compare_with_baseline(root, results, args.workers, out, args.baseline.resolve(), args.repeat)
        return
    decode = run_phase("decode", root, results, args.workers, out)
    decode_fast = run_phase("decode-fast", root, results, args.workers, out)
    ours = run_phase("vosbench", root, results, args.workers, out)
    theirs = None if args.skip_vos_benchmark else run_phase("vos-benchmark", root, results, args.workers, out)

    n_seq = len((root / "ImageSets" / "2017" / "val.txt").read_text().split())
    print(f"\ndata: {source}, {n_seq} sequences, {ours['frames']} scored frames, {ours['objects']} objects, "
          f"{decode['files']} PNGs at {SIZE[0]}x{SIZE[1]}; {args.workers} worker processes; {os.cpu_count()} CPUs")
    print(f"{'run':<32}{'wall s':>9}{'x decode':>10}{'main RSS MB':>13}{'worker RSS MB':>15}")
    rows = [
        ("decode all PNGs, PIL (1 proc)", decode),
        ("decode all, fast path (1 proc)", decode_fast),
        (f"vosbench evaluate ({args.workers} proc)", ours),
    ]
    if theirs:
        rows.append((f"vos-benchmark ({args.workers} proc)", theirs))
    for label, r in rows:
        print(f"{label:<32}{r['wall']:>9.2f}{r['wall'] / decode['wall']:>10.2f}{r['rss_main_mb']:>13.0f}{r['rss_worker_mb']:>15.0f}")
    if theirs:
        print(f"speed-up over vos-benchmark: {theirs['wall'] / ours['wall']:.2f}x")
        keep = _visible_in_first_scored_frame(root) & set(ours["means"]) & set(theirs["means"])
        dj = max(abs(ours["means"][k][0] - theirs["means"][k][0]) for k in keep)
        df = max(abs(ours["means"][k][1] - theirs["means"][k][1]) for k in keep)
        print(f"max |dJ|, |dF| per object vs vos-benchmark ({len(keep)} objects visible in frame 1): {dj:.2e}, {df:.2e}")
    print(f"J&F-Mean {ours['jf']:.3f}; data kept in {work}")


if __name__ == "__main__":
    main()
