"""Training speed on CPU: seconds per step and peak RSS of each tiny preset, and DDP scaling (gloo).

Each measurement runs in a fresh process: ``vosbench train`` on the shipped tiny configs
(``configs/<preset>.toml``: their model overrides, crop and augmentation) with 3-frame clips and
batch 2, timing steps from ``log.csv`` after a warm-up step; then ``configs/stm-tiny.toml`` under
torchrun with 1 and 2 gloo workers at the same global batch, reporting samples per second.
Peak RSS is the child's VmHWM (``ru_maxrss`` would include the RSS it inherited from this process).

    .venv/bin/python benchmarks/train_speed.py [--data ROOT] [--steps 6] [--crop 96x160]
    nice -n 5 .venv/bin/python benchmarks/train_speed.py --precision-only --data ROOT --precision-steps 200 \
        [--precision-jf val]    # + val J&F of every run (fp32 inference at the training scale)

The precision table trains ``configs/stm-tiny.toml`` (batch 4, its own crop) in fp32 and in bf16,
two seeds each, alternating: s/step (median), peak RSS, and the mean loss of the last 20 steps,
whose spread between the two fp32 seeds is the run-to-run noise the bf16 loss is compared with.

Without ``--data`` a small embedded dataset (8 videos, 240x432, with depth) is generated in a temp folder.
Without ``--crop`` each config's own crop is used (96x160 for the tiny configs).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRESETS = ("stm-tiny", "scm-tiny", "dstm-tiny")

CHILD = r"""
import json, sys
from vosbench.train.run import train_from_config
r = train_from_config(sys.argv[1], out=sys.argv[2], max_steps=int(sys.argv[3]), device="cpu", overrides=sys.argv[4:])
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print("RESULT " + json.dumps({"rss_mb": int(hwm.split()[1]) / 1024}))
"""


def _step_times(log_csv: Path) -> list[float]:
    with open(log_csv, newline="") as fh:
        seconds = [float(r["seconds"]) for r in csv.DictReader(fh)]
    return [b - a for a, b in itertools.pairwise(seconds)]  # drops the first (warm-up) step


def _overrides(data: Path, crop: tuple[int, int] | None, batch: int, threads: int, precision: str = "fp32") -> list[str]:
    """``--set`` items: the benchmark's data, batch and thread count on top of a shipped tiny config."""
    items = [f'data.root="{data}"', "data.split=train", "data.samples_per_epoch=4096", "data.workers=0",
             "train.epochs=1", f"train.batch_size={batch}", f"train.threads={threads}", f'train.precision="{precision}"',
             "train.save_every=100000", "train.log_every=100000"]
    if crop is not None:
        items += [f"data.crop=[{crop[0]}, {crop[1]}]", f"data.short_side=[{crop[0]}, {crop[0] + 32}]"]
    return items


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def measure_preset(tmp: Path, preset: str, data: Path, crop: tuple[int, int] | None, steps: int, threads: int) -> dict:
    cfg = REPO / "configs" / f"{preset}.toml"
    out = tmp / f"run-{preset}-t{threads}"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(cfg), str(out), str(steps + 1),
                           *_overrides(data, crop, 2, threads)], env=_env(), capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{preset}: training failed:\n{proc.stderr[-2000:]}")
    info = json.loads(proc.stdout.split("RESULT ", 1)[1])
    times = _step_times(out / "log.csv")
    return {"preset": preset, "threads": threads, "s_per_step": sum(times) / len(times), "rss_mb": info["rss_mb"]}


def measure_precision(tmp: Path, data: Path, steps: int, threads: int, precision: str, seed: int) -> dict:
    """One stm-tiny run of ``steps`` steps at ``precision``: s/step, peak RSS, mean loss of the last 20 steps."""
    cfg = REPO / "configs" / "stm-tiny.toml"
    out = tmp / f"prec-{precision}-s{seed}"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(cfg), str(out), str(steps),
                           *_overrides(data, None, 4, threads, precision), f"train.seed={seed}"],
                          env=_env(), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{precision}: training failed:\n{proc.stderr[-2000:]}")
    info = json.loads(proc.stdout.split("RESULT ", 1)[1])
    times = sorted(_step_times(out / "log.csv"))
    with open(out / "log.csv", newline="") as fh:
        losses = [float(r["loss"]) for r in csv.DictReader(fh)]
    tail = losses[-20:]
    return {"precision": precision, "seed": seed, "s_per_step": times[len(times) // 2], "rss_mb": info["rss_mb"],
            "loss": sum(tail) / len(tail), "out": str(out)}


EVAL_CHILD = r"""
import json, sys
from pathlib import Path
from vosbench.infer.run import InferOptions, infer_dataset
from vosbench.metrics import evaluate_results
from vosbench.quickstart import training_scale
cfg, ckpt, data, split, out = sys.argv[1:6]
scale = training_scale(cfg, data, split)
infer_dataset(ckpt, Path(data), split, "480p", Path(out), InferOptions(device="cpu", scales=(scale,), precision="fp32"))
res = evaluate_results(Path(data), Path(out), split)
print("RESULT " + json.dumps({"jf": float(res.global_table()["J&F-Mean"].iloc[0])}))
"""


def evaluate_run(run: dict, data: Path, split: str) -> None:
    """Add the val J&F of ``run``'s last checkpoint (inferred in fp32 at the config's training scale)."""
    out = Path(run["out"])
    proc = subprocess.run([sys.executable, "-c", EVAL_CHILD, str(REPO / "configs" / "stm-tiny.toml"),
                           str(out / "last.pt"), str(data), split, str(out / "results")],
                          env=_env(), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{run['precision']} seed {run['seed']}: evaluation failed:\n{proc.stderr[-2000:]}")
    run["jf"] = 100 * json.loads(proc.stdout.split("RESULT ", 1)[1])["jf"]


def precision_table(tmp: Path, data: Path, steps: int, threads: int, jf_split: str | None = None) -> None:
    runs = [measure_precision(tmp, data, steps, threads, p, seed)
            for seed, order in ((0, ("fp32", "bf16")), (1, ("bf16", "fp32"))) for p in order]
    for r in runs if jf_split else ():
        evaluate_run(r, data, jf_split)
    fp32 = [r for r in runs if r["precision"] == "fp32"]
    base = sum(r["s_per_step"] for r in fp32) / len(fp32)
    print(f"\nstm-tiny training (configs/stm-tiny.toml: batch 4, crop 96x160), {steps} steps per run, "
          f"{threads} thread(s); loss = mean of the last 20 steps")
    jf_head = f" {'val J&F':>7} |" if jf_split else ""
    print(f"| {'precision':<9} | {'seed':>4} | {'s/step':>7} | {'steps/s':>7} | {'vs fp32':>7} | {'peak RSS MB':>11} | {'loss':>7} |{jf_head}")
    print(f"|{'-' * 11}|{'-' * 6}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 13}|{'-' * 9}|" + ("-" * 9 + "|" if jf_split else ""))
    for r in sorted(runs, key=lambda r: (r["precision"] != "fp32", r["seed"])):
        jf = f" {r['jf']:7.1f} |" if jf_split else ""
        print(f"| {r['precision']:<9} | {r['seed']:>4} | {r['s_per_step']:7.3f} | {1 / r['s_per_step']:7.2f} | "
              f"{base / r['s_per_step']:6.2f}x | {r['rss_mb']:11.0f} | {r['loss']:7.4f} |{jf}")
    noise = abs(fp32[0]["loss"] - fp32[1]["loss"])
    bf16 = [r["loss"] for r in runs if r["precision"] == "bf16"]
    print(f"fp32 seed-to-seed loss spread {noise:.4f}; bf16 mean loss {sum(bf16) / 2:.4f} vs fp32 "
          f"{sum(r['loss'] for r in fp32) / 2:.4f}")


def measure_ddp(tmp: Path, data: Path, crop: tuple[int, int] | None, steps: int, nproc: int, batch: int) -> dict:
    out = tmp / f"ddp-{nproc}-b{batch}"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "vosbench_cli.launch", "--config", str(REPO / "configs" / "stm-tiny.toml"), "--out", str(out),
           "--max-steps", str(steps + 1), "--device", "cpu"]
    for item in _overrides(data, crop, batch, 1):
        cmd += ["--set", item]
    proc = subprocess.run(cmd, env=dict(_env(), OMP_NUM_THREADS="1"), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"DDP x{nproc}: training failed:\n{proc.stderr[-2000:]}")
    times = _step_times(out / "log.csv")
    s_per_step = sum(times) / len(times)
    return {"workers": nproc, "batch": batch, "s_per_step": s_per_step, "samples_per_s": batch / s_per_step}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="DAVIS-layout root with a train split (and Depth/ for dstm-tiny)")
    ap.add_argument("--steps", type=int, default=6, help="timed steps per measurement (after 1 warm-up step)")
    ap.add_argument("--crop", default=None, help="training crop HxW (default: each config's own, 96x160)")
    ap.add_argument("--threads", default="1", help="torch threads per process for the preset table, e.g. 1,2")
    ap.add_argument("--precision-steps", type=int, default=200, help="steps per run of the precision table")
    ap.add_argument("--precision-threads", type=int, default=2)
    ap.add_argument("--precision-only", action="store_true", help="only the fp32 vs bf16 table")
    ap.add_argument("--precision-jf", metavar="SPLIT", help="also infer (fp32) and evaluate every precision run on SPLIT of --data")
    args = ap.parse_args()
    crop = None if args.crop is None else tuple(int(v) for v in args.crop.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="train-speed-") as td:
        tmp = Path(td)
        data = args.data
        if data is None:
            from vosbench.data.synthetic.generate import generate_synthetic

            data = tmp / "data"
            generate_synthetic(data, "tiny", seed=0, videos=8, size=(240, 432))
        if args.precision_only:
            precision_table(tmp, data, args.precision_steps, args.precision_threads, args.precision_jf)
            return
        rows = [measure_preset(tmp, p, data, crop, args.steps, int(t)) for t in args.threads.split(",") for p in PRESETS]
        shown = "each config's" if crop is None else f"{crop[0]}x{crop[1]}"
        print(f"\nTraining step on CPU (3-frame clips, batch 2, crop {shown}, shipped tiny configs)")
        print(f"{'preset':<12}{'threads':>8}{'s/step':>10}{'samples/s':>11}{'peak RSS MB':>13}")
        for r in rows:
            print(f"{r['preset']:<12}{r['threads']:>8}{r['s_per_step']:>10.2f}{2 / r['s_per_step']:>11.2f}{r['rss_mb']:>13.0f}")
        ddp = [measure_ddp(tmp, data, crop, args.steps, n, 2) for n in (1, 2)]
        print("\nDDP on CPU (gloo, 1 thread per worker, stm-tiny, global batch 2)")
        print(f"{'workers':<9}{'s/step':>10}{'samples/s':>11}{'speed-up':>10}")
        for r in ddp:
            print(f"{r['workers']:<9}{r['s_per_step']:>10.2f}{r['samples_per_s']:>11.2f}"
                  f"{r['samples_per_s'] / ddp[0]['samples_per_s']:>10.2f}")
        precision_table(tmp, data, args.precision_steps, args.precision_threads, args.precision_jf)


if __name__ == "__main__":
    main()
