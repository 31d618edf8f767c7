"""Per-step and per-checkpoint overheads of training that issue 25 removed, old way vs new way.

Rows:
- ``checkpoint``: rank 0's save of one checkpoint pair (``step-<N>.pt`` + ``last.pt``) for a preset
  (default stm-r50): two full fsynced writes (before) vs one write + a hard link (now). The other
  ranks wait this long at every ``save_every``.
- ``lovasz``: Lovász-softmax forward+backward at a training batch (B clips' frames, K+1 classes,
  crop HxW): the per-image, per-class loop with two host reads per class (before) vs the batched
  sort (now). On a GPU the loop also synchronises with the host 2 x B x (K+1) times per frame.
- ``host reads``: how many tensor -> Python conversions one frame's loss makes (counted by patching
  ``Tensor.__bool__/__float__/__int__/item``); each is a GPU->CPU synchronisation on CUDA. "before":
  float values per term + the loop Lovász's two reads per image and class; "now": the CPU-only
  target-id check (on CUDA an asynchronous device assert, so 0); the step reads its loss once.

    .venv/bin/python benchmarks/train_overheads.py [--preset stm-r50] [--batch 4] [--crop 384 384] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from vosbench.losses import lovasz_softmax, segmentation_loss
from vosbench.models import build_model, get_preset
from vosbench.models.config import LossConfig
from vosbench.models.outputs import SegmentationOutput
from vosbench.train.checkpointing import link_or_copy, save_training_checkpoint


def _loop_lovasz(probs: torch.Tensor, target: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """The implementation before the change, for timing (per image, per class, host reads)."""
    losses = []
    for b in range(probs.shape[0]):
        p, t = probs[b].flatten(1), target[b].flatten()
        keep = t != ignore_index
        p, t = p[:, keep], t[keep]
        per_class = []
        for c in range(p.shape[0]):
            fg = t == c
            if not bool(fg.any()):
                continue
            errors = (fg.float() - p[c]).abs()
            errors_sorted, order = torch.sort(errors, descending=True)
            gt = fg[order].double()
            total = gt.sum()
            jac = 1.0 - (total - gt.cumsum(0)) / (total + (1 - gt).cumsum(0))
            jac = torch.cat([jac[:1], jac[1:] - jac[:-1]])
            per_class.append(torch.dot(errors_sorted, jac.to(errors_sorted.dtype)))
        if per_class:
            losses.append(torch.stack(per_class).mean())
    return torch.stack(losses).mean()


def _best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


@contextlib.contextmanager
def _count_host_reads() -> Iterator[list[int]]:
    count = [0]
    names = ("__bool__", "__float__", "__int__", "item")
    saved = {n: getattr(torch.Tensor, n) for n in names}

    def wrap(real):
        def counted(self, *a, **k):
            count[0] += 1
            return real(self, *a, **k)
        return counted

    for n in names:
        setattr(torch.Tensor, n, wrap(saved[n]))
    try:
        yield count
    finally:
        for n, f in saved.items():
            setattr(torch.Tensor, n, f)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="stm-r50")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--objects", type=int, default=3)
    ap.add_argument("--crop", type=int, nargs=2, default=(384, 384))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where to write the checkpoints (default: a temp folder)")
    args = ap.parse_args()
    torch.manual_seed(0)
    rows = []

    model = build_model(get_preset(args.preset).replace(backbone_weights=None))
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        out = Path(d)

        def two_writes() -> None:
            save_training_checkpoint(out / "step-1.pt", model, step=1)
            save_training_checkpoint(out / "last.pt", model, step=1)

        def write_and_link() -> None:
            save_training_checkpoint(out / "step-1.pt", model, step=1)
            link_or_copy(out / "step-1.pt", out / "last.pt")

        old, new = _best(two_writes, args.repeat), _best(write_and_link, args.repeat)
        size = os.path.getsize(out / "step-1.pt") / 2**20
        rows.append((f"checkpoint {args.preset} ({size:.0f} MiB), s", old, new))

    h, w = args.crop
    k = args.objects
    logits = torch.randn(args.batch, k + 1, h, w, requires_grad=True)
    target = torch.randint(0, k + 1, (args.batch, h, w))

    def loss_with(fn: Callable) -> Callable[[], None]:
        def run() -> None:
            logits.grad = None
            fn(torch.softmax(logits, 1), target).backward()
        return run

    rows.append((f"lovasz B={args.batch} K+1={k + 1} {h}x{w} fwd+bwd, s", _best(loss_with(_loop_lovasz), args.repeat),
                 _best(loss_with(lovasz_softmax), args.repeat)))

    out_ = SegmentationOutput(logits=logits, probs=torch.softmax(logits, 1), aux={"coarse_logits": logits})
    cfg = LossConfig(ce=1.0, coarse_ce=1.0, iou=1.0, lovasz=1.0)
    with _count_host_reads() as n_old:
        segmentation_loss(out_, target, cfg)  # floats: what the loop read per frame before
        _loop_lovasz(torch.softmax(logits, 1), target)  # the loop's own reads
    with _count_host_reads() as n_new:
        segmentation_loss(out_, target, cfg, as_tensors=True)
    rows.append(("host reads per frame loss (CPU: counted; CUDA: syncs)", float(n_old[0]), float(n_new[0])))

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    print(f"{'measure':<52} {'before':>10} {'now':>10}")
    for name, a, b in rows:
        print(f"{name:<52} {a:>10.3f} {b:>10.3f}")


if __name__ == "__main__":
    main()
