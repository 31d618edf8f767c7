"""Checkpoints of other codebases' layouts -> vosbench checkpoints (``vosbench convert``).

One layout so far, ``stm``: the released STM weights (``STM_weights.pth`` of seoungwugoh/STM), a
``nn.DataParallel(STM()).state_dict()``. Its facts, and how they map onto preset ``stm-r50``:

- ``Encoder_Q`` / ``Encoder_M``: a torchvision ResNet-50 stem (``conv1``, ``bn1``) and ``res2``-
  ``res4`` = ``layer1``-``layer3``; the memory encoder adds two bias-free 7x7 convs on its own mask
  (``conv1_m``) and on the other objects (``conv1_o``) whose outputs are summed with ``conv1``'s,
  i.e. one 5-channel conv with input channels [RGB, mask, others];
- ``KV_Q_r4`` / ``KV_M_r4``: the key (``Key``) and value (``Value``) 3x3 convs;
- ``Decoder.convFM`` reads ``cat([memory read, query value])`` (vosbench concatenates the other way,
  so its input channels are swapped); ``ResMM``, ``RF3`` (stride 8), ``RF2`` (stride 4) with
  ``convFS``/``ResFS``/``ResMM`` are the decoder's residual blocks and skip merges;
- ``Decoder.pred2`` has two output channels read through a softmax: channel 1 minus channel 0 is
  the one sigmoid logit of vosbench's ``decoder.pred``;
- ``mean``/``std`` buffers of both encoders: ImageNet's, which vosbench applies as constants.

Every source tensor is used (the normalisation buffers are checked), and the result is loaded
strictly. A state dict of any other layout is refused with the first missing or unexpected key.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from vosbench.errors import CheckpointError, ConfigError
from vosbench.models.checkpoint import save_checkpoint
from vosbench.models.network import IMAGENET_MEAN, IMAGENET_STD, VOSModel
from vosbench.models.registry import build_model

STM_PRESET = "stm-r50"
_BN_COUNTER = "num_batches_tracked"  # a BatchNorm step counter, not a weight: optional in a source

# vosbench prefix -> official prefix, first match wins (the stem rules come after the stages).
_STM_PREFIXES: tuple[tuple[str, str], ...] = tuple(
    (f"{ours}_encoder.backbone.body.{stage}.", f"Encoder_{tag}.{res}.")
    for ours, tag in (("query", "Q"), ("memory", "M"))
    for stage, res in (("layer1", "res2"), ("layer2", "res3"), ("layer3", "res4"))
) + (
    ("query_encoder.backbone.body.", "Encoder_Q."),
    ("memory_encoder.backbone.body.", "Encoder_M."),
    ("query_encoder.key_value.key.", "KV_Q_r4.Key."),
    ("query_encoder.key_value.value.", "KV_Q_r4.Value."),
    ("memory_encoder.key_value.key.", "KV_M_r4.Key."),
    ("memory_encoder.key_value.value.", "KV_M_r4.Value."),
    ("context.", "Decoder.convFM."),
    ("decoder.res.", "Decoder.ResMM."),
    ("decoder.refine8.skip_conv.", "Decoder.RF3.convFS."),
    ("decoder.refine8.skip_res.", "Decoder.RF3.ResFS."),
    ("decoder.refine8.merge_res.", "Decoder.RF3.ResMM."),
    ("decoder.refine4.skip_conv.", "Decoder.RF2.convFS."),
    ("decoder.refine4.skip_res.", "Decoder.RF2.ResFS."),
    ("decoder.refine4.merge_res.", "Decoder.RF2.ResMM."),
    ("decoder.pred.", "Decoder.pred2."),
)
_MEMORY_CONV1 = "memory_encoder.backbone.body.conv1.weight"
_MEMORY_CONV1_SOURCES = ("Encoder_M.conv1.weight", "Encoder_M.conv1_m.weight", "Encoder_M.conv1_o.weight")
_NORMALISATION = {
    f"Encoder_{tag}.{name}": torch.tensor(values).view(1, 3, 1, 1)
    for tag in ("Q", "M")
    for name, values in (("mean", IMAGENET_MEAN), ("std", IMAGENET_STD))
}


def stm_name(key: str) -> str:
    """The official STM name of a vosbench ``stm-r50`` state-dict key (``module.`` not included)."""
    for ours, theirs in _STM_PREFIXES:
        if key.startswith(ours):
            return theirs + key[len(ours) :]
    raise KeyError(f"'{key}' has no counterpart in the STM layout")


def stm_sources(key: str) -> tuple[str, ...]:
    """The official tensors that make vosbench's ``key`` (several for the merged memory stem)."""
    return _MEMORY_CONV1_SOURCES if key == _MEMORY_CONV1 else (stm_name(key),)


def _swap_halves(weight: torch.Tensor) -> torch.Tensor:
    """convFM input channels [a, b] -> [b, a] (its own inverse: the halves are both value_dim wide)."""
    half = weight.shape[1] // 2
    return torch.cat([weight[:, half:], weight[:, :half]], dim=1)


def _from_stm_tensor(key: str, sources: list[torch.Tensor]) -> torch.Tensor:
    if key == _MEMORY_CONV1:
        return torch.cat(sources, dim=1)  # O,3+1+1,7,7: conv1(f) + conv1_m(m) + conv1_o(o)
    (src,) = sources
    if key == "context.weight":
        return _swap_halves(src)
    if key.startswith("decoder.pred."):
        return src[1:2] - src[0:1]  # softmax over 2 channels = sigmoid of their difference
    return src


def _strip_wrapper(state: Mapping[str, object]) -> dict[str, object]:
    """Keys without the ``module.`` prefix that ``nn.DataParallel`` adds (a bare ``STM()`` has none)."""
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def _check_normalisation(state: Mapping[str, torch.Tensor], origin: str) -> None:
    for name, expected in _NORMALISATION.items():
        have = state[name]
        if tuple(have.shape) != tuple(expected.shape) or not torch.allclose(have.float(), expected, atol=1e-6):
            raise CheckpointError(
                f"{origin}: '{name}' is {have.flatten().tolist()}, not ImageNet's "
                f"{expected.flatten().tolist()} (vosbench normalises with ImageNet's statistics)"
            )


def state_dict_from_stm(
    state: Mapping[str, object], model: VOSModel, origin: str = "state dict"
) -> dict[str, torch.Tensor]:
    """An official STM state dict -> a state dict that ``model`` (preset ``stm-r50``) loads strictly.

    Raises :class:`CheckpointError` naming the first missing or unexpected key, or a wrong shape.
    """
    src = _strip_wrapper(state)
    bad = next((k for k, v in src.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise CheckpointError(f"{origin}: not a state dict of tensors (entry {bad!r})")
    own = model.state_dict()
    needed = {key: stm_sources(key) for key in own}
    expected = [name for names in needed.values() for name in names] + list(_NORMALISATION)
    missing = [n for n in expected if n not in src and not n.endswith(_BN_COUNTER)]
    unexpected = sorted(set(src) - set(expected))
    if missing or unexpected:
        detail = f"missing '{missing[0]}'" if missing else f"unexpected '{unexpected[0]}'"
        raise CheckpointError(f"{origin}: not the STM layout ({detail})")
    _check_normalisation(src, origin)  # type: ignore[arg-type]
    out: dict[str, torch.Tensor] = {}
    for key, names in needed.items():
        if key.endswith(_BN_COUNTER) and names[0] not in src:
            out[key] = own[key]  # counters are not weights; older torch wrote none
            continue
        tensor = _from_stm_tensor(key, [src[n] for n in names])  # type: ignore[misc]
        if tuple(tensor.shape) != tuple(own[key].shape):
            shapes = ", ".join(f"'{n}' {tuple(src[n].shape)}" for n in names)  # type: ignore[union-attr]
            raise CheckpointError(
                f"{origin}: {shapes} do not fit '{key}' {tuple(own[key].shape)} of {STM_PRESET}"
            )
        out[key] = tensor.to(own[key].dtype)
    return out


def state_dict_to_stm(model: VOSModel) -> dict[str, torch.Tensor]:
    """The inverse of :func:`state_dict_from_stm`: ``model``'s weights in the released layout
    (``module.``-prefixed, as ``nn.DataParallel(STM()).state_dict()``), e.g. to compare with the
    official code."""
    if model.config.name != STM_PRESET:
        raise ConfigError(f"only '{STM_PRESET}' has the STM layout, not '{model.config.name}'")
    out: dict[str, torch.Tensor] = {}
    for key, tensor in model.state_dict().items():
        t = tensor.detach().cpu()
        if key == _MEMORY_CONV1:
            for i, name in enumerate(_MEMORY_CONV1_SOURCES):
                out[name] = t[:, :3] if i == 0 else t[:, 2 + i : 3 + i]
            continue
        if key == "context.weight":
            t = _swap_halves(t)
        elif key.startswith("decoder.pred."):
            t = torch.cat([torch.zeros_like(t), t])  # channel 1 - channel 0 = the logit
        out[stm_name(key)] = t.clone()
    out.update({name: value.clone() for name, value in _NORMALISATION.items()})
    return {f"module.{k}": v for k, v in out.items()}


def _load_stm(path: Path) -> VOSModel:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(exc).__name__})") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not a state dict (a {type(obj).__name__})")
    model = build_model(STM_PRESET)
    model.load_state_dict(state_dict_from_stm(obj, model, origin=str(path)), strict=True)
    return model.eval()


FORMATS: dict[str, Callable[[Path], VOSModel]] = {"stm": _load_stm}


def convert_checkpoint(
    weights: str | os.PathLike, fmt: str, out: str | os.PathLike, overwrite: bool = False
) -> Path:
    """Read ``weights`` of layout ``fmt`` (see :data:`FORMATS`) and write a vosbench checkpoint.

    Nothing is written unless the whole conversion succeeds (the output is written atomically).
    """
    weights, out = Path(weights), Path(out)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown checkpoint format '{fmt}' (known: {', '.join(sorted(FORMATS))})")
    if not weights.is_file():
        raise CheckpointError(f"{weights}: checkpoint not found")
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} exists (pass --overwrite to replace it)")
    if out.resolve() == weights.resolve():
        raise ConfigError(f"{out}: the output would replace the input")
    model = FORMATS[fmt](weights)
    return save_checkpoint(out, model, converted_from={"format": fmt, "file": weights.name})
