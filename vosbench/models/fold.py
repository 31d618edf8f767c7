"""Inference-only rewrites of a trained network: BatchNorm folded into the convolution before it,
and weights stored in the compute dtype.

Both are for the reduced-precision inference path (``--precision bf16|fp16``): an eval-mode
BatchNorm is an affine map per channel, so ``bn(conv(x))`` equals one convolution with scaled
weights and a new bias, which saves a full pass over every activation of the trunk; weights
already in the compute dtype spare autocast one cast per convolution per call. The fp32 path
keeps the network as trained (it is the reference numerics).

Folding needs the data flow, not just the module tree: each backbone trunk is traced with
``torch.fx`` (convolutions and BatchNorms as leaves), and a BatchNorm is folded only when its
input is a convolution's output that nothing else reads.
"""

from __future__ import annotations

import torch
import torch.fx as fx
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

_BN = nn.modules.batchnorm._BatchNorm
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)


class _LeafTracer(fx.Tracer):
    """Traces through containers but keeps convolutions and BatchNorms (subclasses too) as calls."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, (_BN, nn.Conv2d)) or super().is_leaf_module(m, qualname)


def _set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def fold_batchnorm(module: nn.Module) -> int:
    """Fold every BatchNorm of ``module`` that directly follows a convolution into it (in place).

    ``module``'s ``forward`` must be traceable by ``torch.fx`` (a timm trunk is) and it must be in
    eval mode: running statistics are what gets folded. A folded BatchNorm becomes
    ``nn.Identity``. Returns how many were folded.
    """
    if module.training:
        raise ValueError("fold_batchnorm needs an eval-mode module (it folds the running statistics)")
    graph = _LeafTracer().trace(module)
    modules = dict(module.named_modules())
    folded = 0
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), _BN):
            continue
        bn = modules[node.target]
        src = node.args[0] if node.args else None
        if not (isinstance(src, fx.Node) and src.op == "call_module" and len(src.users) == 1):
            continue
        conv = modules.get(src.target)
        if type(conv) is not nn.Conv2d or bn.running_mean is None or bn.running_var is None:
            continue
        if not bn.affine:
            bn_w, bn_b = torch.ones_like(bn.running_mean), torch.zeros_like(bn.running_mean)
        else:
            bn_w, bn_b = bn.weight, bn.bias
        with torch.no_grad():
            w, b = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn_w, bn_b)
        conv.weight, conv.bias = w, b
        _set_submodule(module, node.target, nn.Identity())
        folded += 1
    return folded


def fold_backbones(model: nn.Module) -> int:
    """:func:`fold_batchnorm` on every backbone trunk of a vosbench network (the only BatchNorms)."""
    from vosbench.models.backbone import Backbone

    return sum(fold_batchnorm(m.body) for m in model.modules() if isinstance(m, Backbone))


def cast_weights(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Store the weights and biases of every convolution and linear layer in ``dtype`` (in place).

    Other parameters and buffers (normalisation constants, the remaining BatchNorms) stay float32.
    Meant for inference under autocast to the same dtype, which then has nothing to cast.
    """
    for m in model.modules():
        if isinstance(m, _WEIGHTED):
            m.to(dtype)
    return model
