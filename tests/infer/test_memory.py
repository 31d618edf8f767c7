"""MemoryBank: bounded slots, eviction keeps the first and protected frames, reads are views."""

from __future__ import annotations

import pytest
import torch

from vosbench.infer.memory import MemoryBank


def _kv(k: int, fill: float) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.full((1, k, 2, 3, 4), fill), torch.full((1, k, 5, 3, 4), fill)


def test_schedule_and_cap_keep_first_frame():
    bank = MemoryBank(capacity=4)
    for t in range(40):
        bank.add(*_kv(2, t), t, permanent=t % 5 == 0, protected=t == 0)
        assert bank.num_frames <= 4
        assert 0 in bank.frames
        assert t in bank.frames  # the newest frame is always read (temporary memory)
    # permanent slots: first frame + the two newest multiples of 5; temp = 39
    assert set(bank.frames) == {0, 30, 35, 39}
    assert bank.evictions > 0
    k, v = bank.read()
    assert k.shape == (1, 2, 2, 4, 3, 4) and v.shape == (1, 2, 5, 4, 3, 4)
    # the stored values are the frames' own
    assert sorted(k[0, 0, 0, :, 0, 0].tolist()) == [0.0, 30.0, 35.0, 39.0]
    assert k.data_ptr() == bank.keys.data_ptr()  # a view, no copy


def test_protected_frames_survive_eviction():
    bank = MemoryBank(capacity=4)
    bank.add(*_kv(1, 0), 0, permanent=True, protected=True)
    bank.add(*_kv(1, 3), 3, permanent=True, protected=True)
    for t in (5, 10, 15, 20):
        bank.add(*_kv(1, t), t, permanent=True)
    assert set(bank.frames) == {0, 3, 20}


def test_capacity_two_reads_first_and_previous():
    bank = MemoryBank(capacity=2)
    for t in range(12):
        bank.add(*_kv(1, t), t, permanent=t % 5 == 0, protected=t == 0)
        assert bank.frames[0] == 0 and bank.frames[-1] == t and bank.num_frames <= 2


def test_objects_grow_and_read_since():
    bank = MemoryBank(capacity=5)
    bank.add(*_kv(1, 1.0), 0, permanent=True, protected=True)
    bank.add(*_kv(2, 2.0), 2, permanent=True, protected=True)
    bank.add(*_kv(2, 3.0), 3, permanent=False)
    assert bank.num_objects == 2
    # the new object's slot of frame 0 is empty
    assert bank.keys[0, 1, :, 0].abs().sum() == 0
    k, _ = bank.read(slice(1, 2), since=2)
    assert k.shape[3] == 2 and k[0, 0, 0, :, 0, 0].tolist() == [2.0, 3.0]
    with pytest.raises(ValueError):
        bank.add(*_kv(1, 4.0), 4, permanent=False)


def test_capacity_must_hold_first_and_previous():
    with pytest.raises(ValueError):
        MemoryBank(capacity=1)


def test_uncapped_bank_grows_instead_of_preallocating():
    bank = MemoryBank(capacity=10**6)
    bank.add(*_kv(1, 0), 0, permanent=True, protected=True)
    assert bank.keys.shape[3] == 8
    for t in range(1, 30):
        bank.add(*_kv(1, t), t, permanent=True)
    assert bank.num_frames == 30 and bank.keys.shape[3] == 32
    assert sorted(bank.read()[0][0, 0, 0, :, 0, 0].tolist()) == [float(t) for t in range(30)]
