"""CUDA RNG states in a training checkpoint: resuming on fewer visible GPUs restores what fits.

No GPU is needed: ``torch.cuda`` is mocked so that the per-device setter fails, like torch's own
``default_generators[idx]``, for an index beyond the visible count.
"""

from __future__ import annotations

import logging

import pytest
import torch

from vosbench.train import checkpointing
from vosbench.train.checkpointing import capture_rng, restore_rng


class FakeCuda:
    def __init__(self, visible: int):
        self.visible = visible
        self.set_calls: list[tuple[int, bytes]] = []

    def set_rng_state(self, state: torch.Tensor, device: int | str = "cuda") -> None:
        idx = device if isinstance(device, int) else torch.device(device).index or 0
        if idx >= self.visible:
            raise IndexError("tuple index out of range")  # what torch.cuda.default_generators[idx] raises
        self.set_calls.append((idx, bytes(state.tolist())))


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch):
    def make(visible: int) -> FakeCuda:
        fake = FakeCuda(visible)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: visible)
        monkeypatch.setattr(torch.cuda, "set_rng_state", fake.set_rng_state)
        monkeypatch.setattr(torch.cuda.random, "set_rng_state", fake.set_rng_state)  # what set_rng_state_all calls
        return fake

    return make


def _state_with_gpus(n: int) -> dict:
    state = capture_rng()
    state["cuda"] = [torch.full((8,), i + 1, dtype=torch.uint8) for i in range(n)]
    return state


def test_resume_on_fewer_gpus_restores_what_fits_and_warns_once(fake_cuda, caplog: pytest.LogCaptureFixture) -> None:
    fake = fake_cuda(visible=2)
    state = _state_with_gpus(4)  # saved on a 4-GPU machine
    with caplog.at_level(logging.WARNING, logger=checkpointing.__name__):
        restore_rng(state)
    assert fake.set_calls == [(0, bytes([1] * 8)), (1, bytes([2] * 8))]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "4 GPU(s), 2 visible" in warnings[0].getMessage()


def test_same_gpu_count_restores_every_state_silently(fake_cuda, caplog: pytest.LogCaptureFixture) -> None:
    fake = fake_cuda(visible=2)
    with caplog.at_level(logging.WARNING):
        restore_rng(_state_with_gpus(2))
    assert [i for i, _ in fake.set_calls] == [0, 1]
    assert not caplog.records


def test_cpu_rng_still_restored_alongside(fake_cuda) -> None:
    fake_cuda(visible=1)
    state = _state_with_gpus(3)
    expected = torch.rand(4)
    torch.set_rng_state(state["torch"])
    torch.rand(7)  # move the CPU generator on
    restore_rng(state)
    assert torch.equal(torch.rand(4), expected)
