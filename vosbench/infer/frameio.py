"""Frame decoding and mask encoding off the main thread of an inference run.

JPEG decoding (OpenCV) and PNG/npz encoding (zlib) release the GIL, so a few threads run them while
the main thread drives the network: :class:`FramePrefetcher` decodes the next frames ahead (into
pinned memory when the frames go to a GPU, so the copy is asynchronous), :class:`BackgroundWriter`
encodes and writes finished frames. Both are bounded (a few frames in flight) and re-raise a
worker's exception in the main thread, at the latest when the sequence ends.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import numpy as np
import torch

IO_THREADS = min(4, os.cpu_count() or 1)
AHEAD = 4  # frames decoded ahead of the network / encodings waiting to be written


class FramePrefetcher:
    """``get(i)`` -> frame ``i`` as a ``3,H,W`` uint8 tensor (pinned for CUDA), decoded ``AHEAD`` frames early.

    Frames must be asked for in increasing order (the order an engine reads a video).
    """

    def __init__(self, pool: ThreadPoolExecutor, read: Callable[[int], np.ndarray], count: int,
                 pin: bool = False, ahead: int = AHEAD):
        self.pool, self.read, self.count, self.pin, self.ahead = pool, read, count, pin, ahead
        self.pending: collections.OrderedDict[int, Future] = collections.OrderedDict()
        self.next = 0

    def _load(self, i: int) -> tuple[np.ndarray, torch.Tensor]:
        frame = self.read(i)
        tensor = torch.from_numpy(np.array(frame)).permute(2, 0, 1)  # a writable copy
        if self.pin:
            tensor = tensor.contiguous().pin_memory()
        return frame, tensor

    def get(self, i: int) -> tuple[np.ndarray, torch.Tensor]:
        """(frame ``H,W,3`` uint8, the same as a ``3,H,W`` tensor)."""
        while self.next < min(self.count, i + 1 + self.ahead):
            self.pending[self.next] = self.pool.submit(self._load, self.next)
            self.next += 1
        future = self.pending.pop(i, None)
        for stale in [k for k in self.pending if k < i]:  # frames skipped over (none in order)
            self.pending.pop(stale).cancel()
        return future.result() if future is not None else self._load(i)

    def close(self) -> None:
        for future in self.pending.values():
            future.cancel()
        self.pending.clear()


class BackgroundWriter:
    """Runs write jobs on a pool, at most ``limit`` outstanding; :meth:`flush` waits for all."""

    def __init__(self, pool: ThreadPoolExecutor, limit: int = 2 * AHEAD):
        self.pool, self.limit = pool, limit
        self.jobs: collections.deque[Future] = collections.deque()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self.jobs.append(self.pool.submit(fn, *args))
        while len(self.jobs) > self.limit or (self.jobs and self.jobs[0].done()):
            self.jobs.popleft().result()  # a failed write raises here

    def flush(self) -> None:
        while self.jobs:
            self.jobs.popleft().result()

    def cancel(self) -> None:
        """Drop the jobs not started and wait for the running ones (the run is failing: its own
        error is the one reported, and its temp folder is removed only after the last write)."""
        for job in self.jobs:
            job.cancel()
        wait(self.jobs)
        self.jobs.clear()
