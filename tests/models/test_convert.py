"""`vosbench convert --format stm`: the released STM layout -> a stm-r50 checkpoint.

No official code here: its parameter names and shapes are written out below as data (from
seoungwugoh/STM's model.py: torchvision ResNet-50 stems and layer1-3 named res2-res4, the memory
encoder's extra bias-free mask convs, KeyValue, Decoder), wrapped in ``module.`` like
``nn.DataParallel(STM()).state_dict()``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from vosbench_cli.main import app
from vosbench.models import build_model, load_checkpoint
from vosbench.models.convert import state_dict_from_stm, state_dict_to_stm

runner = CliRunner()

# (stage, blocks, input channels, bottleneck width): ResNet-50 layer1..layer3, expansion 4
RESNET50_STAGES = (("res2", 3, 64, 64), ("res3", 4, 256, 128), ("res4", 6, 512, 256))
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
HEADS = {  # name -> shape, everything outside the two ResNet trunks
    "Encoder_M.conv1_m.weight": (64, 1, 7, 7),
    "Encoder_M.conv1_o.weight": (64, 1, 7, 7),
    "Encoder_M.mean": (1, 3, 1, 1),
    "Encoder_M.std": (1, 3, 1, 1),
    "Encoder_Q.mean": (1, 3, 1, 1),
    "Encoder_Q.std": (1, 3, 1, 1),
    "KV_M_r4.Key.weight": (128, 1024, 3, 3),
    "KV_M_r4.Key.bias": (128,),
    "KV_M_r4.Value.weight": (512, 1024, 3, 3),
    "KV_M_r4.Value.bias": (512,),
    "KV_Q_r4.Key.weight": (128, 1024, 3, 3),
    "KV_Q_r4.Key.bias": (128,),
    "KV_Q_r4.Value.weight": (512, 1024, 3, 3),
    "KV_Q_r4.Value.bias": (512,),
    "Decoder.convFM.weight": (256, 1024, 3, 3),
    "Decoder.convFM.bias": (256,),
    "Decoder.pred2.weight": (2, 256, 3, 3),
    "Decoder.pred2.bias": (2,),
    **{
        f"Decoder.{block}.{conv}.{p}": (256, 256, 3, 3) if p == "weight" else (256,)
        for block in ("ResMM", "RF3.ResFS", "RF3.ResMM", "RF2.ResFS", "RF2.ResMM")
        for conv in ("conv1", "conv2")
        for p in ("weight", "bias")
    },
    "Decoder.RF3.convFS.weight": (256, 512, 3, 3),
    "Decoder.RF3.convFS.bias": (256,),
    "Decoder.RF2.convFS.weight": (256, 256, 3, 3),
    "Decoder.RF2.convFS.bias": (256,),
}


def official_shapes() -> dict[str, tuple[int, ...]]:
    shapes = dict(HEADS)
    for enc in ("Encoder_M", "Encoder_Q"):
        shapes[f"{enc}.conv1.weight"] = (64, 3, 7, 7)
        shapes.update({f"{enc}.bn1.{p}": () if p == "num_batches_tracked" else (64,) for p in BN})
        for stage, blocks, cin, width in RESNET50_STAGES:
            for b in range(blocks):
                pre = f"{enc}.{stage}.{b}"
                inp = cin if b == 0 else 4 * width
                convs = {"conv1": (width, inp, 1, 1), "conv2": (width, width, 3, 3), "conv3": (4 * width, width, 1, 1)}
                if b == 0:
                    convs["downsample.0"] = (4 * width, inp, 1, 1)
                for conv, shape in convs.items():
                    shapes[f"{pre}.{conv}.weight"] = shape
                    bn = f"{pre}.bn{conv[-1]}" if conv.startswith("conv") else f"{pre}.downsample.1"
                    shapes.update({f"{bn}.{p}": () if p == "num_batches_tracked" else (shape[0],) for p in BN})
    return shapes


def official_state(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in official_shapes().items():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(7)
        elif name.endswith("running_var"):
            state[name] = torch.rand(shape, generator=g) + 0.5
        else:
            state[name] = torch.randn(shape, generator=g) * 0.05
    for enc in ("Encoder_M", "Encoder_Q"):
        state[f"{enc}.mean"] = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        state[f"{enc}.std"] = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return {f"module.{k}": v for k, v in state.items()}


@pytest.fixture(scope="module")
def stm_model():
    torch.manual_seed(0)
    return build_model("stm-r50").eval()


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    state = official_state()
    path = tmp_path_factory.mktemp("stm") / "STM_weights.pth"
    torch.save(state, path)
    return path, state


def test_key_map_uses_every_official_tensor(stm_model, released):
    _, state = released
    assert len(state) == 558  # the tensors of nn.DataParallel(STM()).state_dict()
    mapped = state_dict_from_stm(state, stm_model)
    stm_model.load_state_dict(mapped, strict=True)
    s = {k[len("module.") :]: v for k, v in state.items()}
    # the facts of the layout, checked tensor by tensor
    assert torch.equal(
        mapped["memory_encoder.backbone.body.conv1.weight"],
        torch.cat([s["Encoder_M.conv1.weight"], s["Encoder_M.conv1_m.weight"], s["Encoder_M.conv1_o.weight"]], 1),
    )
    assert torch.equal(mapped["query_encoder.backbone.body.layer3.5.conv3.weight"], s["Encoder_Q.res4.5.conv3.weight"])
    assert torch.equal(mapped["memory_encoder.backbone.body.layer1.0.downsample.1.running_var"],
                       s["Encoder_M.res2.0.downsample.1.running_var"])
    assert torch.equal(mapped["query_encoder.key_value.value.bias"], s["KV_Q_r4.Value.bias"])
    fm = s["Decoder.convFM.weight"]  # reads [memory read (512), query value (512)]
    assert torch.equal(mapped["context.weight"], torch.cat([fm[:, 512:], fm[:, :512]], 1))
    assert torch.equal(mapped["decoder.refine8.merge_res.conv2.bias"], s["Decoder.RF3.ResMM.conv2.bias"])
    assert torch.equal(mapped["decoder.refine4.skip_conv.weight"], s["Decoder.RF2.convFS.weight"])
    p = s["Decoder.pred2.weight"]
    assert torch.equal(mapped["decoder.pred.weight"], p[1:2] - p[0:1])


def test_round_trip_gives_identical_outputs(stm_model, tmp_path):
    torch.manual_seed(1)
    ours = build_model("stm-r50").eval()
    src = tmp_path / "official.pth"
    torch.save(state_dict_to_stm(ours), src)
    out = tmp_path / "converted.pt"
    result = runner.invoke(app, ["convert", str(src), "--format", "stm", "--out", str(out)])
    assert result.exit_code == 0, result.output
    back, extra = load_checkpoint(out, expect="stm-r50")
    assert extra["converted_from"] == {"format": "stm", "file": "official.pth"}
    g = torch.Generator().manual_seed(0)
    image, mem = torch.rand(1, 3, 40, 56, generator=g), torch.rand(1, 1, 3, 40, 56, generator=g)
    masks = (torch.rand(1, 1, 2, 40, 56, generator=g) > 0.5).float()
    with torch.no_grad():
        a = ours(image, mem, masks).logits
        b = back.eval()(image, mem, masks).logits
    assert torch.equal(a, b)
    # train.init_checkpoint (strict) takes it too: every tensor lands in a fresh stm-r50
    from vosbench.train.init import load_init

    fresh = build_model("stm-r50")
    plan = load_init(fresh, out, fresh.config, strict=True)
    assert plan.complete and torch.equal(fresh.state_dict()["context.weight"], ours.state_dict()["context.weight"])


def _refused(tmp_path: Path, state: dict, *args: str) -> str:
    src = tmp_path / "in.pth"
    torch.save(state, src)
    out = tmp_path / "out.pt"
    result = runner.invoke(app, ["convert", str(src), "--out", str(out), *args])
    assert result.exit_code != 0
    assert not out.exists() and not list(tmp_path.glob(".*.vostmp*"))
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


def test_foreign_layouts_are_refused_with_the_first_bad_key(stm_model, released, tmp_path):
    _, state = released
    missing = {k: v for k, v in state.items() if k != "module.Decoder.pred2.bias"}
    assert "missing 'Decoder.pred2.bias'" in _refused(tmp_path, missing)
    extra = {**state, "module.Decoder.pred3.weight": torch.zeros(1)}
    assert "unexpected 'Decoder.pred3.weight'" in _refused(tmp_path, extra)
    wrong = {**state, "module.KV_M_r4.Key.bias": torch.zeros(64)}
    assert "'KV_M_r4.Key.bias' (64,)" in _refused(tmp_path, wrong)
    # a vosbench state dict is not the STM layout
    assert "not the STM layout (missing 'Encoder_Q.conv1.weight')" in _refused(tmp_path, stm_model.state_dict())
    other_std = {**state, "module.Encoder_Q.std": torch.ones(1, 3, 1, 1)}
    assert "not ImageNet's" in _refused(tmp_path, other_std)
    assert "unknown checkpoint format 'cutie'" in _refused(tmp_path, state, "--format", "cutie")


def test_truncated_and_non_state_dict_files_are_refused(released, tmp_path):
    path, _ = released
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    out = tmp_path / "out.pt"
    result = runner.invoke(app, ["convert", str(truncated), "--out", str(out)])
    assert result.exit_code != 0 and not out.exists()
    assert result.output.strip().count("\n") == 0 and "unreadable checkpoint" in result.output
    assert "not a state dict" in _refused(tmp_path, [1, 2, 3])  # type: ignore[arg-type]
    assert "not a state dict of tensors (entry 1)" in _refused(tmp_path, {1: torch.zeros(1)})


def test_bn_counters_are_optional_and_existing_output_is_kept(released, tmp_path):
    _, state = released
    src = tmp_path / "old.pth"
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, src)
    out = tmp_path / "out.pt"
    out.write_text("keep me")
    result = runner.invoke(app, ["convert", str(src), "--out", str(out)])
    assert result.exit_code != 0 and out.read_text() == "keep me" and "--overwrite" in result.output
    result = runner.invoke(app, ["convert", str(src), "--out", str(out), "--overwrite"])
    assert result.exit_code == 0, result.output
    load_checkpoint(out, expect="stm-r50")
