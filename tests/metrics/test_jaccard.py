import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tests.metrics.reference import reference_j
from vosbench.metrics.jaccard import jaccard, jaccard_from_counts


def test_both_empty_is_one():
    z = np.zeros((4, 5), bool)
    assert jaccard(z, z) == 1.0
    assert jaccard_from_counts(0, 0) == 1.0


def test_one_empty_is_zero():
    g = np.zeros((4, 5), bool)
    g[1, 1] = True
    assert jaccard(g, np.zeros_like(g)) == 0.0
    assert jaccard(np.zeros_like(g), g) == 0.0


def test_hand_computed_overlap():
    g = np.zeros((3, 4), bool)
    p = np.zeros((3, 4), bool)
    g[0, 0:3] = True  # a b c
    p[0, 1:4] = True  # b c d
    assert jaccard(g, p) == pytest.approx(2 / 4, abs=0)
    p[1, :] = True  # 4 more predicted pixels: union 8, intersection 2
    assert jaccard(g, p) == 2 / 8


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shapes differ"):
        jaccard(np.zeros((2, 2)), np.zeros((2, 3)))


masks = arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12)))


@settings(max_examples=100, deadline=None)
@given(masks, st.data())
def test_j_in_unit_interval_symmetric_and_as_reference(g, data):
    p = data.draw(arrays(bool, g.shape))
    j = jaccard(g, p)
    assert 0.0 <= j <= 1.0
    assert j == jaccard(p, g)
    assert j == reference_j(g, p)
    assert (j == 1.0) == bool(np.array_equal(g, p))
