import pytest
import timm
import torch
from timm.layers import BatchNormAct2d

from vosbench.errors import CheckpointError, ConfigError
from vosbench.models import build_model
from vosbench.models.backbone import Backbone, FrozenStatsBatchNorm2d, bn_statistics_frozen


@pytest.fixture(scope="module")
def resnet18_weights(tmp_path_factory):
    torch.manual_seed(3)
    state = timm.create_model("resnet18", pretrained=False).state_dict()
    path = tmp_path_factory.mktemp("w") / "resnet18.pth"
    torch.save(state, path)
    return path, state


def test_backbone_weights_from_local_file(resnet18_weights):
    path, state = resnet18_weights
    model = build_model("dstm-tiny", backbone_weights=str(path))
    rgb = state["conv1.weight"]
    q = model.query_encoder.backbone.body.conv1.weight  # RGB + depth
    m = model.memory_encoder.backbone.body.conv1.weight  # RGB + depth + mask + other mask
    torch.testing.assert_close(q[:, :3], rgb)
    torch.testing.assert_close(q[:, 3], rgb.mean(dim=1))
    torch.testing.assert_close(m[:, :3], rgb)
    torch.testing.assert_close(m[:, 3], rgb.mean(dim=1))
    assert m[:, 4:].abs().max() == 0
    torch.testing.assert_close(
        model.query_encoder.backbone.body.layer3[0].conv1.weight, state["layer3.0.conv1.weight"]
    )
    torch.testing.assert_close(
        model.memory_encoder.backbone.body.layer2[1].conv2.weight, state["layer2.1.conv2.weight"]
    )
    # Frozen BN takes the file's statistics.
    bn = model.query_encoder.backbone.body.bn1
    torch.testing.assert_close(bn.running_mean, state["bn1.running_mean"])


def test_wrapped_state_dict_and_safetensors(tmp_path, resnet18_weights):
    from safetensors.torch import save_file

    _, state = resnet18_weights
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, wrapped)
    st = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(st))
    for path in (wrapped, st):
        bb = Backbone("resnet18", ("zeros",))
        bb.load_imagenet(path)
        torch.testing.assert_close(bb.body.conv1.weight[:, :3], state["conv1.weight"])


def test_bad_backbone_weights(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        build_model("stm-tiny", backbone_weights=str(tmp_path / "missing.pth"))
    r34 = tmp_path / "resnet34.pth"
    torch.save(timm.create_model("resnet34", pretrained=False).state_dict(), r34)
    with pytest.raises(CheckpointError, match="resnet18"):
        Backbone("resnet18").load_imagenet(r34)
    junk = tmp_path / "junk.pth"
    torch.save({"a": 1}, junk)
    with pytest.raises(CheckpointError, match="state_dict"):
        Backbone("resnet18").load_imagenet(junk)


def test_frozen_bn_allows_batch1_train_on_1x1_maps():
    # ResNeSt's split attention applies BN to a pooled 1x1 map: batch 1 in train mode needs frozen BN.
    frozen = Backbone("resnest14d", ("zeros", "zeros")).train()
    out = frozen(torch.rand(1, 5, 32, 32))
    assert [o.shape[1] for o in out] == list(frozen.channels)
    bns = [m for m in frozen.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(isinstance(m, FrozenStatsBatchNorm2d) for m in bns)
    live = Backbone("resnest14d", ("zeros", "zeros"), freeze_bn=False).train()
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        live(torch.rand(1, 5, 32, 32))


def test_frozen_bn_statistics_do_not_move_in_train_mode():
    model = build_model("stm-tiny").train()
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    assert before
    model.encode_query(torch.rand(2, 3, 32, 32))
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())


def test_deep_stem_weights_resnest(tmp_path):
    # ResNeSt's deep stem: the input conv is conv1.0, found by shape, not by name.
    state = timm.create_model("resnest14d", pretrained=False).state_dict()
    path = tmp_path / "resnest14d.pth"
    torch.save(state, path)
    bb = Backbone("resnest14d", ("rgb_mean", "zeros", "zeros"))
    bb.load_imagenet(path)
    w = bb.body.conv1[0].weight
    torch.testing.assert_close(w[:, :3], state["conv1.0.weight"])
    torch.testing.assert_close(w[:, 3], state["conv1.0.weight"].mean(dim=1))
    assert w[:, 4:].abs().max() == 0


def test_frozen_bn_keeps_affine_trainable_so_zero_init_branches_learn():
    # timm zero-initialises the last BN weight of each residual block; those weights must learn.
    bb = Backbone("resnet18", ("zeros",)).train()
    last_bn = bb.body.layer2[0].bn2
    assert isinstance(last_bn, FrozenStatsBatchNorm2d) and last_bn.weight.abs().max() == 0
    bb(torch.rand(1, 4, 32, 32))[2].pow(2).mean().backward()
    assert last_bn.weight.requires_grad and last_bn.weight.grad.abs().max() > 0


def test_frozen_bn_keeps_the_activation_of_timm_bn_act_layers():
    # MobileNetV3 (like EfficientNet, RegNet) fuses BN + activation in timm's BatchNormAct2d: freezing
    # its statistics must keep the activation (a plain frozen BN in its place silently dropped it).
    torch.manual_seed(0)
    live = Backbone("mobilenetv3_small_050", freeze_bn=False).eval()
    frozen = Backbone("mobilenetv3_small_050").train()
    frozen.load_state_dict(live.state_dict())
    bns = [m for m in frozen.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bns and all(bn_statistics_frozen(m) for m in bns)
    assert any(isinstance(m, BatchNormAct2d) for m in bns)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(live(x), frozen(x), strict=True):
            torch.testing.assert_close(b, a)
    before = {k: v.clone() for k, v in frozen.state_dict().items() if "running" in k}
    frozen(x)[2].mean().backward()  # train mode, batch 1: statistics stay, affine learns
    assert all(torch.equal(v, frozen.state_dict()[k]) for k, v in before.items())
    assert any(m.weight.grad is not None and m.weight.grad.abs().max() > 0 for m in bns)


def test_stride_features_found_by_reduction():
    # ConvNeXt has no stride-2 stem feature: its stride-4/8/16 features are indices 0, 1, 2.
    bb = Backbone("convnext_atto", ("zeros",))
    out = bb(torch.rand(1, 4, 64, 64))
    assert [o.shape[-1] for o in out] == [16, 8, 4]
    assert [o.shape[1] for o in out] == list(bb.channels)
    # A dilated trunk (output stride 8) has no stride-16 feature.
    with pytest.raises(ConfigError, match="stride-4/8/16"):
        Backbone("resnet18", timm_kwargs={"output_stride": 8})


def test_imagenet_weights_for_a_flattened_features_trunk(tmp_path):
    # timm's features_only ConvNeXt names its stem 'stem_0' where the classifier has 'stem.0'.
    torch.manual_seed(4)
    state = timm.create_model("convnext_atto", pretrained=False).state_dict()
    path = tmp_path / "convnext_atto.pth"
    torch.save(state, path)
    bb = Backbone("convnext_atto", ("rgb_mean", "zeros"))
    bb.load_imagenet(path)
    w = bb.body.stem_0.weight
    torch.testing.assert_close(w[:, :3], state["stem.0.weight"])
    torch.testing.assert_close(w[:, 3], state["stem.0.weight"].mean(dim=1))
    assert w[:, 4].abs().max() == 0
    dw = bb.body.stages_2.blocks[0].conv_dw.weight
    torch.testing.assert_close(dw, state["stages.2.blocks.0.conv_dw.weight"])


@pytest.fixture
def timm_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache in ``tmp_path`` with the hub offline (no test reaches the real hub);
    ``put(tag, state)`` stores weights where timm's pretrained loading finds them."""
    from huggingface_hub import constants
    from safetensors.torch import save_file

    cache = tmp_path / "hf"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    def put(tag: str, state: dict) -> None:
        repo = cache / f"models--timm--{tag}"
        snapshot = repo / "snapshots" / ("0" * 40)
        snapshot.mkdir(parents=True)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text("0" * 40)
        save_file({k: v.contiguous() for k, v in state.items()}, str(snapshot / "model.safetensors"))

    return put


def test_timm_tag_loads_through_timms_cache_with_extra_channels_initialised(timm_cache, resnet18_weights):
    _, state = resnet18_weights
    timm_cache("resnet18.a1_in1k", state)
    model = build_model("dstm-tiny", backbone_weights="timm:resnet18.a1_in1k")
    rgb = state["conv1.weight"]
    q = model.query_encoder.backbone.body.conv1.weight  # RGB + depth
    m = model.memory_encoder.backbone.body.conv1.weight  # RGB + depth + mask + other mask
    torch.testing.assert_close(q[:, :3], rgb)
    torch.testing.assert_close(q[:, 3], rgb.mean(dim=1))  # depth: mean of the RGB filters
    torch.testing.assert_close(m[:, 3], rgb.mean(dim=1))
    assert m[:, 4:].abs().max() == 0  # the two mask channels start at zero
    torch.testing.assert_close(model.memory_encoder.backbone.body.layer3[1].conv2.weight, state["layer3.1.conv2.weight"])


def test_timm_tag_offline_without_cache_is_one_line_naming_tag_and_local_file(timm_cache):
    from vosbench.models.backbone import BackboneWeightsUnavailable

    with pytest.raises(BackboneWeightsUnavailable) as err:
        build_model("stm-tiny", backbone_weights="timm:resnet18.a1_in1k")
    message = str(err.value)
    assert "\n" not in message and "timm:resnet18.a1_in1k" in message and "local" in message


def test_bad_timm_tags(timm_cache):
    with pytest.raises(ConfigError, match="unknown timm pretrained tag"):
        build_model("stm-tiny", backbone_weights="timm:resnet18.no_such_tag")
    with pytest.raises(ConfigError, match="weights of 'resnet50'"):
        build_model("stm-tiny", backbone_weights="timm:resnet50.tv_in1k")
