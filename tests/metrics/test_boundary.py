import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage.morphology import disk

from tests.metrics.reference import reference_bmap, reference_f
from vosbench.metrics.boundary import (
    boundary_f_measure,
    boundary_tolerance,
    disk_footprint,
    f_measure_from_counts,
    seg2bmap,
    window_bmap,
)


def _mask(shape, *pixels):
    m = np.zeros(shape, bool)
    for y, x in pixels:
        m[y, x] = True
    return m


def test_seg2bmap_interior_pixel():
    # a pixel differs from the E, S or SE neighbour: the pixel itself and its W, N, NW neighbours
    b = seg2bmap(_mask((4, 4), (1, 1)))
    assert np.array_equal(b, _mask((4, 4), (1, 1), (0, 0), (0, 1), (1, 0)))


def test_seg2bmap_last_row_uses_only_east():
    b = seg2bmap(_mask((4, 4), (3, 1)))
    # (3,1) vs east (3,2); (3,0) vs east (3,1); row 2: (2,1) south, (2,0) south-east
    assert np.array_equal(b, _mask((4, 4), (3, 1), (3, 0), (2, 1), (2, 0)))


def test_seg2bmap_corner_is_never_boundary():
    b = seg2bmap(_mask((4, 4), (3, 3)))
    # (3,3) itself is not; (3,2) east, (2,3) last column: south, (2,2) south-east
    assert np.array_equal(b, _mask((4, 4), (3, 2), (2, 3), (2, 2)))


def test_seg2bmap_last_column_uses_only_south():
    b = seg2bmap(_mask((4, 4), (1, 3)))
    # (1,3) last column: its south (2,3) differs; (0,3) south; (1,2) east; (0,2) south-east
    assert np.array_equal(b, _mask((4, 4), (1, 3), (0, 3), (1, 2), (0, 2)))


def test_full_and_empty_masks_have_no_boundary():
    assert not seg2bmap(np.ones((5, 6), bool)).any()
    assert not seg2bmap(np.zeros((5, 6), bool)).any()


def test_seg2bmap_smaller_map_as_official():
    seg = _mask((4, 4), (0, 0))  # boundary: (0,0) only
    b = seg2bmap(seg, width=2, height=2)
    # j = 1 + floor((0 - 1) + 2/4) = 0, i likewise
    assert b.shape == (2, 2) and np.array_equal(b, _mask((2, 2), (0, 0)))
    with pytest.raises(ValueError, match="maps outside"):
        seg2bmap(_mask((4, 4), (3, 3)), width=2, height=2)
    # the official size check only fires for width > (w | height) = 4 | 8 = 12 ...
    big = seg2bmap(seg, width=8, height=8)
    assert np.array_equal(big, _mask((8, 8), (2, 2)))  # j = 1 + floor(-1 + 8/4) = 2, i likewise
    with pytest.raises(ValueError, match="can't convert"):
        seg2bmap(seg, width=5, height=4)  # 5 > (4 | 4): the official code raises a TypeError here


def test_tolerance_is_8_pixels_at_480p():
    assert boundary_tolerance((480, 854)) == 8
    assert boundary_tolerance((1080, 1920)) == 18  # ceil(0.008 * 2202.9) = ceil(17.6)
    assert boundary_tolerance((48, 64)) == 1
    assert boundary_tolerance((48, 64), 3) == 3


@pytest.mark.parametrize("radius", range(21))
def test_disk_equals_skimage(radius):
    assert np.array_equal(disk_footprint(radius), disk(radius).astype(np.uint8))


def test_hand_computed_f_two_single_pixels():
    g = _mask((11, 11), (5, 5))  # boundary (4,4) (4,5) (5,4) (5,5)
    p = _mask((11, 11), (5, 8))  # boundary (4,7) (4,8) (5,7) (5,8)
    # radius 1: nothing within reach -> P = R = 0 -> F = 0
    assert boundary_f_measure(g, p, 1) == 0.0
    # radius 2: two of four on each side are matched -> P = R = 0.5
    assert boundary_f_measure(g, p, 2) == 0.5
    # radius 3: every boundary pixel matched
    assert boundary_f_measure(g, p, 3) == 1.0


def test_f_edge_cases():
    z = np.zeros((9, 9), bool)
    g = _mask((9, 9), (4, 4))
    assert boundary_f_measure(z, z) == 1.0  # both empty
    assert boundary_f_measure(g, z) == 0.0  # prediction empty: P = 1, R = 0
    assert boundary_f_measure(z, g) == 0.0  # GT empty: P = 0, R = 1
    # a mask covering the whole image has no boundary pixel: the official F is 1 against empty
    assert boundary_f_measure(np.ones((9, 9), bool), z) == 1.0
    assert f_measure_from_counts(0, 5, 0, 0) == 0.0
    assert f_measure_from_counts(5, 0, 0, 0) == 0.0
    assert f_measure_from_counts(0, 0, 0, 0) == 1.0
    assert f_measure_from_counts(4, 2, 1, 2) == 2 * 0.25 * 1.0 / 1.25


def _random_mask(rng, shape):
    kind = rng.integers(0, 5)
    if kind == 0:
        return np.zeros(shape, bool)
    if kind == 1:
        return rng.random(shape) < rng.random()
    m = np.zeros(shape, np.uint8)
    for _ in range(rng.integers(1, 4)):  # blobs, often touching the image border
        cy, cx = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        cv2.ellipse(m, (int(cx), int(cy)), (int(rng.integers(1, shape[1] + 1)), int(rng.integers(1, shape[0] + 1))),
                    float(rng.uniform(0, 180)), 0, 360, 1, -1)
    if kind == 3:
        m = np.roll(m, 5, axis=1)
    if kind == 4:
        m[rng.random(shape) < 0.05] ^= 1
    return m.astype(bool)


def test_fast_f_equals_skimage_formulation_on_random_masks():
    rng = np.random.default_rng(1234)
    for trial in range(250):
        shape = (int(rng.integers(1, 70)), int(rng.integers(1, 90)))
        g, p = _random_mask(rng, shape), _random_mask(rng, shape)
        th = (0.008, 0.05, 1, 2, 4, 8)[trial % 6]
        assert boundary_f_measure(g, p, th) == reference_f(g, p, th), (trial, shape, th)


def test_fast_f_equals_skimage_formulation_at_480p():
    rng = np.random.default_rng(7)
    for _ in range(3):
        g, p = _random_mask(rng, (480, 854)), _random_mask(rng, (480, 854))
        assert boundary_f_measure(g, p) == reference_f(g, p)


def test_scattered_false_positives_far_from_the_object():
    # the prediction's box covers the frame (speckles) while the GT is compact: the windowed
    # dilation must still count every boundary pixel exactly
    rng = np.random.default_rng(5)
    for _ in range(4):
        g = np.zeros((120, 200), bool)
        y, x = rng.integers(10, 90), rng.integers(10, 160)
        g[y : y + 25, x : x + 30] = True
        p = np.roll(g, tuple(rng.integers(-4, 5, size=2)), axis=(0, 1)) | (rng.random(g.shape) < 0.003)
        for th in (0.008, 3, 8):
            assert boundary_f_measure(g, p, th) == reference_f(g, p, th)
            assert boundary_f_measure(p, g, th) == reference_f(p, g, th)


@settings(max_examples=100, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 16), st.integers(1, 16))), st.data())
def test_window_and_edges_match_reference(seg, data):
    assert np.array_equal(seg2bmap(seg), reference_bmap(seg))
    h, w = seg.shape
    y0 = data.draw(st.integers(0, h - 1))
    y1 = data.draw(st.integers(y0 + 1, h))
    x0 = data.draw(st.integers(0, w - 1))
    x1 = data.draw(st.integers(x0 + 1, w))
    assert np.array_equal(window_bmap(seg, y0, y1, x0, x1), reference_bmap(seg)[y0:y1, x0:x1])


@settings(max_examples=100, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 14), st.integers(1, 14))), st.data(), st.sampled_from([0.008, 1, 2, 3]))
def test_f_symmetric_in_range_and_exact(g, data, th):
    p = data.draw(arrays(bool, g.shape))
    f = boundary_f_measure(g, p, th)
    assert 0.0 <= f <= 1.0
    assert f == boundary_f_measure(p, g, th)  # precision and recall swap, F does not change
    assert f == reference_f(g, p, th)
    if np.array_equal(g, p):
        assert f == 1.0
