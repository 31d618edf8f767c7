"""An hf: member in the rest of the pipeline: ensembled with an STM-family checkpoint under flip TTA,
--save-probs, merge, package-submission, recipes and skip-on-rerun, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vosbench.data.imageio import read_mask
from vosbench.infer.probs import read_probs
from vosbench.infer.recipe import load_recipe, parse_ensemble
from vosbench_cli.main import app

transformers = pytest.importorskip("transformers")
if not hasattr(transformers, "Sam2VideoModel"):
    pytest.skip("transformers without Sam2VideoModel (needs >= 5)", allow_module_level=True)


def _cli(*args: object):
    res = CliRunner().invoke(app, [str(a) for a in args])
    return res


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint):
    from vosbench.infer.hf_tiny import write_tiny_tracker

    root = tmp_path_factory.mktemp("hfpipe")
    sam = write_tiny_tracker(root / "sam", image_size=64)
    return root, sam, tiny_checkpoint("scm-tiny", seed=1)


def test_ensemble_flip_save_probs_merge_and_submission(setup, make_davis_root, tmp_path: Path) -> None:
    root, sam, stm = setup
    data = make_davis_root({"alpha": (4, 2), "beta": (3, 1)}, size=(40, 56))
    base = ["infer", "--data", data, "--device", "cpu", "--precision", "fp32", "--flip", "--save-probs"]
    res = _cli(*base, "--ensemble", f"{stm},hf:{sam}:3", "--out", tmp_path / "ens")
    assert res.exit_code == 0, res.output
    assert "hf:" in res.output and "SAM 2" in res.output
    for name in ("a", "b"):
        member = stm if name == "a" else f"hf:{sam}"
        res = _cli(*base, "--checkpoint", member, "--out", tmp_path / name)
        assert res.exit_code == 0, res.output
    q, ids = read_probs(tmp_path / "b" / "alpha" / "probs" / "00002.npz")
    assert q.shape == (3, 40, 56) and ids == (1, 2)
    # the hf: member's probabilities: K+1 channels summing to 1 (up to the uint8 rounding)
    assert np.abs(q.astype(int).sum(0) - 255).max() <= 2
    res = _cli("merge", tmp_path / "a", f"{tmp_path / 'b'}:3", "--out", tmp_path / "merged", "--save-probs")
    assert res.exit_code == 0, res.output
    compared = 0
    for path in sorted((tmp_path / "ens").glob("*/*.png")):
        rel = path.relative_to(tmp_path / "ens")
        q_ens, _ = read_probs(tmp_path / "ens" / rel.parent / "probs" / f"{rel.stem}.npz")
        q_merged, _ = read_probs(tmp_path / "merged" / rel.parent / "probs" / f"{rel.stem}.npz")
        assert np.abs(q_ens.astype(int) - q_merged.astype(int)).max() <= 1  # merge = ensemble up to rounding
        top2 = np.sort(q_ens.astype(int), axis=0)[-2:]
        clear = top2[1] - top2[0] > 2
        assert np.array_equal(read_mask(path)[clear], read_mask(tmp_path / "merged" / rel)[clear])
        compared += int(clear.sum())
    assert compared > 0.9 * 7 * 40 * 56
    # the ensemble is neither member alone
    ens, a, b = (read_mask(tmp_path / d / "alpha" / "00003.png") for d in ("ens", "a", "b"))
    assert not np.array_equal(ens, a) or not np.array_equal(ens, b)
    res = _cli("package-submission", "--results", tmp_path / "ens", "--split", "val", "--data", data,
               "-o", tmp_path / "sub.zip")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "sub.zip").is_file()
    record = json.loads((tmp_path / "ens" / "alpha" / "provenance.json").read_text())
    assert [c.get("model") for c in record["checkpoints"]] == [None, f"hf:{sam}"]
    # a finished run made the same way is skipped; the hf: model's weights are part of "the same way"
    res = _cli(*base, "--ensemble", f"{stm},hf:{sam}:3", "--out", tmp_path / "ens")
    assert res.exit_code == 0 and "skipped" in res.output


def test_flip_and_scales_apply_to_the_sam_member(setup, make_davis_root, tmp_path: Path) -> None:
    _, sam, _ = setup
    data = make_davis_root({"alpha": (3, 1)}, size=(40, 56))
    outs = {}
    for name, flags in (("plain", []), ("flip", ["--flip"]), ("scales", ["--scales", "0.75,1.0"])):
        res = _cli("infer", "--checkpoint", f"hf:{sam}", "--data", data, "--device", "cpu", "--precision", "fp32",
                   "--save-probs", "--out", tmp_path / name, *flags)
        assert res.exit_code == 0, res.output
        outs[name], _ = read_probs(tmp_path / name / "alpha" / "probs" / "00002.npz")
    assert not np.array_equal(outs["plain"], outs["flip"])
    assert not np.array_equal(outs["plain"], outs["scales"])


def test_recipes_and_ensemble_lists_take_hf_members(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "sam"
    folder.mkdir(parents=True)
    recipe = tmp_path / "r.toml"
    recipe.write_text('[[members]]\ncheckpoint = "hf:models/sam"\nweight = 2\n'
                      '[[members]]\ncheckpoint = "hf:facebook/sam2.1-hiera-tiny"\n'
                      '[[members]]\ncheckpoint = "scm.pt"\n')
    members = load_recipe(recipe).members
    assert [m.spec for m in members] == [f"hf:{folder.resolve()}", "hf:facebook/sam2.1-hiera-tiny",
                                         str(tmp_path / "scm.pt")]
    assert [m.hf_reference for m in members][:2] == [str(folder.resolve()), "facebook/sam2.1-hiera-tiny"]
    assert members[0].weight == 2
    parsed = parse_ensemble("a.pt,hf:facebook/sam2.1-hiera-tiny:0.5,hf:org/name").members
    assert [(m.spec, m.weight) for m in parsed] == [("a.pt", 1.0), ("hf:facebook/sam2.1-hiera-tiny", 0.5),
                                                    ("hf:org/name", 1.0)]
