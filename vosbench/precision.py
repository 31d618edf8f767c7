"""Device and numeric precision of a run: one resolution rule for ``infer``, ``train`` and the rest.

``--device auto`` is CUDA when available, else the CPU. ``--precision auto`` is:

- on a CPU whose PyTorch build reports native bf16 matmul (AVX-512 BF16 or AMX): ``bf16``;
- on CUDA: ``fp16`` for inference, ``bf16`` for training where the GPU supports it (else ``fp16``
  with gradient scaling);
- ``fp32`` elsewhere.

``fp32`` runs no autocast region at all. ``bf16``/``fp16`` run the networks under
``torch.autocast``; the memory bank stores keys and values in that dtype, while soft aggregation,
the final softmax and the losses stay in float32 (they cast explicitly).

channels_last (NHWC) is used on CUDA, and for bf16 on CPU, where it was measured faster: inference
(benchmarks/infer_speed.py --real-data: stm-r50 at 854x480, bf16 1.98x fp32, bf16 + channels_last 2.53x) and
training (stm-tiny batch 4 at 96x160, one step: fp32 0.38 s, bf16 0.29 s, bf16 + channels_last 0.24 s).
"""

from __future__ import annotations

import contextlib
import platform
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from vosbench.errors import ConfigError

if TYPE_CHECKING:  # torch loads when a function runs: the CLI reads the help texts without it
    import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
Purpose = Literal["infer", "train"]
PRECISION_HELP = (
    "Compute precision: auto (bf16 on a CPU with native bf16 matmul, fp16 on CUDA for inference and "
    "bf16 for training where the GPU has it, else fp32), fp32 (no autocast anywhere), bf16 or fp16."
)
DEVICE_HELP = "auto (CUDA if available, else the CPU), cpu, cuda or cuda:N."


def cpu_has_native_bf16() -> bool:
    """Whether PyTorch reports native bf16 matmul on this CPU (AVX-512 BF16 or AMX tiles on x86)."""
    import torch

    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
        cpu = torch.cpu
        checks = (getattr(cpu, "_is_avx512_bf16_supported", None), getattr(cpu, "_is_amx_tile_supported", None))
        return any(bool(check()) for check in checks if check is not None)
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)  # ARM: oneDNN's own query
    return bool(check()) if check is not None else False


def cpu_has_native_fp16() -> bool:
    """Whether PyTorch's oneDNN reports native fp16 compute on this CPU (AMX-FP16, AVX-512 FP16)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_fp16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cpu``, ``cuda`` and ``cuda:N`` are checked."""
    import torch

    text = str(device).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind, _, index = text.partition(":")
    if kind not in ("cpu", "cuda") or (index and not (kind == "cuda" and index.isdigit())):
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got {str(device)!r}")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {text}: CUDA is not available on this machine (use --device cpu or auto)")
        if index and int(index) >= torch.cuda.device_count():
            raise ConfigError(f"--device {text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return torch.device(text)


def _supported(precision: str, device: torch.device) -> str | None:
    """Why ``precision`` cannot run on ``device`` (None when it can)."""
    import torch

    if precision == "fp32":
        return None
    if device.type == "cpu":
        if precision == "bf16" and not cpu_has_native_bf16():
            return "this CPU has no native bf16 matmul (AVX-512 BF16 or AMX) in PyTorch's report; use --precision fp32"
        if precision == "fp16" and not cpu_has_native_fp16():
            return "this CPU has no native fp16 compute in PyTorch's report; use --precision bf16 or fp32"
        return None
    if device.type == "cuda" and precision == "bf16" and not torch.cuda.is_bf16_supported():
        return "this GPU does not support bf16; use --precision fp16 or fp32"
    return None


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else one ConfigError line."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def resolve_precision(precision: str, device: torch.device, purpose: Purpose = "infer") -> str:
    """The concrete precision (``fp32``, ``bf16`` or ``fp16``) for ``device``; see the module docstring."""
    import torch

    text = check_precision(precision)
    if text == "auto":
        if device.type == "cpu":
            return "bf16" if cpu_has_native_bf16() else "fp32"
        if device.type == "cuda":
            if purpose == "train" and torch.cuda.is_bf16_supported():
                return "bf16"
            return "fp16"
        return "fp32"
    why = _supported(text, device)
    if why is not None:
        raise ConfigError(f"--precision {text} --device {device}: {why}")
    return text


@dataclass(frozen=True)
class Numerics:
    """A resolved device and precision, with the autocast region and memory format they imply."""

    device: torch.device
    precision: str  # fp32 | bf16 | fp16
    purpose: Purpose = "infer"

    @property
    def dtype(self) -> torch.dtype:
        """The compute dtype of the networks (float32 when no autocast runs)."""
        import torch

        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]

    @property
    def channels_last(self) -> bool:
        if self.device.type == "cuda":
            return True
        return self.device.type == "cpu" and self.precision == "bf16"

    @property
    def needs_grad_scaler(self) -> bool:
        return self.precision == "fp16"

    def autocast(self) -> contextlib.AbstractContextManager:
        """``torch.autocast`` for bf16/fp16; no region at all for fp32."""
        import torch

        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def describe(self) -> str:
        return f"{self.device} {self.precision}"


def resolve_numerics(device: str | torch.device = "auto", precision: str = "auto", purpose: Purpose = "infer") -> Numerics:
    """Check and resolve a ``--device`` / ``--precision`` pair (one :class:`ConfigError` line when unsupported)."""
    import torch

    dev = device if isinstance(device, torch.device) else resolve_device(device)
    return Numerics(dev, resolve_precision(precision, dev, purpose), purpose)
