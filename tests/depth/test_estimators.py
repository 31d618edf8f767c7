from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vosbench.depth.estimators import (
    FolderDepthEstimator,
    FrameKey,
    TransformersDepthEstimator,
    make_estimator,
    read_depth_file,
)
from vosbench.errors import CheckpointError, ConfigError, DataError


def test_transformers_estimator_shapes_and_disparity_convention(tiny_depth_model: Path) -> None:
    est = make_estimator(str(tiny_depth_model), batch_size=2)
    assert isinstance(est, TransformersDepthEstimator)
    assert est.kind == "disparity" and est.model_type == "depth_anything"
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (37, 50, 3), dtype=np.uint8) for _ in range(3)]
    maps = est.predict(frames)
    assert len(maps) == 3
    assert all(m.shape == (37, 50) and m.dtype == np.float32 for m in maps)
    # "disparity" output is negated: the estimator must return exactly -(depth kind output)
    as_depth = TransformersDepthEstimator(str(tiny_depth_model), batch_size=3, kind="depth").predict(frames)
    np.testing.assert_allclose(maps[1], -as_depth[1], rtol=1e-4, atol=1e-5)
    assert est.describe()["output"] == "disparity"


def test_missing_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"nope.*depth model folder not found"):
        make_estimator(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"empty.*no config.json"):
        make_estimator(str(tmp_path / "empty"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text('{"model_type": "dpt"}')
    with pytest.raises(CheckpointError, match=r"broken: cannot load depth model folder"):
        make_estimator(str(tmp_path / "broken"))


def test_bad_options_are_config_errors(tiny_depth_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="batch size"):
        make_estimator(str(tiny_depth_model), batch_size=0)
    with pytest.raises(ConfigError, match="depth kind"):
        make_estimator(str(tiny_depth_model), kind="inverse")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="--device must be auto, cpu, cuda or cuda:N, got 'tpu'"):
        make_estimator(str(tiny_depth_model), device="tpu")
    with pytest.raises(ConfigError, match="got 'mps'"):
        make_estimator(str(tiny_depth_model), device="mps")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            make_estimator(str(tiny_depth_model), device="cuda")
    with pytest.raises(ConfigError, match="needs a path"):
        make_estimator("folder:")
    with pytest.raises(DataError, match="depth folder not found"):
        make_estimator(f"folder:{tmp_path / 'absent'}")


def test_folder_estimator_reads_png_npy_and_resizes(tmp_path: Path) -> None:
    seq = tmp_path / "maps" / "s"
    seq.mkdir(parents=True)
    d16 = (np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 50).astype(np.uint16)
    Image.fromarray(d16).save(seq / "00000.png")
    Image.fromarray((d16 // 256).astype(np.uint8)).save(seq / "00001.png")
    np.save(seq / "00002.npy", d16.astype(np.float32)[None])  # 1,H,W is squeezed
    est = make_estimator(f"folder:{tmp_path / 'maps'}")
    assert isinstance(est, FolderDepthEstimator)
    frames = [np.zeros((40, 60, 3), np.uint8)] * 3
    keys = [FrameKey("s", f"{i:05d}") for i in range(3)]
    out = est.predict(frames, keys)
    assert [m.shape for m in out] == [(40, 60)] * 3
    # values keep their order along the ramp (larger index = larger value) after resizing
    assert out[0][0, 0] < out[0][-1, -1] and out[2][0, 0] < out[2][-1, -1]
    inv = FolderDepthEstimator(tmp_path / "maps", kind="disparity").predict(frames[:1], keys[:1])
    np.testing.assert_array_equal(inv[0], -out[0])


def test_folder_estimator_missing_and_bad_files(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    est = FolderDepthEstimator(tmp_path)
    with pytest.raises(DataError, match=r"s/00003\.png: imported depth map missing"):
        est.predict([np.zeros((4, 4, 3), np.uint8)], [FrameKey("s", "00003")])
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "s" / "c.png")
    with pytest.raises(DataError, match="c.png: depth PNG must be single-channel"):
        read_depth_file(tmp_path / "s" / "c.png")
    np.save(tmp_path / "s" / "n.npy", np.array([[1.0, np.nan], [2.0, 3.0]], np.float32))
    with pytest.raises(DataError, match="n.npy: depth map contains NaN"):
        read_depth_file(tmp_path / "s" / "n.npy")
    np.save(tmp_path / "s" / "v.npy", np.zeros((2, 3, 4), np.float32))
    with pytest.raises(DataError, match="v.npy: depth map must be a 2-D"):
        read_depth_file(tmp_path / "s" / "v.npy")


def test_missing_transformers_names_the_extra(monkeypatch: pytest.MonkeyPatch, tiny_depth_model: Path) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "transformers", None)  # import now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[depth\]'"):
        make_estimator(tiny_depth_model)


def test_depth_output_architecture_is_not_negated(tmp_path: Path) -> None:
    """GLPN predicts depth (larger = farther): auto must keep its sign."""
    pytest.importorskip("transformers")
    from transformers import GLPNConfig, GLPNForDepthEstimation, GLPNImageProcessor

    cfg = GLPNConfig(depths=[1, 1, 1, 1], sr_ratios=[8, 4, 2, 1], hidden_sizes=[8, 16, 16, 16],
                     num_attention_heads=[1, 1, 1, 1], decoder_hidden_size=16, mlp_ratios=[2, 2, 2, 2])
    torch.manual_seed(0)
    GLPNForDepthEstimation(cfg).save_pretrained(tmp_path / "glpn")
    GLPNImageProcessor().save_pretrained(tmp_path / "glpn")
    est = make_estimator(tmp_path / "glpn")
    assert isinstance(est, TransformersDepthEstimator) and est.kind == "depth"
    (m,) = est.predict([np.full((37, 50, 3), 128, np.uint8)])
    assert m.shape == (37, 50) and m.min() > 0  # GLPN's sigmoid head: positive depth, unchanged


def test_corrupt_model_weights_are_a_clear_error(tiny_depth_model: Path, tmp_path: Path) -> None:
    import shutil

    bad = tmp_path / "truncated"
    shutil.copytree(tiny_depth_model, bad)
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # safetensors raises its own SafetensorError
    with pytest.raises(CheckpointError, match=r"truncated: cannot load depth model folder"):
        make_estimator(str(bad))


def test_folder_import_odd_arrays(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    np.save(tmp_path / "s" / "00000.npy", np.arange(6, dtype=np.float32).reshape(2, 3, 1))  # H,W,1
    np.save(tmp_path / "s" / "00001.npy", np.arange(3, dtype=np.float32).reshape(1, 3))  # a 1-row map stays 2-D
    out = FolderDepthEstimator(tmp_path).predict([np.zeros((2, 3, 3), np.uint8)] * 2,
                                                 [FrameKey("s", "00000"), FrameKey("s", "00001")])
    np.testing.assert_array_equal(out[0], np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(out[1], np.tile(np.arange(3, dtype=np.float32), (2, 1)))
    np.save(tmp_path / "s" / "e.npy", np.zeros((0, 5), np.float32))
    with pytest.raises(DataError, match=r"e\.npy: depth map is empty"):
        read_depth_file(tmp_path / "s" / "e.npy")
    np.savez(tmp_path / "s" / "z", depth=np.zeros((3, 3)))
    (tmp_path / "s" / "z.npz").rename(tmp_path / "s" / "z.npy")
    with pytest.raises(DataError, match=r"z\.npy: not a \.npy array"):
        read_depth_file(tmp_path / "s" / "z.npy")


def test_out_of_memory_names_batch_size(tiny_depth_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    est = make_estimator(str(tiny_depth_model), batch_size=2)

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(est.model, "forward", oom)
    with pytest.raises(ConfigError, match=r"ran out of cpu memory on 2 frames of 50x37; lower --batch-size"):
        est.predict([np.zeros((37, 50, 3), np.uint8)] * 2)
