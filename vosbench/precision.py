"""Device and numeric precision of a run: one resolution rule for ``infer``, ``train`` and the rest.

``--device auto`` is CUDA when available, else the CPU. ``--precision auto`` is:

- on a CPU whose PyTorch build reports native bf16 matmul (AVX-512 BF16 or AMX): ``bf16``;
- on CUDA: ``fp16`` for inference; for training ``bf16`` where the GPU has bf16 tensor cores
  (compute capability 8.0 or later: A100, H100, RTX 30xx/40xx, L4, ...), else ``fp16`` with gradient
  scaling (V100, T4, RTX 20xx: ``torch.cuda.is_bf16_supported()`` says True there too, because
  it counts emulation, which runs bf16 through fp32 units at a fraction of the speed);
- ``fp32`` elsewhere.

:func:`resolve_numerics` is called once at a run's edge (the CLI command or the library entry
point); the :class:`Numerics` it returns, with the reason of an ``auto`` choice and the GPU's name,
is passed down to the engine, the finetuning and the model set-up, which do not resolve again.

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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from vosbench.errors import ConfigError

if TYPE_CHECKING:  # torch loads when a function runs: the CLI reads the help texts without it
    import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
Purpose = Literal["infer", "train"]
PRECISION_HELP = (
    "Compute precision: auto (bf16 on a CPU with native bf16 matmul, else fp32; on CUDA fp16 for inference, "
    "and for training bf16 on GPUs with bf16 tensor cores (compute capability 8.0+), else fp16 with gradient "
    "scaling), fp32 (no autocast, no TF32), bf16 or fp16."
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


def cuda_native_bf16(device: torch.device) -> bool:
    """Whether the GPU has bf16 tensor cores (compute capability >= 8.0; ROCm GPUs do).

    Not ``torch.cuda.is_bf16_supported()``: by default it also counts emulation (a V100 or T4
    "supports" bf16 through fp32 units) and it asks about the *current* device, not ``device``.
    """
    import torch

    if torch.version.hip:
        return True
    return torch.cuda.get_device_capability(device)[0] >= 8


def visible_nvidia_gpus(timeout: float = 10.0) -> list[str]:
    """``name (driver X)`` of every GPU ``nvidia-smi`` lists; empty without nvidia-smi or GPUs."""
    import shutil
    import subprocess

    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    gpus = []
    for line in out.stdout.splitlines():
        name, _, driver = line.strip().rpartition(",")
        if name.strip():
            gpus.append(f"{name.strip()} (driver {driver.strip()})")
    return gpus


def _cuda_unusable_message(gpus: list[str]) -> str:
    """One line: GPUs are there but this PyTorch cannot use them, and how to pick the wheel."""
    import torch

    built = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
    listed = gpus[0] + (f" and {len(gpus) - 1} more" if len(gpus) > 1 else "")
    return (
        f"--device auto: nvidia-smi sees {len(gpus)} GPU(s) ({listed}) but PyTorch {torch.__version__} "
        f"({built}) cannot use them, so the run would silently fall back to the CPU: the NVIDIA driver is "
        "older than the CUDA version of the torch wheel (or the wheel has no CUDA); reinstall torch for "
        "your driver, e.g. TORCH_INDEX=cu121 bash scripts/setup.sh (nvidia-smi's header shows the highest "
        "CUDA the driver runs), or pass --device cpu to run on the CPU on purpose"
    )


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cpu``, ``cuda`` and ``cuda:N`` are checked.

    ``auto`` does not fall back to the CPU when ``nvidia-smi`` lists GPUs that PyTorch cannot use
    (a driver older than the wheel's CUDA, or a CPU-only wheel): one ConfigError line says how to
    install the matching wheel instead.
    """
    import torch

    text = str(device).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        gpus = visible_nvidia_gpus()
        if gpus:
            raise ConfigError(_cuda_unusable_message(gpus))
        return torch.device("cpu")
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
    if device.type == "cuda" and precision == "bf16" and not cuda_native_bf16(device):
        major, minor = torch.cuda.get_device_capability(device)
        return (f"this GPU (compute capability {major}.{minor}) has no bf16 tensor cores (8.0 or later); "
                "use --precision fp16 or fp32")
    return None


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else one ConfigError line."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def _auto_precision(device: torch.device, purpose: Purpose) -> tuple[str, str]:
    """(precision, why) of ``--precision auto`` on ``device`` for ``purpose``."""
    if device.type == "cpu":
        if cpu_has_native_bf16():
            return "bf16", "auto: this CPU has native bf16 matmul (AVX-512 BF16 or AMX)"
        return "fp32", "auto: this CPU has no native bf16 matmul"
    if device.type == "cuda":
        import torch

        major, minor = torch.cuda.get_device_capability(device)
        if purpose == "infer":
            return "fp16", f"auto: fp16 inference on CUDA (compute capability {major}.{minor})"
        if cuda_native_bf16(device):
            return "bf16", f"auto: training on bf16 tensor cores (compute capability {major}.{minor} >= 8.0)"
        return "fp16", (f"auto: no bf16 tensor cores (compute capability {major}.{minor} < 8.0): "
                        "fp16 with gradient scaling")
    return "fp32", "auto: fp32 on this device"


def resolve_precision(precision: str, device: torch.device, purpose: Purpose = "infer") -> str:
    """The concrete precision (``fp32``, ``bf16`` or ``fp16``) for ``device``; see the module docstring."""
    return _resolve_precision(precision, device, purpose)[0]


def _resolve_precision(precision: str, device: torch.device, purpose: Purpose) -> tuple[str, str]:
    text = check_precision(precision)
    if text == "auto":
        return _auto_precision(device, purpose)
    why = _supported(text, device)
    if why is not None:
        raise ConfigError(f"--precision {text} --device {device}: {why}")
    return text, "as requested"


@dataclass(frozen=True)
class Numerics:
    """A resolved device and precision, with the autocast region and memory format they imply."""

    device: torch.device
    precision: str  # fp32 | bf16 | fp16
    purpose: Purpose = "infer"
    reason: str = field(default="", compare=False)  # why this precision ("auto: ..." or "as requested")

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

    def announce(self) -> str:
        """One line for the start of a run: device, GPU name, precision and why."""
        return f"{self.purpose} on {device_name(self.device)}, {self.precision} ({self.reason or 'as requested'})"


def device_name(device: torch.device) -> str:
    """``cuda:0 (NVIDIA H100 80GB HBM3, compute capability 9.0)``, ``cpu (x86_64, 16 threads)``."""
    import torch

    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"cuda:{index} ({props.name}, compute capability {props.major}.{props.minor})"
    if device.type == "cpu":
        return f"cpu ({platform.machine() or 'unknown'}, {torch.get_num_threads()} threads)"
    return str(device)


def resolve_numerics(device: str | torch.device = "auto", precision: str = "auto", purpose: Purpose = "infer") -> Numerics:
    """Check and resolve a ``--device`` / ``--precision`` pair (one :class:`ConfigError` line when unsupported)."""
    import torch

    dev = device if isinstance(device, torch.device) else resolve_device(device)
    concrete, why = _resolve_precision(precision, dev, purpose)
    return Numerics(dev, concrete, purpose, why)


def apply_backend_policy(numerics: Numerics) -> None:
    """Set PyTorch's process-wide CUDA switches for a run (once, at its entry point; no-op off CUDA).

    - ``cudnn.benchmark``: on. A run's shapes repeat (a video's frames, training crops), so cuDNN
      times its convolution algorithms once per shape and keeps the fastest.
    - TF32 (the float32 matmuls and convolutions of tensor-core GPUs, 10-bit mantissa): off for
      ``--precision fp32``, which is the reference numerics (true IEEE float32, also in cuDNN's
      convolutions, where PyTorch's default allows TF32); on for bf16/fp16 runs, where it only
      touches the parts kept in float32 outside autocast (aggregation, losses).
    """
    import torch

    if numerics.device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = True
    mode = "ieee" if numerics.precision == "fp32" else "tf32"
    torch.backends.cuda.matmul.fp32_precision = mode
    torch.backends.cudnn.conv.fp32_precision = mode
