"""Behaviour of the assembled VOSModel on tiny inputs."""

import pytest
import torch

from vosbench.errors import ConfigError
from vosbench.losses import segmentation_loss
from vosbench.models import build_model
from vosbench.models.aggregate import soft_aggregate

from .conftest import make_inputs, run_model


@pytest.fixture(scope="module")
def scm_model():
    torch.manual_seed(0)
    return build_model("scm-tiny").eval()


@pytest.fixture(scope="module")
def dstm_model():
    torch.manual_seed(0)
    return build_model("dstm-tiny").eval()


@pytest.mark.parametrize("objects", [1, 2, 3, 4])
def test_output_shapes_and_distribution(scm_model, objects):
    inputs = make_inputs(scm_model, batch=2, objects=objects, size=(48, 64))
    with torch.no_grad():
        out = run_model(scm_model, inputs, frames=2)
    assert out.logits.shape == (2, objects + 1, 48, 64)
    assert out.probs.shape == (2, objects + 1, 48, 64)
    torch.testing.assert_close(out.probs.sum(dim=1), torch.ones(2, 48, 64))
    assert set(out.aux) == {"coarse_logits", "refine_logits"}
    for value in out.aux.values():
        assert value.shape == out.logits.shape


def test_query_and_memory_encoding_shapes(dstm_model):
    inputs = make_inputs(dstm_model, batch=2, objects=3, size=(64, 96))
    cfg = dstm_model.config
    with torch.no_grad():
        q = dstm_model.encode_query(inputs["image"], inputs["depth"])
        m = dstm_model.encode_memory(inputs["mem_image"], inputs["masks"], inputs["mem_depth"], query=q)
    assert q.key.shape == (2, cfg.key_dim, 4, 6) and q.value.shape == (2, cfg.value_dim, 4, 6)
    assert q.skips[0].shape[-2:] == (8, 12) and q.skips[1].shape[-2:] == (16, 24)
    assert q.image_size == (64, 96)
    assert m.key.shape == (2, 3, cfg.key_dim, 4, 6) and m.value.shape == (2, 3, cfg.value_dim, 4, 6)


def test_sizes_not_multiple_of_16_are_padded_and_cropped(scm_model):
    inputs = make_inputs(scm_model, batch=1, objects=2, size=(50, 70))
    with torch.no_grad():
        out = run_model(scm_model, inputs)
    assert out.logits.shape == (1, 3, 50, 70)


def test_padding_is_stms_rule_black_image_and_empty_masks_centred(dstm_model):
    """50x70 -> 64x80 by hand: 7 rows above, 7 below, 5 columns left, 5 right, zeros on the [0, 1]
    image, depth and masks; the model on the unpadded frame equals it on the hand-padded one."""
    m = dstm_model
    inputs = make_inputs(m, batch=1, objects=2, size=(50, 70))
    pads = (5, 5, 7, 7)
    padded = {k: None if v is None else torch.nn.functional.pad(v, pads) for k, v in inputs.items()}
    with torch.no_grad():
        q = m.encode_query(inputs["image"], inputs["depth"])
        q_ref = m.encode_query(padded["image"], padded["depth"])
        mem = m.encode_memory(inputs["mem_image"], inputs["masks"], inputs["mem_depth"])
        mem_ref = m.encode_memory(padded["mem_image"], padded["masks"], padded["mem_depth"])
        out = m.segment(q, mem.key.unsqueeze(3), mem.value.unsqueeze(3))
        out_ref = m.segment(q_ref, mem_ref.key.unsqueeze(3), mem_ref.value.unsqueeze(3))
    black = (-torch.tensor([0.485, 0.456, 0.406]) / torch.tensor([0.229, 0.224, 0.225])).view(3, 1)
    assert q.image.shape[-2:] == (64, 80)
    torch.testing.assert_close(q.image[0, :, :7].flatten(1), black.expand(3, 7 * 80))  # rows above
    torch.testing.assert_close(q.image[0, :, :, -5:].flatten(1), black.expand(3, 64 * 5))  # right columns
    assert torch.equal(q.key, q_ref.key) and torch.equal(mem.value, mem_ref.value)
    assert out.logits.shape == (1, 3, 50, 70)
    torch.testing.assert_close(out.logits, out_ref.logits[..., 7:57, 5:75])


def test_invalid_objects_get_zero_probability(scm_model):
    inputs = make_inputs(scm_model, batch=2, objects=3)
    valid = torch.tensor([[True, False, True], [True, True, False]])
    with torch.no_grad():
        out = run_model(scm_model, inputs, valid=valid)
    assert out.probs[0, 2].max() == 0 and out.probs[1, 3].max() == 0
    torch.testing.assert_close(out.probs.sum(dim=1), torch.ones(2, 64, 64))
    # A padded slot does not change the other objects' result.
    sub = dict(inputs, masks=inputs["masks"][:1, [0, 2]], prev=inputs["prev"][:1, [0, 2]])
    sub.update(image=inputs["image"][:1], mem_image=inputs["mem_image"][:1])
    with torch.no_grad():
        # The other-objects channel of the memory encoder sees the padded slot's mask, so make it empty.
        full = dict(inputs)
        full["masks"] = inputs["masks"].clone()
        full["masks"][0, 1] = 0
        out_full = run_model(scm_model, full, valid=valid)
        out_sub = run_model(scm_model, sub)
    torch.testing.assert_close(out_full.probs[0, [0, 1, 3]], out_sub.probs[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("preset", ["scm-tiny", "dstm-tiny"])
def test_permuting_objects_permutes_outputs(preset, scm_model, dstm_model):
    model = scm_model if preset == "scm-tiny" else dstm_model
    inputs = make_inputs(model, batch=1, objects=3)
    perm = [2, 0, 1]
    permuted = dict(inputs, masks=inputs["masks"][:, perm])
    if inputs["prev"] is not None:
        permuted["prev"] = inputs["prev"][:, perm]
    with torch.no_grad():
        out = run_model(model, inputs)
        out_p = run_model(model, permuted)
    channels = [0] + [p + 1 for p in perm]
    torch.testing.assert_close(out_p.probs, out.probs[:, channels], atol=1e-5, rtol=1e-4)


def test_memory_masks_matter(scm_model):
    inputs = make_inputs(scm_model, objects=2)
    other = dict(inputs, masks=torch.flip(inputs["masks"], dims=[-1]))
    with torch.no_grad():
        m_a = scm_model.encode_memory(inputs["mem_image"], inputs["masks"])
        m_b = scm_model.encode_memory(other["mem_image"], other["masks"])
        a = run_model(scm_model, inputs).probs
        b = run_model(scm_model, other).probs
    assert (m_a.value - m_b.value).abs().max() > 1e-3 * m_a.value.abs().max()
    assert (a - b).abs().max() > 1e-6


def test_chunked_memory_read_gives_same_segmentation():
    torch.manual_seed(0)
    fused = build_model("stm-tiny").eval()
    chunked = build_model("stm-tiny", memory={"chunk_size": 5})
    chunked.load_state_dict(fused.state_dict())
    chunked.eval()
    inputs = make_inputs(fused, objects=2)
    with torch.no_grad():
        torch.testing.assert_close(
            run_model(chunked, inputs, frames=3).probs,
            run_model(fused, inputs, frames=3).probs,
            atol=1e-5,
            rtol=1e-4,
        )


def _component_grads(model, inputs, valid=None):
    model.zero_grad()
    out = run_model(model, inputs, valid=valid)
    target = torch.zeros(out.logits.shape[0], *out.logits.shape[-2:], dtype=torch.long)
    target[:, 8:30, 8:30] = 1
    target[:, 36:60, 30:60] = 2
    total, _ = segmentation_loss(out, target, model.config.loss, valid=valid)
    total.backward()
    norms = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        top = name.split(".")[0]
        assert p.grad is not None, f"{name} got no gradient"
        norms[top] = norms.get(top, 0.0) + float(p.grad.norm())
    return norms


@pytest.mark.parametrize("preset", ["scm-tiny", "dstm-tiny"])
def test_gradients_reach_every_enabled_component(preset):
    torch.manual_seed(0)
    model = build_model(preset).train()
    norms = _component_grads(model, make_inputs(model, batch=1, objects=2))
    expected = {"query_encoder", "memory_encoder", "context", "decoder"}
    if model.config.spatial_prior:
        expected.add("spatial_prior")
    if model.config.refine:
        expected.add("refine")
    assert expected <= set(norms)
    assert all(norms[name] > 0 for name in expected), norms
    # The mask channels of the memory encoder's input conv and the depth channel of the query encoder learn.
    mem_conv = model.memory_encoder.backbone.body.conv1
    assert float(mem_conv.weight.grad[:, -2:].abs().sum()) > 0
    if model.config.depth:
        assert float(model.query_encoder.backbone.body.conv1.weight.grad[:, 3].abs().sum()) > 0


def _param_names(model):
    return {n for n, _ in model.named_parameters()}


def _count(model, prefix):
    return sum(p.numel() for n, p in model.named_parameters() if n.startswith(prefix))


@pytest.mark.parametrize(
    "switch, prefix",
    [("spatial_prior", "spatial_prior."), ("refine", "refine."), ("aspp", "context.branches.")],
)
def test_switching_part_off_removes_its_parameters(switch, prefix):
    on = build_model("scm-tiny")
    off = build_model("scm-tiny", **{switch: False})
    assert any(n.startswith(prefix) for n in _param_names(on))
    assert not any(n.startswith(prefix) for n in _param_names(off))
    assert off.num_parameters() < on.num_parameters()
    if switch != "aspp":  # ASPP off falls back to STM's single context conv
        assert on.num_parameters() - off.num_parameters() == _count(on, prefix)


def test_depth_switch_changes_input_channels():
    with_depth = build_model("dstm-tiny")
    without = build_model("dstm-tiny", depth=False)
    assert with_depth.query_encoder.backbone.body.conv1.weight.shape[1] == 4
    assert with_depth.memory_encoder.backbone.body.conv1.weight.shape[1] == 6
    assert without.query_encoder.backbone.body.conv1.weight.shape[1] == 3
    assert without.memory_encoder.backbone.body.conv1.weight.shape[1] == 5


def test_missing_depth_or_prev_mask_is_a_clear_error(scm_model, dstm_model):
    inputs = make_inputs(dstm_model)
    with pytest.raises(ConfigError, match="depth"):
        dstm_model.encode_query(inputs["image"])
    inputs = make_inputs(scm_model)
    q = scm_model.encode_query(inputs["image"])
    m = scm_model.encode_memory(inputs["mem_image"], inputs["masks"])
    with pytest.raises(ConfigError, match="prev_mask"):
        scm_model.segment(q, m.key.unsqueeze(3), m.value.unsqueeze(3))


def test_soft_aggregation_formula():
    g = torch.Generator().manual_seed(0)
    p = torch.rand(2, 3, 5, 5, generator=g)
    probs = torch.softmax(soft_aggregate(p), dim=1)
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 5, 5))
    # Odds ratios are preserved: prob_k / prob_bg = odds(p_k) / odds(bg).
    bg = torch.prod(1 - p, dim=1)
    ratio = probs[:, 1] / probs[:, 0]
    expected = (p[:, 0] / (1 - p[:, 0])) / (bg / (1 - bg))
    torch.testing.assert_close(ratio, expected, rtol=1e-4, atol=1e-5)
    # A single object: STM's logit-space merge sharpens p to p^2 / (p^2 + (1-p)^2).
    one = torch.softmax(soft_aggregate(p[:, :1]), dim=1)
    q = p[:, 0]
    torch.testing.assert_close(one[:, 1], q**2 / (q**2 + (1 - q) ** 2), rtol=1e-4, atol=1e-6)


def test_soft_aggregation_excludes_invalid_from_background():
    p = torch.full((1, 2, 2, 2), 0.5)
    p[:, 1] = 0.99
    valid = torch.tensor([[True, False]])
    probs = torch.softmax(soft_aggregate(p, valid), dim=1)
    torch.testing.assert_close(probs[:, 1], torch.full((1, 2, 2), 0.5))
    assert probs[:, 2].max() == 0


def test_autocast_bfloat16_forward(scm_model):
    inputs = make_inputs(scm_model, objects=2)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = run_model(scm_model, inputs)
    assert out.logits.dtype == torch.float32
    assert torch.isfinite(out.probs).all()
    torch.testing.assert_close(out.probs.sum(1), torch.ones(1, 64, 64))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_autocast_matches_fp32(dtype):
    torch.manual_seed(0)
    model = build_model("scm-tiny").cuda().eval()
    inputs = {k: (v.cuda() if v is not None else None) for k, v in make_inputs(model, objects=3).items()}
    with torch.no_grad():
        ref = run_model(model, inputs, frames=3).probs
        with torch.autocast("cuda", dtype=dtype):
            out = run_model(model, inputs, frames=3)
    assert out.logits.dtype == torch.float32
    torch.testing.assert_close(out.probs, ref, atol=0.05, rtol=0.05)
    model.train()
    with torch.autocast("cuda", dtype=dtype):
        out = run_model(model, inputs)
    out.logits.logsumexp(1).mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("after_aspp", [True, False])
def test_spatial_prior_acts_on_the_embedding_it_is_configured_for(after_aspp):
    # SCM §1/§2.1: the prior is learned from "the current embedding generated by the encoder and
    # ASPP module" (default); after_aspp=False applies it to the memory read-out before ASPP.
    torch.manual_seed(0)
    model = build_model("scm-tiny", spatial={"after_aspp": after_aspp}).eval()
    cfg = model.config
    embed = cfg.decoder.channels if after_aspp else 2 * cfg.value_dim
    assert model.spatial_prior.conv.in_channels == embed + 1
    seen = {}
    hooks = [
        model.context.register_forward_hook(lambda m, i, o: seen.update(context_in=i[0], context_out=o)),
        model.spatial_prior.register_forward_hook(lambda m, i, o: seen.update(prior_in=i[0], prior_out=o[0])),
        model.decoder.register_forward_hook(lambda m, i, o: seen.update(decoder_in=i[0])),
    ]
    inputs = make_inputs(model, objects=2)
    with torch.no_grad():
        run_model(model, inputs)
    for h in hooks:
        h.remove()
    if after_aspp:
        assert torch.equal(seen["prior_in"], seen["context_out"])
        assert torch.equal(seen["decoder_in"], seen["prior_out"])
    else:
        assert torch.equal(seen["context_in"], seen["prior_out"])
        assert torch.equal(seen["decoder_in"], seen["context_out"])
