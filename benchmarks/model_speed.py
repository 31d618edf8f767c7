"""Model speed and memory: per-frame forward time and peak memory of each preset at 480×854, and the
fused/chunked memory read against the original per-object formulation at 10/50/100 memory frames.

Each measurement runs in a fresh child process so that its peak RSS (CPU) or peak CUDA allocation is
its own. A "frame" is one propagation step: encode the query frame, read T=2 memory frames
(first + previous, encoded beforehand), decode all K objects, and encode the result into memory.
Wall and process-CPU seconds are both printed: on a shared machine CPU seconds are the steadier
measure (with --threads 1 they approximate an idle single core).
"peak MB" is the process's own peak RSS (VmHWM, CPU) or peak CUDA allocation; "step MB" is the rise of that
peak over the built model and inputs (activations and temporaries of propagation).

    python benchmarks/model_speed.py                           # 6 main presets, K=1 and 3, CPU
    python benchmarks/model_speed.py --threads 1               # CPU seconds ~ idle single-core time
    python benchmarks/model_speed.py --presets stm-tiny --objects 1 2 3 4 --reps 3
    python benchmarks/model_speed.py --skip-models --frames 10 50 100 --device cuda
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_PRESETS = ["stm-r50", "scm-r101", "dstm-r50", "stm-tiny", "scm-tiny", "dstm-tiny"]


def _peak_mb(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    # The child's own peak RSS (VmHWM, Linux): ru_maxrss is inherited across fork+exec from this
    # parent (torch imported), so small children reported the parent's peak. Not imported from
    # infer_speed.py, which would pull vosbench.infer into every child's baseline.
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024  # KiB


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _best_time(fn, reps: int, device: str) -> tuple[float, float]:
    """Best (wall seconds, process CPU seconds) over ``reps`` calls."""
    times = []
    for _ in range(reps):
        _sync(device)
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start, time.process_time() - cpu))
    return min(times)


def child_model(preset: str, objects: int, height: int, width: int, reps: int, device: str) -> dict:
    import torch

    from vosbench.models import MemoryEncoding, build_model

    torch.manual_seed(0)
    model = build_model(preset).to(device).eval()
    cfg = model.config
    image = torch.rand(1, 3, height, width, device=device)
    masks = (torch.rand(1, objects, height, width, device=device) > 0.8).float()
    depth = torch.rand(1, 1, height, width, device=device) if cfg.depth else None

    def step() -> None:
        query = model.encode_query(image, depth)
        out = model.segment(query, key, value, prev_mask=masks if cfg.spatial_prior else None)
        model.encode_memory(image, out.probs[:, 1:], depth)

    base_mb = _peak_mb(device)
    with torch.inference_mode():
        mem = model.encode_memory(image, masks, depth)  # the memory (first + previous frame), untimed
        key, value = MemoryEncoding.stack([mem, mem])
        seconds, cpu = _best_time(step, reps, device)
    return {"seconds": seconds, "cpu": cpu, "peak_mb": _peak_mb(device), "base_mb": base_mb}


def child_read(
    variant: str,
    frames: int,
    objects: int,
    h: int,
    w: int,
    key_dim: int,
    value_dim: int,
    reps: int,
    device: str,
    chunk: int,
) -> dict:
    import torch

    from vosbench.models.memory import memory_read, naive_memory_read

    g = torch.Generator(device="cpu").manual_seed(0)
    qk = torch.randn(1, key_dim, h, w, generator=g).to(device)
    mk = torch.randn(1, objects, key_dim, frames, h, w, generator=g).to(device)
    mv = torch.randn(1, objects, value_dim, frames, h, w, generator=g).to(device)
    base_mb = _peak_mb(device)
    fn = {
        "naive": lambda: naive_memory_read(qk, mk, mv),
        "sdpa": lambda: memory_read(qk, mk, mv),
        "chunked": lambda: memory_read(qk, mk, mv, chunk_size=chunk),
    }[variant]
    with torch.inference_mode():
        seconds, cpu = _best_time(fn, reps, device)
    return {"seconds": seconds, "cpu": cpu, "peak_mb": _peak_mb(device), "base_mb": base_mb}


def run_child(args: argparse.Namespace, job: dict) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps(job), "--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=DEFAULT_PRESETS)
    parser.add_argument("--objects", nargs="+", type=int, default=[1, 3])
    parser.add_argument("--size", nargs=2, type=int, default=[480, 854], metavar=("H", "W"))
    parser.add_argument(
        "--frames", nargs="+", type=int, default=[10, 50, 100], help="memory frames for the read"
    )
    parser.add_argument("--read-objects", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=8192, help="memory positions per block (chunked read)")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-models", action="store_true")
    parser.add_argument("--skip-read", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    if args.child:
        job = json.loads(args.child)
        kind = job.pop("kind")
        result = child_model(**job) if kind == "model" else child_read(**job)
        print(json.dumps(result))
        return

    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 140))
    h, w = args.size
    console.print(f"device={args.device} threads={args.threads} size={h}x{w} reps={args.reps} (best of reps)")
    if not args.skip_models:
        title = f"Per-frame propagation step at {h}x{w} (query + read of 2 memory frames + memory write)"
        table = Table(title=title)
        for col in ("preset", "objects", "wall s/frame", "CPU s/frame", "peak MB", "step MB"):
            table.add_column(col, justify="left" if col == "preset" else "right")
        for preset in args.presets:
            for k in args.objects:
                job = dict(kind="model", preset=preset, objects=k, height=h, width=w)
                r = run_child(args, dict(job, reps=args.reps, device=args.device))
                console.print(f"  {preset} K={k}: {r}")
                if "error" in r:
                    table.add_row(preset, str(k), "error", r["error"][:60], "", "")
                    continue
                step_mb = r["peak_mb"] - r["base_mb"]
                cells = [f"{r['seconds']:.2f}", f"{r['cpu']:.2f}", f"{r['peak_mb']:.0f}", f"{step_mb:.0f}"]
                table.add_row(preset, str(k), *cells)
        console.print(table)
    if not args.skip_read:
        hs, ws = (h + 15) // 16, (w + 15) // 16
        variants = ("naive", "sdpa", "chunked")
        title = (
            f"Memory read, {args.read_objects} objects, key 128 / value 512, {hs}x{ws} positions/frame; "
            f"chunked = {args.chunk} positions/block; ratios on CPU seconds"
        )
        table = Table(title=title)
        table.add_column("frames", justify="right")
        for v in variants:
            table.add_column(f"{v} wall/CPU s", justify="right")
        table.add_column("naive/sdpa", justify="right")
        table.add_column("naive/chunked", justify="right")
        for v in variants:
            table.add_column(f"{v} MB", justify="right")
        for t in args.frames:
            res = {}
            for variant in variants:
                job = dict(kind="read", variant=variant, frames=t, objects=args.read_objects, h=hs, w=ws)
                job.update(key_dim=128, value_dim=512, reps=args.reps, device=args.device, chunk=args.chunk)
                res[variant] = run_child(args, job)
                console.print(f"  read T={t} {variant}: {res[variant]}")
            if any("error" in r for r in res.values()):
                table.add_row(str(t), *["error"] * 8)
                continue
            cpu = {v: res[v]["cpu"] for v in variants}
            table.add_row(
                str(t),
                *(f"{res[v]['seconds']:.2f}/{cpu[v]:.2f}" for v in variants),
                f"{cpu['naive'] / cpu['sdpa']:.2f}x",
                f"{cpu['naive'] / cpu['chunked']:.2f}x",
                *(f"{res[v]['peak_mb'] - res[v]['base_mb']:.0f}" for v in variants),
            )
        console.print(table)


if __name__ == "__main__":
    main()
