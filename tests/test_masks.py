"""ObjectMasks: per-object (overlapping) masks and their conversions to and from label maps."""

from __future__ import annotations

import numpy as np
import pytest

from vosbench.masks import ObjectMasks

LABELS = np.array([[0, 1, 1], [2, 2, 0], [255, 3, 3]], np.uint8)


def test_from_label_map_gives_one_mask_per_present_id_without_void():
    om = ObjectMasks.from_label_map(LABELS)
    assert om.ids == (1, 2, 3)
    assert om.mask(2).tolist() == [[False, False, False], [True, True, False], [False, False, False]]
    assert not om.overlap().any()
    assert (om.to_label_map() == np.where(LABELS == 255, 0, LABELS)).all()


def test_from_label_map_keeps_asked_ids_even_when_absent():
    om = ObjectMasks.from_label_map(LABELS, ids=[3, 9])
    assert om.ids == (3, 9) and not om.mask(9).any() and om.mask(3).sum() == 2


def test_overlaps_survive_and_the_first_listed_wins_in_a_label_map():
    person = np.ones((2, 3), bool)
    hand = np.array([[False, True, False], [False, False, False]])
    om = ObjectMasks((5, 7), np.stack([person, hand]))
    assert om.overlap().sum() == 1
    assert om.to_label_map().tolist() == [[5, 5, 5], [5, 5, 5]]
    assert ObjectMasks((7, 5), np.stack([hand, person])).to_label_map().tolist() == [[5, 7, 5], [5, 5, 5]]


def test_probabilities_competing_take_the_argmax_independent_keep_each_object():
    # pixel 0: background 0.2, a 0.7, b 0.6; pixel 1: background 0.6, a 0.3, b 0.1
    probs = np.array([[[0.2, 0.6]], [[0.7, 0.3]], [[0.6, 0.1]]])
    competing = ObjectMasks.from_probabilities(probs, (1, 2))
    assert competing.masks.tolist() == [[[True, False]], [[False, False]]]
    independent = ObjectMasks.from_probabilities(probs, (1, 2), independent=True)
    assert independent.masks.tolist() == [[[True, False]], [[True, False]]]
    assert ObjectMasks.from_logits(np.array([[[0.5, -1.0]], [[2.0, 0.0]]]), (4, 6)).masks.tolist() == [[[True, False]], [[True, False]]]


@pytest.mark.parametrize(
    "ids, masks",
    [((1,), np.zeros((2, 2, 2), bool)), ((1, 1), np.zeros((2, 2, 2), bool)), ((1,), np.zeros((1, 2, 2), np.uint8)), ((1,), np.zeros((2, 2), bool))],
)
def test_malformed_stacks_are_refused(ids, masks):
    with pytest.raises(ValueError):
        ObjectMasks(ids, masks)


def test_ids_outside_a_label_map_cannot_be_written_as_one():
    with pytest.raises(ValueError, match="1..254"):
        ObjectMasks((0,), np.ones((1, 2, 2), bool)).to_label_map()
