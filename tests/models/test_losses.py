import itertools

import pytest
import torch
import torch.nn.functional as F

from vosbench.losses import (
    jaccard_increments,
    lovasz_extension,
    lovasz_softmax,
    segmentation_loss,
    soft_iou_loss,
)
from vosbench.models import LossConfig, SegmentationOutput


def jaccard_loss_of_set(mispredicted: set[int], gt: list[int]) -> float:
    """Δ_J(M) = |M| / |{y=c} ∪ M| (0 for the empty set)."""
    if not mispredicted:
        return 0.0
    positives = {i for i, g in enumerate(gt) if g}
    return len(mispredicted) / len(positives | mispredicted)


def lovasz_by_permutations(m: list[float], gt: list[int]) -> float:
    """Δ_J is submodular, so its Lovász extension is the max over all orderings of the greedy sum."""
    best = -1.0
    for perm in itertools.permutations(range(len(m))):
        total, prev, chosen = 0.0, 0.0, set()
        for i in perm:
            chosen.add(i)
            cur = jaccard_loss_of_set(chosen, gt)
            total += m[i] * (cur - prev)
            prev = cur
        best = max(best, total)
    return best


def lovasz_by_threshold_integral(m: list[float], gt: list[int]) -> float:
    """For m in [0,1]^p: ∫_0^1 Δ_J({i : m_i >= t}) dt, exactly, between sorted thresholds."""
    levels = sorted(set([0.0, *m, 1.0]))
    total = 0.0
    for lo, hi in zip(levels[:-1], levels[1:], strict=True):
        total += (hi - lo) * jaccard_loss_of_set({i for i, v in enumerate(m) if v >= hi}, gt)
    return total


@pytest.mark.parametrize("seed", range(8))
def test_lovasz_matches_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    p = int(torch.randint(2, 7, (1,), generator=g))
    m = torch.rand(p, generator=g, dtype=torch.float64)
    gt = (torch.rand(p, generator=g) > 0.5).long()
    if gt.sum() == 0:
        gt[0] = 1
    ours = float(lovasz_extension(m, gt))
    assert ours == pytest.approx(lovasz_by_permutations(m.tolist(), gt.tolist()), abs=1e-9)
    assert ours == pytest.approx(lovasz_by_threshold_integral(m.tolist(), gt.tolist()), abs=1e-9)


def test_lovasz_equals_jaccard_loss_on_binary_errors():
    # On 0/1 errors the extension equals the set function itself.
    gt = torch.tensor([1, 1, 0, 0, 1])
    m = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0])
    assert float(lovasz_extension(m, gt)) == pytest.approx(jaccard_loss_of_set({0, 2}, gt.tolist()))


def test_jaccard_increments_sum_to_full_loss():
    gt = torch.tensor([1, 0, 1, 1, 0, 0])
    assert float(jaccard_increments(gt).sum()) == pytest.approx(
        jaccard_loss_of_set(set(range(6)), gt.tolist())
    )


def test_lovasz_softmax_perfect_and_wrong():
    target = torch.tensor([[[0, 1], [2, 1]]])
    perfect = F.one_hot(target, 3).permute(0, 3, 1, 2).float()
    assert float(lovasz_softmax(perfect, target)) == pytest.approx(0.0)
    wrong = perfect[:, [1, 2, 0]]
    assert float(lovasz_softmax(wrong, target)) == pytest.approx(1.0)


def test_lovasz_softmax_ignores_void_and_absent_classes():
    target = torch.tensor([[[0, 0], [1, 255]]])
    probs = torch.tensor([[[[1.0, 1.0], [0.0, 0.3]], [[0.0, 0.0], [1.0, 0.7]], [[0.0, 0.0], [0.0, 0.0]]]])
    assert float(lovasz_softmax(probs, target)) == pytest.approx(0.0)


def test_soft_iou_loss():
    target = torch.tensor([[[0, 1], [1, 2]]])
    probs = F.one_hot(target, 3).permute(0, 3, 1, 2).float()
    assert float(soft_iou_loss(probs, target)) == pytest.approx(0.0)
    half = probs.clone()
    half[:, 1] *= 0.5
    # object 1: I = 1, U = 2 -> 1 - (1+1)/(2+1) = 1/3; object 2 exact -> mean 1/6
    assert float(soft_iou_loss(half, target)) == pytest.approx(1 / 6)
    valid = torch.tensor([[False, True]])
    assert float(soft_iou_loss(half, target, valid)) == pytest.approx(0.0)


def _output(logits, refine=False):
    aux = {"coarse_logits": logits * 0.5, "refine_logits": logits} if refine else {}
    return SegmentationOutput(logits=logits, probs=torch.softmax(logits, 1), aux=aux)


def test_segmentation_loss_terms_follow_config():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 8, 8, generator=g, requires_grad=True)
    target = torch.randint(0, 3, (2, 8, 8), generator=g)
    total, parts = segmentation_loss(_output(logits), target, LossConfig())
    assert set(parts) == {"ce", "total"}
    assert float(total.detach()) == pytest.approx(float(F.cross_entropy(logits.detach(), target)))
    total, parts = segmentation_loss(_output(logits, refine=True), target, LossConfig(iou=1.0))
    assert set(parts) == {"ce", "coarse_ce", "iou", "total"}
    assert parts["total"] == pytest.approx(parts["ce"] + parts["coarse_ce"] + parts["iou"], rel=1e-5)
    total, parts = segmentation_loss(_output(logits), target, LossConfig(lovasz=2.0))
    assert set(parts) == {"ce", "lovasz", "total"}
    assert parts["lovasz"] == pytest.approx(
        2 * float(lovasz_softmax(torch.softmax(logits.detach(), 1), target)), rel=1e-5
    )
    total.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_segmentation_loss_rejects_ids_beyond_objects():
    logits = torch.zeros(1, 3, 4, 4)
    with pytest.raises(ValueError, match="0..2"):
        segmentation_loss(_output(logits), torch.full((1, 4, 4), 3), LossConfig())
    with pytest.raises(ValueError, match="got -1"):
        segmentation_loss(_output(logits), torch.full((1, 4, 4), -1), LossConfig())


@pytest.mark.parametrize("seed", range(4))
def test_lovasz_gradient_is_the_jaccard_increment_of_each_error_rank(seed):
    # Berman et al. Eq. 9: d/dm_i of the extension is g_r = Δ(π_1..π_r) − Δ(π_1..π_{r−1}), r = rank(i).
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(6, generator=g, dtype=torch.float64).requires_grad_()
    gt = (torch.rand(6, generator=g) > 0.5).long()
    gt[0] = 1
    lovasz_extension(m, gt).backward()
    order = torch.argsort(m.detach(), descending=True).tolist()
    expected = torch.zeros(6, dtype=torch.float64)
    for rank, i in enumerate(order):
        before = jaccard_loss_of_set(set(order[:rank]), gt.tolist())
        expected[i] = jaccard_loss_of_set(set(order[: rank + 1]), gt.tolist()) - before
    torch.testing.assert_close(m.grad, expected)
    assert (expected >= 0).all()  # Δ_J is increasing: a larger error never lowers the loss
