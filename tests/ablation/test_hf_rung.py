"""A ladder rung whose model is an hf: member (``checkpoint = "hf:FOLDER"``): its inference and
evaluation run and are cached like a checkpoint rung's, keyed by the model's weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
if not hasattr(transformers, "Sam2VideoModel"):
    pytest.skip("transformers without Sam2VideoModel (needs >= 5)", allow_module_level=True)


def _ladder(path: Path, checkpoint: str) -> Path:
    path.write_text(f'[ladder]\nname = "sam"\n\n[[rungs]]\nname = "SAM"\ncheckpoint = "{checkpoint}"\n'
                    'infer = { precision = "fp32" }\n')
    return path


def test_hf_rung_infers_evaluates_and_reuses_its_cache(tmp_path, tiny_synthetic_root):
    from vosbench.ablation import load_ladder, run_ladder
    from vosbench.ablation.steps import VosbenchSteps
    from vosbench.data.imageio import read_mask
    from vosbench.infer.hf_tiny import write_tiny_tracker
    from vosbench.infer.run import InferOptions, infer_dataset

    write_tiny_tracker(tmp_path / "models" / "sam", image_size=64)
    ladder = load_ladder(_ladder(tmp_path / "l.toml", "hf:models/sam"))  # relative to the ladder's folder
    steps = VosbenchSteps(tiny_synthetic_root, max_steps=1)
    (rung,) = run_ladder(ladder, tmp_path / "out", steps, cache=tmp_path / "cache").rungs
    assert rung.ran == {"train": False, "infer": True, "evaluate": True}
    assert 0.0 <= rung.metrics["J&F-Mean"] <= 1.0
    direct = tmp_path / "direct"
    infer_dataset(f"hf:{tmp_path / 'models' / 'sam'}", tiny_synthetic_root, "val", "480p", direct,
                  InferOptions(device="cpu", precision="fp32"))
    pngs = sorted(p.relative_to(rung.results_dir) for p in rung.results_dir.glob("*/*.png"))
    assert pngs and pngs == sorted(p.relative_to(direct) for p in direct.glob("*/*.png"))
    for p in pngs:
        assert np.array_equal(read_mask(rung.results_dir / p), read_mask(direct / p)), p
    # the same weights: cached; other weights in the same folder: run again
    (again,) = run_ladder(ladder, tmp_path / "out", steps, cache=tmp_path / "cache").rungs
    assert again.ran == {"train": False, "infer": False, "evaluate": False}
    write_tiny_tracker(tmp_path / "models" / "sam", image_size=64, seed=1)
    (other,) = run_ladder(ladder, tmp_path / "out", steps, cache=tmp_path / "cache").rungs
    assert other.ran == {"train": False, "infer": True, "evaluate": True}


@pytest.mark.parametrize("spec, message", [
    ("hf:./models/missing", "model folder not found"),  # "models/missing" alone would read as a hub id
    ("hf:models/not-a-tracker", "not a video tracker"),
])
def test_bad_hf_rung_is_one_error_before_any_step(tmp_path, tiny_synthetic_root, spec, message):
    from vosbench.ablation import load_ladder, run_ladder
    from vosbench.ablation.steps import VosbenchSteps
    from vosbench.errors import VosbenchError

    (tmp_path / "models" / "not-a-tracker").mkdir(parents=True)
    (tmp_path / "models" / "not-a-tracker" / "config.json").write_text('{"model_type": "bert"}')
    ladder = load_ladder(_ladder(tmp_path / "l.toml", spec))
    with pytest.raises(VosbenchError, match=message):
        run_ladder(ladder, tmp_path / "out", VosbenchSteps(tiny_synthetic_root, max_steps=1), cache=tmp_path / "cache")
    assert not (tmp_path / "cache" / "infer").exists()
