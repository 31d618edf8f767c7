"""Which samples each rank trains on at each step: the global batch split over ranks and
gradient-accumulation micro-steps, and the one DataLoader that serves a whole run.

A step's global batch is the next ``batch_size`` indices of the epoch's permutation
(``torch.randperm`` seeded with ``seed + epoch``, as ``DistributedSampler`` draws it). Its sample
``j`` goes to unit ``u = j % (world * accumulate)``: rank ``u % world``, micro-step ``u // world``.
With ``accumulate = 1`` and a batch that divides by the world size this is exactly what
``DistributedSampler`` + a ``DataLoader`` of ``batch_size / world`` gave before. A batch that does
not divide is split as evenly as possible (sizes differ by at most one) and each micro-batch's
loss is weighted by its share of the batch (:func:`micro_weight`), so the summed gradient is the
gradient of the batch mean: batch 12 runs on 8 GPUs (4 ranks take 2 clips, 4 take 1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from vosbench.errors import ConfigError


def check_split(batch_size: int, world: int, accumulate: int) -> None:
    """Every rank needs at least one sample in each micro-step."""
    if accumulate < 1:
        raise ConfigError(f"train.accumulate must be >= 1, got {accumulate}")
    if batch_size < world * accumulate:
        raise ConfigError(f"train.batch_size {batch_size} is smaller than {world} workers x train.accumulate "
                          f"{accumulate}: every worker needs at least one clip per micro-step")


def epoch_permutation(n: int, seed: int, epoch: int) -> list[int]:
    g = torch.Generator()
    g.manual_seed(seed + epoch)
    return torch.randperm(n, generator=g).tolist()


def step_units(window: list[int], world: int, accumulate: int) -> list[list[int]]:
    """``window`` (one step's global batch) dealt to ``world * accumulate`` units (see the module doc)."""
    units = world * accumulate
    return [window[u::units] for u in range(units)]


def rank_micro_batches(window: list[int], world: int, accumulate: int, rank: int) -> list[list[int]]:
    """This rank's ``accumulate`` micro-batches of one step."""
    units = step_units(window, world, accumulate)
    return [units[i * world + rank] for i in range(accumulate)]


def micro_weight(n_micro: int, batch_size: int, world: int) -> float:
    """Loss weight of a micro-batch of ``n_micro`` clips: DDP averages gradients over ``world`` ranks,
    so ``n_micro * world / batch_size`` makes the sum over micro-steps and ranks the batch mean's."""
    return n_micro * world / batch_size


class RunBatches:
    """Batch sampler over steps ``start``..``stop-1``: yields this rank's micro-batches as lists of
    ``(epoch, max_skip, index)`` keys for :class:`~vosbench.train.datasets.ClipDataset`, so workers
    need no per-epoch state and one DataLoader (workers kept) serves the whole run."""

    def __init__(self, *, n_samples: int, batch_size: int, world: int, rank: int, accumulate: int, seed: int,
                 start: int, stop: int, max_skip_at: Callable[[int], int]):
        self.n, self.batch, self.world, self.rank, self.acc = n_samples, batch_size, world, rank, accumulate
        self.seed, self.start, self.stop, self.max_skip_at = seed, start, stop, max_skip_at
        self.steps_per_epoch = n_samples // batch_size

    def __len__(self) -> int:
        return max(self.stop - self.start, 0) * self.acc

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        perm: list[int] = []
        perm_epoch = -1
        for step in range(self.start, self.stop):
            epoch, within = divmod(step, self.steps_per_epoch)
            if epoch != perm_epoch:
                perm, perm_epoch = epoch_permutation(self.n, self.seed, epoch), epoch
            window = perm[within * self.batch:(within + 1) * self.batch]
            max_skip = self.max_skip_at(epoch)
            for micro in rank_micro_batches(window, self.world, self.acc, self.rank):
                yield [(epoch, max_skip, i) for i in micro]


def _worker_init(_worker_id: int) -> None:
    """One OpenCV thread per DataLoader worker (OpenCV's default is one per core, in every worker)."""
    import cv2

    cv2.setNumThreads(1)


def run_loader(dataset: Dataset, batches: RunBatches, *, workers: int, pin_memory: bool) -> DataLoader:
    """The one DataLoader of a run: workers persist across epochs, pinned memory on CUDA (so the
    ``non_blocking`` copies overlap), one OpenCV thread per worker."""
    return DataLoader(dataset, batch_sampler=batches, num_workers=workers, pin_memory=pin_memory,
                      persistent_workers=workers > 0, worker_init_fn=_worker_init if workers > 0 else None)
