import argparse

import pytest
import torch

from vosbench.errors import CheckpointError
from vosbench.models import build_model, get_preset, load_checkpoint, save_checkpoint

from .conftest import make_inputs, run_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(1)
    model = build_model("scm-tiny", decoder={"channels": 32}).eval()
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, model, step=7, metrics={"jf": 0.5, "names": ["a", "b"]}, ema=torch.ones(2))
    return model, path


def test_round_trip_rebuilds_same_model(saved):
    model, path = saved
    loaded, extra = load_checkpoint(path)
    assert loaded.config == model.config
    assert extra["step"] == 7 and extra["metrics"] == {"jf": 0.5, "names": ["a", "b"]}
    torch.testing.assert_close(extra["ema"], torch.ones(2))
    inputs = make_inputs(model, objects=2)
    with torch.no_grad():
        torch.testing.assert_close(run_model(loaded.eval(), inputs).probs, run_model(model, inputs).probs)
    obj = torch.load(path, weights_only=True)
    assert obj["format"] == "vosbench-ckpt-1" and obj["config"]["name"] == "scm-tiny"


def test_expect_preset_and_config(saved):
    model, path = saved
    load_checkpoint(path, expect="scm-tiny")
    load_checkpoint(path, expect=model.config.replace(loss={"iou": 0.0}, memory={"chunk_size": 64}))
    with pytest.raises(CheckpointError, match="expected 'dstm-tiny'"):
        load_checkpoint(path, expect="dstm-tiny")
    with pytest.raises(CheckpointError, match="decoder"):
        load_checkpoint(path, expect=get_preset("scm-tiny"))


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(1)}, other)
    with pytest.raises(CheckpointError, match="not a vosbench checkpoint"):
        load_checkpoint(other)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match="not a vosbench checkpoint"):
        load_checkpoint(junk)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save(
        {"format": "vosbench-ckpt-1", "config": {}, "state_dict": {}, "x": argparse.Namespace(a=1)}, path
    )
    with pytest.raises(CheckpointError, match="not a vosbench checkpoint"):
        load_checkpoint(path)


def test_weights_that_do_not_match_config(tmp_path, saved):
    _, path = saved
    obj = torch.load(path, weights_only=True)
    obj["config"]["key_dim"] = 32
    bad = tmp_path / "bad.pt"
    torch.save(obj, bad)
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(bad)
    obj = torch.load(path, weights_only=True)
    obj["config"]["spatial_prior"] = False
    torch.save(obj, bad)
    with pytest.raises(CheckpointError, match="unexpected 'spatial_prior"):
        load_checkpoint(bad)
    obj["config"]["nonsense"] = 1
    torch.save(obj, bad)
    with pytest.raises(CheckpointError, match="nonsense"):
        load_checkpoint(bad)


def test_save_is_atomic_and_checks_extras(tmp_path):
    model = build_model("stm-tiny")
    path = tmp_path / "m.pt"
    with pytest.raises(TypeError):
        save_checkpoint(path, model, bad=object())
    with pytest.raises(ValueError):
        save_checkpoint(path, model, config={})
    assert not path.exists() and list(tmp_path.iterdir()) == []
    save_checkpoint(path, model)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
