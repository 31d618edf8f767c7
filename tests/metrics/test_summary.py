import warnings

import numpy as np
import pytest

from vosbench.metrics.summary import Statistics, decay_bin_edges, statistics, summarize


def official_style(values: np.ndarray) -> tuple[float, float, float]:
    """The official ``db_statistics`` written out, uint8 bin edges included."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        m = np.nanmean(values)
        o = np.nanmean(values > 0.5)
        ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.uint8)
        bins = [values[ids[i] : ids[i + 1] + 1] for i in range(4)]
        d = np.nanmean(bins[0]) - np.nanmean(bins[3])
    return m, o, d


def test_hand_computed_four_frames():
    s = statistics([1.0, 0.0, 1.0, 0.5])
    assert s.mean == 0.625
    assert s.recall == 0.5  # 0.5 itself is not > 0.5
    # edges round([1, 1.75, 2.5, 3.25, 4] + 1e-10) - 1 = [0, 1, 2, 2, 3]
    assert decay_bin_edges(4).tolist() == [0, 1, 2, 2, 3]
    assert s.decay == (1.0 + 0.0) / 2 - (1.0 + 0.5) / 2


def test_bin_edges_share_frames():
    # linspace(1, 10, 5) = [1, 3.25, 5.5, 7.75, 10]; 5.5 rounds up thanks to the 1e-10
    assert decay_bin_edges(10).tolist() == [0, 2, 5, 7, 9]
    v = np.arange(10, dtype=float)
    assert statistics(v).decay == np.mean(v[0:3]) - np.mean(v[7:10])


def test_single_frame_has_zero_decay():
    assert decay_bin_edges(1).tolist() == [0, 0, 0, 0, 0]
    assert statistics([0.7]) == Statistics(0.7, 1.0, 0.0)


def test_two_frames_decay_is_first_minus_last():
    assert statistics([1.0, 0.0]).decay == 1.0


def test_official_decay_breaks_at_256_frames():
    # edges [0, 64, 128, 191, 255]: fine as uint8, but the last bin's end 255 + 1 wraps to 0
    v = np.random.default_rng(0).random(256)
    assert decay_bin_edges(256).tolist() == [0, 64, 128, 191, 255]
    assert np.isnan(official_style(v)[2])
    assert statistics(v).decay == np.mean(v[0:65]) - np.mean(v[191:256])


def test_decay_correct_beyond_255_frames_unlike_official():
    n = 300
    v = np.arange(n, dtype=float) / (n - 1)
    edges = decay_bin_edges(n)
    # linspace(1, 300, 5) = [1, 75.75, 150.5, 225.25, 300] -> [1, 76, 151, 225, 300] - 1
    assert edges.tolist() == [0, 75, 150, 224, 299]
    expected = np.mean(v[0:76]) - np.mean(v[224:300])
    assert statistics(v).decay == expected
    assert expected == pytest.approx((37.5 - 261.5) / 299, abs=1e-12)
    _, _, official_decay = official_style(v)
    assert np.isnan(official_decay)  # the uint8 edges wrap: the last bin is empty


@pytest.mark.parametrize("n", [1, 2, 3, 5, 17, 64, 100, 254, 255])
def test_identical_to_official_up_to_256_frames(n):
    v = np.random.default_rng(n).random(n)
    s = statistics(v)
    m, o, d = official_style(v)
    assert (s.mean, s.recall, s.decay) == (m, o, d)  # bit for bit


def test_summary_weighs_every_object_equally():
    j = [Statistics(1.0, 1.0, 0.0), Statistics(0.5, 0.0, 0.25), Statistics(0.0, 0.0, -0.5)]
    f = [Statistics(0.5, 1.0, 0.0), Statistics(0.5, 1.0, 0.0), Statistics(0.2, 0.0, 0.3)]
    g = summarize(j, f)
    assert g.j_mean == 0.5 and g.j_recall == 1 / 3 and g.j_decay == np.mean([0.0, 0.25, -0.5])
    assert g.f_mean == np.mean([0.5, 0.5, 0.2]) and g.f_decay == np.mean([0.0, 0.0, 0.3])
    assert g.jf_mean == (g.j_mean + g.f_mean) / 2
    assert list(g.as_dict()) == ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]


def test_empty_input_is_refused():
    with pytest.raises(ValueError):
        statistics([])
    with pytest.raises(ValueError):
        summarize([], [])
