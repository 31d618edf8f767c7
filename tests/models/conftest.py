"""Helpers for model tests: tiny random inputs for any preset."""

from __future__ import annotations

import pytest
import torch

from vosbench.models import MemoryEncoding, VOSModel


def make_inputs(
    model: VOSModel, batch: int = 1, objects: int = 2, size: tuple[int, int] = (64, 64), seed: int = 0
):
    """Random image/depth/masks for a query frame and one memory frame."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    image = torch.rand(batch, 3, h, w, generator=g)
    mem_image = torch.rand(batch, 3, h, w, generator=g)
    masks = (torch.rand(batch, objects, h, w, generator=g) > 0.7).float()
    depth = torch.rand(batch, 1, h, w, generator=g) if model.config.depth else None
    mem_depth = torch.rand(batch, 1, h, w, generator=g) if model.config.depth else None
    prev = (
        (torch.rand(batch, objects, h, w, generator=g) > 0.7).float() if model.config.spatial_prior else None
    )
    return dict(image=image, mem_image=mem_image, masks=masks, depth=depth, mem_depth=mem_depth, prev=prev)


def run_model(model: VOSModel, inputs: dict, valid: torch.Tensor | None = None, frames: int = 1):
    """encode_query + encode_memory (``frames`` copies) + segment."""
    query = model.encode_query(inputs["image"], inputs["depth"])
    mem = model.encode_memory(inputs["mem_image"], inputs["masks"], inputs["mem_depth"])
    key, value = MemoryEncoding.stack([mem] * frames)
    return model.segment(query, key, value, prev_mask=inputs["prev"], valid=valid)


@pytest.fixture(autouse=True)
def _deterministic_single_thread():
    """Seed, and run single-threaded: on the shared 2-core box, intra-op threads of several
    processes spin against each other and make small convs ~30x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)
