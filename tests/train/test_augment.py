"""Paired augmentations keep image, mask and depth aligned and are deterministic per seed."""

from __future__ import annotations

import numpy as np
import pytest

from vosbench.data import augment as A


def _frame(h: int = 40, w: int = 56) -> A.AugFrame:
    """Image whose red channel is 200 exactly where the mask is 1, depth = 0.25 there, 0.75 elsewhere."""
    mask = np.zeros((h, w), np.uint8)
    mask[10:25, 15:40] = 1
    mask[28:36, 5:12] = 2
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = np.where(mask == 1, 200, 0)
    image[..., 1] = np.where(mask == 2, 200, 0)
    image[..., 2] = 60  # background colour, so padding (0) is distinguishable
    depth = np.where(mask > 0, 0.25, 0.75).astype(np.float32)
    return A.AugFrame(image, mask, depth)


def _agreement(f: A.AugFrame) -> float:
    """Share of object-1 mask pixels whose image pixel is red (away from interpolation borders)."""
    m1 = f.mask == 1
    if not m1.any():
        return 1.0
    return float((f.image[..., 0][m1] > 100).mean())


@pytest.mark.parametrize("seed", range(4))
def test_deform_keeps_image_and_mask_aligned(seed: int) -> None:
    rng = np.random.default_rng(seed)
    params = A.DeformParams(rotate=20, scale=(0.8, 1.2), shear=10, translate=0.1, elastic_alpha=4, elastic_sigma=5)
    out = A.random_deform(rng, _frame(), params)
    assert out.image.shape[:2] == out.mask.shape == out.depth.shape
    assert _agreement(out) > 0.9
    # red pixels away from edges are object 1 in the mask
    red = out.image[..., 0] > 150
    assert (out.mask[red] == 1).mean() > 0.9
    # mask ids stay ids (nearest interpolation: no new values)
    assert set(np.unique(out.mask)) <= {0, 1, 2}
    # depth follows the mask: objects near (0.25) where the mask says object, inside the frame
    inside = out.image[..., 2] > 30
    assert np.abs(out.depth[(out.mask > 0) & inside & red] - 0.25).max() < 0.3


def test_deform_is_deterministic_for_a_seed() -> None:
    params = A.DeformParams(elastic_alpha=3)
    a = A.random_deform(np.random.default_rng(7), _frame(), params)
    b = A.random_deform(np.random.default_rng(7), _frame(), params)
    c = A.random_deform(np.random.default_rng(8), _frame(), params)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert not np.array_equal(a.image, c.image)


def test_flip_resize_crop_keep_alignment() -> None:
    f = _frame()
    fl = A.hflip(f)
    assert np.array_equal(fl.mask[:, ::-1], f.mask) and np.array_equal(fl.image[:, ::-1], f.image)
    r = A.resize_short_side(f, 80)
    assert r.size == (80, 112) and _agreement(r) > 0.95
    c = A.crop(f, (5, 10), (20, 30))
    assert np.array_equal(c.mask, f.mask[5:25, 10:40])
    # a crop leaving the frame pads with background
    p = A.crop(f, (-5, -5), (20, 20))
    assert p.size == (20, 20) and (p.mask[:5] == 0).all() and np.array_equal(p.mask[5:, 5:], f.mask[:15, :15])


def test_crop_origin_covers_union_bbox() -> None:
    rng = np.random.default_rng(0)
    masks = [np.zeros((100, 200), np.uint8) for _ in range(3)]
    masks[0][40:50, 30:40] = 1
    masks[2][60:70, 100:120] = 2
    box = A.union_bbox(masks)
    assert box == (40, 30, 70, 120)
    for _ in range(50):
        y, x = A.random_crop_origin(rng, (100, 200), (48, 96), box)
        assert 0 <= y <= 52 and 0 <= x <= 104
        assert y <= 40 and y + 48 >= 70 and x <= 30 and x + 96 >= 120
    # void (255) is not an object
    void = np.full((10, 10), 255, np.uint8)
    assert A.union_bbox([void]) is None


def test_crop_larger_than_frame_centres_it_like_inference_padding() -> None:
    rng = np.random.default_rng(0)
    # 10x20 frame in a 16x24 crop: 6 rows -> 3 above, 3 below; 4 columns -> 2 left, 2 right
    assert A.random_crop_origin(rng, (10, 20), (16, 24)) == (-3, -2)
    # 11 rows in 16: the odd row of padding goes below (floor half above), as vosbench.padding does
    assert A.random_crop_origin(rng, (11, 20), (16, 24))[0] == -2
    f = _frame()
    h, w = f.size
    out = A.crop(f, (-3, -2), (h + 6, w + 4))
    assert np.array_equal(out.image[3 : 3 + h, 2 : 2 + w], f.image)
    assert not out.image[:3].any() and not out.mask[:, :2].any() and not out.image[-3:].any()


def test_color_jitter_changes_only_the_image() -> None:
    f = _frame()
    out = A.color_jitter(f.image, np.random.default_rng(0), brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05)
    assert out.shape == f.image.shape and out.dtype == np.uint8
    assert not np.array_equal(out, f.image)
    g = A.with_image(f, out)
    assert g.mask is f.mask


def test_pseudo_clip_keeps_reference_and_deforms_others() -> None:
    f = _frame()
    clip = A.pseudo_clip(np.random.default_rng(0), f, 3, A.DeformParams(rotate=10))
    assert len(clip) == 3 and clip[0] is f
    assert not np.array_equal(clip[1].mask, f.mask)


def test_frame_size_mismatch_is_refused() -> None:
    with pytest.raises(ValueError):
        A.AugFrame(np.zeros((4, 5, 3), np.uint8), np.zeros((4, 4), np.uint8))
