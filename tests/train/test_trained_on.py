"""A checkpoint records what it was trained on; infer says so when an embedded-only model meets real data."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from vosbench.infer import InferOptions, infer_dataset
from vosbench.models import load_checkpoint
from vosbench.train.config import TrainConfig
from vosbench.train.loop import train

FAST = ("train.epochs=1", "data.samples_per_epoch=2", "train.batch_size=1", "train.save_every=100")


@pytest.fixture
def embedded_run(tiny_config: Callable[..., TrainConfig], tiny_synthetic_root: Path, tmp_path: Path) -> Path:
    cfg = tiny_config(*FAST, f"data.root={tiny_synthetic_root}")
    return train(cfg, tmp_path / "embedded", device="cpu").last_checkpoint


def test_checkpoints_record_their_data_kinds_through_init(embedded_run, tiny_config, train_root, tmp_path):
    _, extra = load_checkpoint(embedded_run)
    assert extra["trained_on"]["kinds"] == ["embedded"]
    # a stage on real data that starts from it has seen both
    cfg = tiny_config(*FAST, f"train.init_checkpoint={embedded_run}")
    _, extra = load_checkpoint(train(cfg, tmp_path / "real", device="cpu").last_checkpoint)
    assert extra["trained_on"] == {"kinds": ["embedded", "real"], "roots": [str(train_root)]}


def test_infer_notes_an_embedded_only_model_on_real_data(embedded_run, tiny_synthetic_root, make_davis_root,
                                                         tmp_path, caplog):
    real = make_davis_root({"alpha": (2, 1)}, size=(32, 48), root=tmp_path / "real-data")
    options = InferOptions(scales=(0.5,))
    with caplog.at_level(logging.WARNING, logger="vosbench.infer.run"):
        infer_dataset(str(embedded_run), tiny_synthetic_root, "val", out=tmp_path / "emb", options=options)
    assert not [r for r in caplog.records if "embedded procedural" in r.getMessage()]
    with caplog.at_level(logging.WARNING, logger="vosbench.infer.run"):
        infer_dataset(str(embedded_run), real, "val", out=tmp_path / "real", options=options)
    notes = [r.getMessage() for r in caplog.records if "embedded procedural" in r.getMessage()]
    assert len(notes) == 1 and "last.pt was trained only on" in notes[0] and "\n" not in notes[0]
    assert "8.5-12 J&F" in notes[0] and "README" in notes[0]


def test_cli_note_is_one_plain_line_before_the_run(make_davis_root, tmp_path):
    from typer.testing import CliRunner

    from vosbench.models import build_model, save_checkpoint
    from vosbench_cli.main import app

    ckpt = save_checkpoint(tmp_path / "toy.pt", build_model("stm-tiny"),
                           trained_on={"kinds": ["embedded"], "roots": ["runs/quickstart/data"]})
    real = make_davis_root({"alpha": (2, 1)}, size=(32, 48), root=tmp_path / "real-data")
    res = CliRunner().invoke(app, ["infer", "--checkpoint", str(ckpt), "--data", str(real), "--out",
                                   str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    first = res.output.splitlines()[0]
    assert first.startswith("warning: toy.pt was trained only on vosbench's embedded procedural dataset")
    assert first.endswith("(converted STM weights, or an hf: model)")  # the whole note on one line
