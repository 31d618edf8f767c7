"""A spy for autocast regions, shared by the precision tests of inference and training."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def autocast_spy() -> Iterator[dict[str, int]]:
    """Counts autocast regions entered (torch.autocast.__enter__) and module calls seen inside one."""
    seen = {"entered": 0, "calls": 0, "calls_in_autocast": 0}
    real_enter = torch.autocast.__enter__

    def enter(self):
        seen["entered"] += 1
        return real_enter(self)

    def hook(module, args):
        seen["calls"] += 1
        if torch.is_autocast_enabled("cpu"):
            seen["calls_in_autocast"] += 1

    handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
    torch.autocast.__enter__ = enter  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        torch.autocast.__enter__ = real_enter  # type: ignore[method-assign]
        handle.remove()
