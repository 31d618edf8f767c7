"""Speed and memory of the inference engine (`vosbench infer`).

1. **Speed** — frames/s at 480p (480x854) for ``stm-r50`` (random init) with 3 objects: the
   engine (:class:`vosbench.infer.InferenceCore`: one query encoding per frame, one memory encoding
   of all objects per frame, keys/values written once into a preallocated bank, one batched memory
   read and decoder call for all objects) against a naive reference written like the original STM
   evaluation loop run object by object: the memory encoder and the read + decoder are re-run per
   object (K=1 calls, soft aggregation afterwards), and the memory is a Python list concatenated
   at every frame. Same weights, same schedule (first frame, every 5th, previous frame). The
   naive memory encoder sees one object at a time (its "other objects" channel is empty), so the
   two outputs are close but not identical; only the timings are compared.
2. **Memory** — peak RSS of a 100-frame and a 1000-frame random video with ``stm-tiny`` (each in
   a fresh process), with the default memory cap and, for reference, with no cap.
3. **Precision** (``--real-data DIR``) — the engine in fp32, bf16 autocast, + channels_last, and +
   BatchNorm folded and weights stored in bf16 (``engine.inference_model``: what ``vosbench infer``
   runs at ``--precision bf16``) side by side on the real 854x480 clips of DIR (``<group>/<seq>/JPEGImages/480p/<seq>/``, as in
   ``shared/data/real_vos``), ``stm-r50`` with 3 objects (the first mask's bounding box cut into
   3 vertical strips): s/frame and label agreement with fp32 on every propagated frame. A
   random-init network's outputs are near ties (its fp32 top-2 margin is printed), so before
   timing, the model is fitted to each clip's first frame in fp32 (online finetuning,
   ``--fit-steps`` at ``--fit-scale``); the agreement is then the one of a model that segments.

    .venv/bin/python benchmarks/infer_speed.py [--frames 6] [--threads 1] [--long-size 120x216]
    .venv/bin/python benchmarks/infer_speed.py --skip-speed      # memory part only
    nice -n 5 .venv/bin/python benchmarks/infer_speed.py --skip-speed --skip-memory --threads 2 \
        --real-data ../shared/data/real_vos --precision-frames 6 [--conv-ceiling]
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import time

import numpy as np
import torch

from pathlib import Path

from vosbench.data.imageio import read_frame, read_mask
from vosbench.infer.engine import DEFAULT_MAX_MEM_FRAMES, EngineConfig, InferenceCore, inference_model, prepare_model
from vosbench.infer.finetune import FinetuneConfig, finetune_model
from vosbench.models import build_model
from vosbench.models.aggregate import soft_aggregate

H, W = 480, 854


def make_video(n: int, h: int, w: int, objects: int, seed: int = 0) -> tuple[list[torch.Tensor], np.ndarray]:
    """Random frames and a first-frame mask with ``objects`` rectangles."""
    g = torch.Generator().manual_seed(seed)
    frames = [torch.rand(3, h, w, generator=g) for _ in range(n)]
    mask = np.zeros((h, w), np.uint8)
    for k in range(objects):
        y, x = (h // (objects + 1)) * (k + 1) - h // 8, (w // (objects + 1)) * (k + 1) - w // 10
        mask[max(y, 0) : y + h // 4, max(x, 0) : x + w // 5] = k + 1
    return frames, mask


@torch.inference_mode()
def naive_stm(model, frames: list[torch.Tensor], mask: np.ndarray, mem_every: int = 5) -> list[torch.Tensor]:
    """The original STM evaluation loop, object by object (see the module docstring)."""
    ids = [int(i) for i in np.unique(mask) if i]
    m = torch.from_numpy(mask).long()
    probs = torch.stack([m == 0] + [m == i for i in ids]).float()[None]  # the model pads frames itself
    keys: list[list[torch.Tensor]] = [[] for _ in ids]
    values: list[list[torch.Tensor]] = [[] for _ in ids]
    outs = []
    for t in range(1, len(frames)):
        prev = frames[t - 1][None]
        query = model.encode_query(frames[t][None])
        fg = []
        for k in range(len(ids)):
            mem = model.encode_memory(prev, probs[:, 1 + k : 2 + k])  # one object at a time
            k_now = torch.cat(keys[k] + [mem.key[:, :, :, None]], dim=3)  # re-concatenated every frame
            v_now = torch.cat(values[k] + [mem.value[:, :, :, None]], dim=3)
            out = model.segment(query, k_now, v_now)
            fg.append(out.probs[:, 1])
            if (t - 1) % mem_every == 0:
                keys[k].append(mem.key[:, :, :, None])
                values[k].append(mem.value[:, :, :, None])
        probs = torch.softmax(soft_aggregate(torch.stack(fg, 1)), dim=1)
        outs.append(probs[0])
    return outs


@torch.inference_mode()
def engine_run(model, frames, mask, config: EngineConfig) -> list[torch.Tensor]:
    core = InferenceCore(model, config)
    out = [core.step(frames[0], mask)]
    for f in frames[1:]:
        out.append(core.step(f))
    return out


def speed(frames_n: int, objects: int, repeats: int) -> None:
    torch.manual_seed(0)
    model = build_model("stm-r50").eval()
    frames, mask = make_video(frames_n, H, W, objects)
    engine_run(model, frames[:2], mask, EngineConfig(precision="fp32"))  # warm-up (allocator, oneDNN kernels)
    t_engine = t_naive = float("inf")
    for _ in range(repeats):  # interleaved, best of: the machine may be shared
        t0 = time.perf_counter()
        fast = engine_run(model, frames, mask, EngineConfig(precision="fp32"))  # the naive loop runs fp32
        t_engine = min(t_engine, time.perf_counter() - t0)
        t0 = time.perf_counter()
        slow = naive_stm(model, frames, mask)
        t_naive = min(t_naive, time.perf_counter() - t0)
    propagated = frames_n - 1  # frame 0 is given
    agree = float(np.mean([(a.argmax(0) == b.argmax(0)).float().mean().item() for a, b in zip(fast[1:], slow)]))
    print(f"\nstm-r50, {W}x{H}, {objects} objects, {frames_n} frames ({propagated} propagated), "
          f"{torch.get_num_threads()} CPU threads, best of {repeats}")
    print(f"| {'implementation':<46} | {'seconds':>8} | {'frames/s':>8} |")
    print(f"|{'-' * 48}|{'-' * 10}|{'-' * 10}|")
    print(f"| {'naive STM loop (per object, cat memory)':<46} | {t_naive:8.1f} | {propagated / t_naive:8.3f} |")
    print(f"| {'vosbench InferenceCore':<46} | {t_engine:8.1f} | {propagated / t_engine:8.3f} |")
    print(f"speed-up: {t_naive / t_engine:.2f}x   (argmax agreement engine vs naive: {agree:.3f})")


def peak_rss_mib() -> float:
    """This process's peak RSS (VmHWM). Unlike ``ru_maxrss`` it is not inherited from the parent
    that forked us (which holds stm-r50 and 480p frames)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not in /proc/self/status (Linux only)")


def memory_child(frames_n: int, h: int, w: int, cap: int) -> None:
    """Runs in a fresh process: one video, prints JSON with peak RSS and bank size."""
    torch.manual_seed(0)
    model = build_model("stm-tiny").eval()
    g = torch.Generator().manual_seed(0)
    _, mask = make_video(1, h, w, 3)
    core = InferenceCore(model, EngineConfig(max_mem_frames=cap, precision="fp32"))
    t0 = time.perf_counter()
    with torch.inference_mode():
        core.step(torch.rand(3, h, w, generator=g), mask)
        for _ in range(frames_n - 1):
            core.step(torch.rand(3, h, w, generator=g))
    secs = time.perf_counter() - t0
    rss = peak_rss_mib()
    print(json.dumps({"rss_mb": rss, "bank_mb": core.memory.nbytes() / 2**20,
                      "mem_frames": core.memory.num_frames, "fps": frames_n / secs}))


def memory(size: tuple[int, int], lengths: list[int], threads: int) -> None:
    h, w = size
    print(f"\nstm-tiny, {w}x{h} random frames, 3 objects, peak RSS per fresh process")
    print(f"| {'frames':>6} | {'max_mem_frames':>14} | {'memory frames':>13} | {'bank MiB':>8} | {'peak RSS MiB':>12} | {'frames/s':>8} |")
    print(f"|{'-' * 8}|{'-' * 16}|{'-' * 15}|{'-' * 10}|{'-' * 14}|{'-' * 10}|")
    runs = [(n, DEFAULT_MAX_MEM_FRAMES) for n in lengths] + [(max(lengths), 10**6)]
    for n, cap in runs:
        cmd = [sys.executable, __file__, "--child", str(n), str(h), str(w), str(cap), "--threads", str(threads)]
        res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        cap_s = "none" if cap >= 10**6 else str(cap)
        print(f"| {n:>6} | {cap_s:>14} | {res['mem_frames']:>13} | {res['bank_mb']:8.1f} | {res['rss_mb']:12.0f} | {res['fps']:8.1f} |")


def real_clips(root: Path, frames_n: int) -> list[tuple[str, list[np.ndarray], np.ndarray]]:
    """(name, first ``frames_n`` frames H,W,3 uint8, first mask cut into 3 objects) per clip under ``root``."""
    clips = []
    for jpeg in sorted(root.glob("*/*/JPEGImages/480p/*")):
        name = jpeg.name
        anno = jpeg.parents[2] / "Annotations" / "480p" / name
        paths = sorted(jpeg.glob("*.jpg"))[:frames_n]
        first = read_mask(sorted(anno.glob("*.png"))[0])
        ys, xs = np.nonzero(first)
        cut = np.zeros_like(first)
        edges = np.linspace(xs.min(), xs.max() + 1, 4).round().astype(int)
        for k in range(3):  # 3 vertical strips of the object(s)' bounding box
            strip = np.zeros_like(first, dtype=bool)
            strip[:, edges[k] : edges[k + 1]] = True
            cut[(first > 0) & strip] = k + 1
        clips.append((name, [read_frame(p) for p in paths], cut))
    return clips


def _tensor(frame: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(frame)).permute(2, 0, 1).float().div_(255)


def fit(model, frame: np.ndarray, mask: np.ndarray, steps: int, scale: float):
    """``model`` fitted in fp32 to one frame (online finetuning on a downscaled copy)."""
    import cv2

    h, w = mask.shape
    size = (max(32, round(w * scale)), max(32, round(h * scale)))
    small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
    return finetune_model(model, small, small_mask, [1, 2, 3], FinetuneConfig(steps=steps, lr=1e-4, precision="fp32"))


@torch.inference_mode()
def _lockstep(models: dict, frames: list[torch.Tensor], mask: np.ndarray, configs: dict) -> dict:
    """Every variant steps through the clip frame by frame in turn (so a shared machine's load
    falls on all alike): ``{variant: (labels of frames 1.., median seconds per frame)}``."""
    cores = {v: InferenceCore(models[v], configs[v]) for v in configs}
    for core in cores.values():
        core.step(frames[0], mask)
    labels: dict = {v: [] for v in configs}
    times: dict = {v: [] for v in configs}
    margins: dict = {v: [] for v in configs}
    for f in frames[1:]:
        for v, core in cores.items():
            t0 = time.perf_counter()
            probs = core.step(f)
            times[v].append(time.perf_counter() - t0)
            labels[v].append(probs.argmax(0))
            top2 = probs.topk(2, dim=0).values
            margins[v].append(float((top2[0] - top2[1]).mean()))
    return {v: (labels[v], float(np.median(times[v])), float(np.mean(margins[v]))) for v in configs}


def precision_compare(root: Path, frames_n: int, fit_steps: int, fit_scale: float, preset: str) -> None:
    # (engine config, whether the network goes through engine.inference_model as `vosbench infer` does)
    setups = {
        "fp32": (EngineConfig(precision="fp32"), True),
        "bf16 autocast": (EngineConfig(precision="bf16", channels_last=False), False),
        "+ channels_last": (EngineConfig(precision="bf16", channels_last=True), False),
        "+ BN folded, bf16 wts": (EngineConfig(precision="bf16"), True),
    }
    variants = {v: cfg for v, (cfg, _) in setups.items()}
    clips = real_clips(root, frames_n)
    print(f"\n{preset}, 854x480 real clips, 3 objects, {frames_n} frames per clip ({frames_n - 1} propagated), "
          f"{torch.get_num_threads()} CPU threads; fitted to frame 0 with {fit_steps} fp32 steps at scale {fit_scale}")
    print(f"| {'clip':<11} | {'variant':<21} | {'s/frame':>8} | {'speed-up':>8} | {'label agreement':>15} | {'margin':>6} |")
    print(f"|{'-' * 13}|{'-' * 23}|{'-' * 10}|{'-' * 10}|{'-' * 17}|{'-' * 8}|")
    if not clips:
        raise SystemExit(f"{root}: no clips (<group>/<seq>/JPEGImages/480p/<seq>/*.jpg)")
    totals = {v: [0.0, 0, 0] for v in variants}  # seconds per frame, agreeing pixels, pixels
    for name, frames_np, mask in clips:
        torch.manual_seed(0)
        base = build_model(preset).eval()
        model = fit(base, frames_np[0], mask, fit_steps, fit_scale) if fit_steps else base
        models = {}
        for v, (cfg, engine_path) in setups.items():
            prepared = prepare_model(copy.deepcopy(model), "cpu", cfg)
            models[v] = inference_model(prepared, cfg) if engine_path else prepared
        results = _lockstep(models, [_tensor(f) for f in frames_np], mask, variants)
        ref = results["fp32"][0]
        for v, (labels, spf, margin) in results.items():
            agree = sum(int((a == b).sum()) for a, b in zip(labels, ref))
            pixels = sum(a.numel() for a in ref)
            totals[v][0] += spf
            totals[v][1] += agree
            totals[v][2] += pixels
            print(f"| {name:<11} | {v:<21} | {spf:8.2f} | {results['fp32'][1] / spf:7.2f}x | {agree / pixels:15.4f} | "
                  f"{margin:6.3f} |", flush=True)
    n = len(clips)
    for v, (secs, agree, pixels) in totals.items():
        print(f"| {'all (mean)':<11} | {v:<21} | {secs / n:8.2f} | {totals['fp32'][0] / secs:7.2f}x | "
              f"{agree / pixels:15.4f} | {'':>6} |")
    print("s/frame: median over the propagated frames; margin: mean top-1 minus top-2 probability "
          "(near 0 = near ties, where agreement measures rounding only)")


def conv_ceiling(threads: int) -> None:
    """fp32 vs bf16 on the convolutions that dominate stm-r50 at 854x480 (the decoder's 3x3 256->256
    at stride 4 runs once per object): the most the engine can gain where it is compute-bound."""
    shapes = [(256, 256, 3), (128, 128, 3), (64, 256, 1), (256, 64, 1)]
    print(f"\nConvolutions at 3x120x216 (3 objects, stride 4 of 480x864), {threads} threads, best of 5")
    print("| conv | fp32 ms | fp32 GFLOP/s | fp32 channels_last ms | bf16 channels_last ms | bf16 GFLOP/s | bf16 vs fp32 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for cin, cout, k in shapes:
        runs = []
        for dtype, cl in ((torch.float32, False), (torch.float32, True), (torch.bfloat16, True)):
            conv = torch.nn.Conv2d(cin, cout, k, padding=k // 2).to(dtype)
            x = torch.randn(3, cin, 120, 216).to(dtype)
            if cl:
                conv, x = conv.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                conv(x)
                best = min(_timed(conv, x) for _ in range(5))
            runs.append(best)
        gflop = 2 * cin * cout * k * k * 3 * 120 * 216 / 1e9
        print(f"| {cin}->{cout} {k}x{k} | {runs[0] * 1e3:.0f} | {gflop / runs[0]:.0f} | {runs[1] * 1e3:.0f} | "
              f"{runs[2] * 1e3:.0f} | {gflop / runs[2]:.0f} | {runs[0] / runs[2]:.2f}x |")


def _timed(fn, x) -> float:
    t0 = time.perf_counter()
    fn(x)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=6, help="frames of the 480p speed video")
    ap.add_argument("--objects", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2, help="interleaved timing repeats (best of)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared, loaded machine)")
    ap.add_argument("--long-size", default="120x216", help="HxW of the memory-test videos")
    ap.add_argument("--lengths", default="100,1000", help="frame counts of the memory-test videos")
    ap.add_argument("--real-data", type=Path, help="real clips for the precision comparison (e.g. shared/data/real_vos)")
    ap.add_argument("--precision-frames", type=int, default=6, help="frames per real clip")
    ap.add_argument("--fit-steps", type=int, default=10, help="fp32 finetuning steps on frame 0 before timing (0 = random init)")
    ap.add_argument("--fit-scale", type=float, default=0.25, help="scale of the frame the model is fitted on")
    ap.add_argument("--preset", default="stm-r50", help="model of the precision comparison")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--conv-ceiling", action="store_true", help="also time fp32 vs bf16 on the engine's dominant convolutions")
    ap.add_argument("--child", nargs=4, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        memory_child(*args.child)
        return
    if not args.skip_speed:
        speed(args.frames, args.objects, args.repeats)
    if not args.skip_memory:
        h, w = (int(v) for v in args.long_size.lower().split("x"))
        memory((h, w), [int(v) for v in args.lengths.split(",")], args.threads)
    if args.real_data is not None:
        precision_compare(args.real_data, args.precision_frames, args.fit_steps, args.fit_scale, args.preset)
    if args.conv_ceiling:
        conv_ceiling(args.threads)


if __name__ == "__main__":
    main()
