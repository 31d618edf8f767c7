"""vosbench merge: saved probabilities averaged into masks equal `infer --ensemble` of the checkpoints,
and `infer --ensemble` takes folders of saved probabilities as members."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vosbench_cli.main import app
from vosbench.data.imageio import read_mask
from vosbench.errors import DataError
from vosbench.infer import InferOptions, MemberSpec, Recipe, infer_dataset
from vosbench.infer.probs import merge_folders, read_probs

from .test_run import _davis

# one object per sequence: the tiny random models give several objects exactly equal probabilities,
# whose argmax then depends on the last float bit, which uint8 rounding cannot keep
SEQS = {"alpha": (5, 1), "beta": (4, 1)}
WEIGHTS = (1.0, 3.0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_checkpoint):
    """Two tiny random models (different presets and seeds) run alone and as an ensemble, probabilities saved."""
    root = tmp_path_factory.mktemp("merge")
    data = _davis(root / "data", SEQS, size=(40, 56))
    a, b = tiny_checkpoint("stm-tiny", seed=0), tiny_checkpoint("scm-tiny", seed=1)
    opts = InferOptions(save_probs=True)
    infer_dataset(str(a), data, out=root / "a", options=opts)
    infer_dataset(str(b), data, out=root / "b", options=opts)
    recipe = Recipe(members=[MemberSpec(a, WEIGHTS[0]), MemberSpec(b, WEIGHTS[1])])
    infer_dataset(recipe, data, out=root / "ens", options=opts)
    return root, data


def _frames(folder: Path) -> list[Path]:
    return sorted(folder.glob("*/*.png"))


def _margin(q: np.ndarray) -> np.ndarray:
    """Gap between the two largest channels, in 1/255 units."""
    top2 = np.sort(q.astype(np.int64), axis=0)[-2:]
    return top2[1] - top2[0]


def test_merging_two_runs_equals_the_ensemble_of_their_checkpoints(runs):
    root, _ = runs
    summary = merge_folders([(root / "a", WEIGHTS[0]), (root / "b", WEIGHTS[1])], root / "merged", save_probs=True)
    assert summary.sequences == ["alpha", "beta"] and summary.frames == 9
    ens = _frames(root / "ens")
    assert [p.relative_to(root / "ens") for p in ens] == [p.relative_to(root / "merged") for p in _frames(root / "merged")]
    differ = near_ties = total = 0
    for path in ens:
        rel = path.relative_to(root / "ens")
        got, want = read_mask(root / "merged" / rel), read_mask(path)
        q_ens, ids = read_probs(root / "ens" / rel.parent / "probs" / f"{rel.stem}.npz")
        q_merged, ids_merged = read_probs(root / "merged" / rel.parent / "probs" / f"{rel.stem}.npz")
        assert ids == ids_merged
        # the saved probabilities are the ensemble's, up to their uint8 rounding ...
        assert np.abs(q_ens.astype(int) - q_merged.astype(int)).max() <= 1
        # ... so the masks are the ensemble's wherever its decision is not within that rounding
        tie = _margin(q_ens) <= 2
        assert np.array_equal(got[~tie], want[~tie]), rel
        differ += int((got != want).sum())
        near_ties += int(tie.sum())
        total += got.size
    assert differ <= near_ties < 0.01 * total  # this run: 8 of 20160 pixels differ, all within 2/255 ties


def test_infer_ensemble_of_probability_folders_equals_merge(runs, tmp_path):
    root, data = runs
    merge_folders([(root / "a", WEIGHTS[0]), (root / "b", WEIGHTS[1])], tmp_path / "merged")
    recipe = Recipe(members=[MemberSpec(root / "a", WEIGHTS[0]), MemberSpec(root / "b", WEIGHTS[1])])
    summary = infer_dataset(recipe, data, out=tmp_path / "replayed")
    assert "saved probabilities" in summary.members[0]
    for path in _frames(tmp_path / "merged"):
        rel = path.relative_to(tmp_path / "merged")
        assert np.array_equal(read_mask(path), read_mask(tmp_path / "replayed" / rel)), rel


def test_one_folder_reproduces_its_own_masks(runs, tmp_path):
    root, _ = runs
    merge_folders([(root / "a", 1.0)], tmp_path / "m")
    for path in _frames(root / "a"):
        rel = path.relative_to(root / "a")
        # argmax of the rounded probabilities: the run's own mask except at rounding ties
        q, _ = read_probs(root / "a" / rel.parent / "probs" / f"{rel.stem}.npz")
        keep = _margin(q) > 0
        assert np.array_equal(read_mask(tmp_path / "m" / rel)[keep], read_mask(path)[keep])


def test_mismatched_folders_and_cli(runs, tmp_path):
    root, _ = runs
    with pytest.raises(DataError, match="no saved probabilities"):
        merge_folders([(root / "data", 1.0)], tmp_path / "x")
    partial = tmp_path / "partial"
    (partial / "alpha" / "probs").mkdir(parents=True)
    for p in sorted((root / "a" / "alpha" / "probs").glob("*.npz"))[:2]:
        (partial / "alpha" / "probs" / p.name).write_bytes(p.read_bytes())
    with pytest.raises(DataError, match="no probabilities of sequence 'beta'"):
        merge_folders([(root / "a", 1.0), (partial, 1.0)], tmp_path / "x")
    assert not (tmp_path / "x" / "alpha").exists()
    runner = CliRunner()
    ok = runner.invoke(app, ["merge", str(root / "a"), f"{root / 'b'}:3", "--out", str(tmp_path / "cli")])
    assert ok.exit_code == 0, ok.output
    assert "2 sequences written (9 frames)" in ok.output
    for path in _frames(tmp_path / "cli"):  # the same weights as the library call above
        assert path.is_file()
    bad = runner.invoke(app, ["merge", str(partial), "--out", str(tmp_path / "cli2"), str(root / "a")])
    lines = [ln for ln in bad.output.splitlines() if ln.strip()]
    assert bad.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error:")
