import math

import pytest
import torch

from vosbench.models.memory import MemoryReader, memory_read, naive_memory_read


def _random(b=2, k=3, ck=8, cv=5, t=3, h=4, w=5, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    qk = torch.randn(b, ck, h, w, generator=g, dtype=dtype)
    mk = torch.randn(b, k, ck, t, h, w, generator=g, dtype=dtype)
    mv = torch.randn(b, k, cv, t, h, w, generator=g, dtype=dtype)
    return qk, mk, mv


def _formula(qk, mk, mv):
    """STM Eq. 1-3 written out with loops over objects and query positions."""
    b, ck, h, w = qk.shape
    k = mk.shape[1]
    out = torch.zeros(b, k, mv.shape[2], h, w, dtype=qk.dtype)
    for bi in range(b):
        for obj in range(k):
            keys = mk[bi, obj].reshape(ck, -1)  # Ck,N
            vals = mv[bi, obj].reshape(mv.shape[2], -1)  # Cv,N
            for y in range(h):
                for x in range(w):
                    r = torch.exp(qk[bi, :, y, x] @ keys / math.sqrt(ck))
                    out[bi, obj, :, y, x] = vals @ r / r.sum()
    return out


def test_memory_read_matches_formula():
    qk, mk, mv = _random()
    expected = _formula(qk, mk, mv)
    torch.testing.assert_close(memory_read(qk, mk, mv), expected)
    torch.testing.assert_close(naive_memory_read(qk, mk, mv), expected)


@pytest.mark.parametrize("chunk", [1, 7, 16, 59, 1000])
def test_memory_read_invariant_to_chunking(chunk):
    qk, mk, mv = _random(t=3, h=4, w=5)  # 60 memory positions
    torch.testing.assert_close(memory_read(qk, mk, mv, chunk_size=chunk), memory_read(qk, mk, mv))


def test_memory_read_float32_large_logits_stable():
    # Large keys make exp() overflow without max subtraction; both paths must stay finite and agree.
    qk, mk, mv = _random(dtype=torch.float32)
    qk, mk = qk * 20, mk * 20
    fused = memory_read(qk, mk, mv)
    chunked = memory_read(qk, mk, mv, chunk_size=11)
    assert torch.isfinite(fused).all()
    torch.testing.assert_close(chunked, fused, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(
        fused.double(), naive_memory_read(qk.double(), mk.double(), mv.double()), atol=1e-4, rtol=1e-4
    )


def test_memory_read_query_positions_differ_from_memory_size():
    # Memory frames may be at another resolution than the query.
    g = torch.Generator().manual_seed(1)
    qk = torch.randn(1, 4, 3, 3, generator=g, dtype=torch.float64)
    mk = torch.randn(1, 2, 4, 2, 5, 2, generator=g, dtype=torch.float64)
    mv = torch.randn(1, 2, 6, 2, 5, 2, generator=g, dtype=torch.float64)
    torch.testing.assert_close(memory_read(qk, mk, mv, chunk_size=3), _formula(qk, mk, mv))


def test_reader_concatenates_query_value():
    qk, mk, mv = _random(dtype=torch.float32)
    qv = torch.randn(2, 5, 4, 5)
    out = MemoryReader()(qk, qv, mk, mv)
    assert out.shape == (2, 3, 10, 4, 5)
    for obj in range(3):
        torch.testing.assert_close(out[:, obj, :5], qv)
    torch.testing.assert_close(out[:, :, 5:], memory_read(qk, mk, mv))


def test_memory_read_bfloat16_autocast_cpu():
    qk, mk, mv = _random(dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused = memory_read(qk, mk, mv)
        chunked = memory_read(qk, mk, mv, chunk_size=8)
    assert fused.dtype == torch.bfloat16 and chunked.dtype == torch.bfloat16
    ref = memory_read(qk, mk, mv)
    torch.testing.assert_close(fused.float(), ref, atol=0.1, rtol=0.05)
    torch.testing.assert_close(chunked.float(), ref, atol=0.1, rtol=0.05)


@pytest.mark.parametrize("cv", [3, 8, 13, 24])
def test_grouped_value_path_for_any_value_width(cv):
    # Value widths below, equal to, and not a multiple of the key width (8).
    qk, mk, mv = _random(ck=8, cv=cv, t=2, h=3, w=3)
    torch.testing.assert_close(memory_read(qk, mk, mv), naive_memory_read(qk, mk, mv))


def test_memory_read_gradients_match_naive():
    qk, mk, mv = _random(ck=4, cv=10, t=2, h=2, w=3)
    grads = []
    for fn in (memory_read, naive_memory_read):
        inputs = [t.clone().requires_grad_() for t in (qk, mk, mv)]
        (fn(*inputs) ** 2).sum().backward()
        grads.append([t.grad for t in inputs])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)
