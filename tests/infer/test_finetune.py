"""Online finetuning trains a copy; the source model's weights are untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vosbench.errors import ConfigError
from vosbench.infer.finetune import FinetuneConfig, finetune_model
from vosbench.models import build_model


def _first_frame():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (32, 48, 3)).astype(np.uint8)
    mask = np.zeros((32, 48), np.uint8)
    mask[4:16, 4:20] = 1
    mask[18:30, 24:44] = 4
    mask[0, :] = 255  # void is ignored
    return image, mask


@pytest.mark.parametrize("preset", ["scm-tiny", pytest.param("dstm-tiny", marks=pytest.mark.slow)])
def test_finetune_leaves_source_untouched(preset):
    torch.manual_seed(0)
    model = build_model(preset).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    image, mask = _first_frame()
    depth = np.linspace(0, 1, 32 * 48, dtype=np.float32).reshape(32, 48) if model.config.depth else None
    tuned = finetune_model(model, image, mask, [1, 4], FinetuneConfig(steps=1, lr=1e-3), depth=depth)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not model.training and not tuned.training
    changed = [k for k, v in tuned.state_dict().items() if not torch.equal(v, before[k])]
    assert changed  # the copy did learn
    assert all(p.grad is None for p in tuned.parameters())


def test_zero_steps_is_an_exact_copy_and_bad_config_fails():
    model = build_model("stm-tiny")
    image, mask = _first_frame()
    copy = finetune_model(model, image, mask, [1, 4], FinetuneConfig(steps=0))
    assert copy is not model
    assert all(torch.equal(a, b) for a, b in zip(copy.state_dict().values(), model.state_dict().values()))
    with pytest.raises(ConfigError):
        finetune_model(model, image, mask, [1], FinetuneConfig(steps=1, lr=0))


def test_finetune_with_train_mode_bn_keeps_running_statistics():
    """A freeze_bn=False checkpoint: batch-1 finetuning must not overwrite BN running statistics."""
    torch.manual_seed(0)
    model = build_model("stm-tiny", freeze_bn=False).eval()
    bns = [n for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running_" in k}
    image, mask = _first_frame()
    tuned = finetune_model(model, image, mask, [1, 4], FinetuneConfig(steps=2, lr=1e-3))
    tuned_state = tuned.state_dict()
    assert all(torch.equal(tuned_state[k], v) for k, v in stats.items())
    assert any(not torch.equal(tuned_state[k], v) for k, v in model.state_dict().items() if "running_" not in k)


def test_finetune_aug_scales_the_pseudo_frame_augmentation():
    from vosbench.data.augment import AugFrame, pseudo_clip
    from vosbench.infer.run import InferOptions

    default = InferOptions(finetune_steps=3).finetune()
    assert default == FinetuneConfig(steps=3)  # strength 1 is the default config, bit for bit
    half = InferOptions(finetune_steps=3, finetune_aug=0.5).finetune()
    assert half.deform.rotate == default.deform.rotate / 2 and half.deform.shear == default.deform.shear / 2
    assert half.deform.scale == pytest.approx((0.95, 1.05)) and half.color == pytest.approx(default.color / 2)
    none = InferOptions(finetune_steps=3, finetune_aug=0.0).finetune()
    image, mask = _first_frame()
    clip = pseudo_clip(np.random.default_rng(0), AugFrame(image, mask, None), 3, none.deform)
    assert all(np.array_equal(f.image, image) and np.array_equal(f.mask, mask) for f in clip)
    moved = pseudo_clip(np.random.default_rng(0), AugFrame(image, mask, None), 3, default.deform)
    assert not all(np.array_equal(f.mask, mask) for f in moved[1:])
    with pytest.raises(ConfigError, match="augmentation"):
        InferOptions(finetune_aug=-1.0).finetune()
