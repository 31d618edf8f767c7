"""The inference runtime of issue 25: numerics resolved once and passed down (finetuning trains with
its own ``auto``), fp16 finetuning steps that are not skipped, one network copy per member, a memory
read whose attention gets channel-contiguous keys/values (the fused kernel), I/O threads, and SLURM
tasks that split a split's sequences longest-first."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from typer.testing import CliRunner

from vosbench.errors import NumericalError
from vosbench.infer import InferOptions, infer_dataset
from vosbench.infer.engine import EngineConfig
from vosbench.infer.ensemble import load_members
from vosbench.infer.finetune import step_without_skipping
from vosbench.infer.frameio import BackgroundWriter, FramePrefetcher
from vosbench.infer.memory import MemoryBank
from vosbench.infer.recipe import MemberSpec, Recipe
from vosbench.models.memory import memory_read
from vosbench.precision import Numerics
from vosbench_cli.main import app

SLURM_VARS = ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT",
              "RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_NPROCS", "SLURM_STEP_ID", "SLURM_STEPID")


def test_finetuning_trains_with_its_own_auto_not_the_inference_precision(make_davis_root, tiny_checkpoint, tmp_path,
                                                                         monkeypatch):
    """On CUDA, auto infers in fp16 but trains in bf16 where the GPU has it; the finetuning must get
    the training resolution, not the inference one (stood in here by a fake resolution rule)."""
    import vosbench.infer.ensemble as ensemble
    import vosbench.infer.run as run

    def fake_rule(device, precision, purpose="infer"):
        return Numerics(torch.device("cpu"), "fp32" if purpose == "infer" else "bf16", purpose)

    seen = []
    real = ensemble.finetune_model

    def spy(model, image, mask, ids, config, *args, **kwargs):
        seen.append(config.numerics.precision if getattr(config, "numerics", None) else config.precision)
        cheap = type(config)(steps=1, lr=config.lr, precision="fp32")
        return real(model, image, mask, ids, cheap, *args, **kwargs)

    monkeypatch.setattr(run, "resolve_numerics", fake_rule)
    monkeypatch.setattr(ensemble, "finetune_model", spy)
    root = make_davis_root({"alpha": (2, 1)}, size=(16, 16))
    infer_dataset(str(tiny_checkpoint("stm-tiny")), root, out=tmp_path / "out",
                  options=InferOptions(finetune_steps=1, precision="auto"))
    assert seen == ["bf16"]


def test_an_overflowing_fp16_step_is_redone_not_skipped():
    """A GradScaler alone skips a step whose scaled gradients overflow; finetuning redoes it."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 1)
    start = layer.weight.detach().clone()
    optimizer = torch.optim.SGD(layer.parameters(), lr=1e-40)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    x = torch.ones(1, 3)
    # gradient 1e35 per weight: x 2**16 overflows float32 (3.4e38), x 2**11 does not
    tries = step_without_skipping(scaler, optimizer, lambda: 1e35 * layer(x).sum())
    assert tries == 6 and scaler.get_scale() == 2.0**11
    assert not torch.equal(layer.weight, start)  # the step was taken
    with pytest.raises(NumericalError, match="non-finite at every loss scale"):
        step_without_skipping(scaler, optimizer, lambda: layer(x).sum() * math.inf)


def _unique_bytes(*modules) -> int:
    seen, total = set(), 0
    for m in modules:
        if m is None:
            continue
        for t in [*m.parameters(), *m.buffers()]:
            if t.data_ptr() not in seen:
                seen.add(t.data_ptr())
                total += t.numel() * t.element_size()
    return total


def test_an_ensemble_member_keeps_one_copy_of_its_network(tiny_checkpoint):
    """bf16 inference runs a folded copy in bf16; the fp32 network is not kept next to it (and the
    fp32 one, not the copy, is kept when the run fine-tunes)."""
    recipe = Recipe(members=[MemberSpec(tiny_checkpoint("stm-tiny"))])
    engine = EngineConfig(precision="bf16", numerics=Numerics(torch.device("cpu"), "bf16"))
    (member,) = load_members(recipe, "cpu", engine)
    held = [m for m in (member.model, member.engine_model) if m is not None]
    assert len(held) == 1
    fp32 = sum(p.numel() * 4 for p in held[0].parameters())
    assert _unique_bytes(*held) < 0.6 * fp32  # bf16 weights only (BN folded away)
    (tunable,) = load_members(recipe, "cpu", engine, trainable=True)
    assert tunable.engine_model is None and all(p.dtype == torch.float32 for p in tunable.model.parameters())


def _reference_read(qk: torch.Tensor, mk: torch.Tensor, mv: torch.Tensor) -> torch.Tensor:
    """STM Eq. 1-3 by hand, per object: softmax over memory positions of q.k / sqrt(Ck)."""
    b, ck, h, w = qk.shape
    q = qk.reshape(ck, h * w)
    outs = []
    for o in range(mk.shape[1]):
        k = mk[0, o].reshape(ck, -1)
        v = mv[0, o].reshape(mv.shape[2], -1)
        a = torch.softmax((k.T @ q) / math.sqrt(ck), dim=0)  # N,L
        outs.append((v @ a).reshape(-1, h, w))
    return torch.stack(outs)[None]


@pytest.mark.parametrize("value_dim", [8, 20])
def test_memory_read_of_the_bank_uses_the_fused_kernel_and_equals_the_reference(value_dim: int):
    torch.manual_seed(0)
    bank = MemoryBank(capacity=6)
    for t in range(4):
        bank.add(torch.randn(1, 2, 8, 3, 5), torch.randn(1, 2, value_dim, 3, 5), t, permanent=t % 2 == 0)
    mk, mv = bank.read()
    assert mk.flatten(3).transpose(2, 3).stride(-1) == 1 and mv.flatten(3).transpose(2, 3).stride(-1) == 1
    qk = torch.randn(1, 8, 4, 6)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):  # no math fallback allowed
        out = memory_read(qk, mk, mv)
    torch.testing.assert_close(out, _reference_read(qk, mk, mv), rtol=1e-4, atol=1e-5)
    since_k, since_v = bank.read(since=1)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        out = memory_read(qk, since_k, since_v)
    torch.testing.assert_close(out, _reference_read(qk, since_k, since_v), rtol=1e-4, atol=1e-5)


def test_memory_read_of_a_channels_first_input_still_reaches_the_fused_kernel():
    """Keys/values laid out C,T,h,w (training's memory): their N,C views have channel stride N,
    which every fused SDPA kernel refuses; the read copies them once into N,C."""
    torch.manual_seed(1)
    qk, mk, mv = torch.randn(1, 8, 4, 6), torch.randn(1, 3, 8, 2, 3, 5), torch.randn(1, 3, 8, 2, 3, 5)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        out = memory_read(qk, mk, mv)
    torch.testing.assert_close(out, _reference_read(qk, mk, mv), rtol=1e-4, atol=1e-5)


def test_prefetcher_and_writer_keep_order_and_raise_a_worker_error():
    from concurrent.futures import ThreadPoolExecutor

    frames = [np.full((2, 3, 3), i, np.uint8) for i in range(7)]
    with ThreadPoolExecutor(2) as pool:
        pre = FramePrefetcher(pool, lambda i: frames[i], len(frames), ahead=3)
        got = [pre.get(i) for i in range(7)]
        assert [int(f[0, 0, 0]) for f, _ in got] == list(range(7))
        assert got[3][1].shape == (3, 2, 3) and int(got[3][1][0, 0, 0]) == 3
        written = []
        writer = BackgroundWriter(pool, limit=2)
        for i in range(5):
            writer.submit(written.append, i)
        writer.flush()
        assert sorted(written) == list(range(5))

        def fail() -> None:
            raise OSError(28, "No space left on device")

        writer.submit(fail)
        with pytest.raises(OSError, match="No space left"):
            writer.flush()


def test_two_slurm_tasks_split_the_sequences_longest_first(make_davis_root, tiny_checkpoint, tmp_path, monkeypatch):
    root = make_davis_root({"alpha": (2, 1), "beta": (5, 1), "gamma": (2, 1), "delta": (3, 1)}, size=(16, 16))
    for name in SLURM_VARS:
        monkeypatch.delenv(name, raising=False)
    written = []
    for task in ("0", "1"):
        out = tmp_path / f"task{task}"
        env = {"SLURM_PROCID": task, "SLURM_NTASKS": "2", "SLURM_LOCALID": task, "SLURM_STEP_ID": "0"}  # srun tasks
        res = CliRunner().invoke(app, ["infer", "--checkpoint", str(tiny_checkpoint("stm-tiny")), "--data", str(root),
                                       "--out", str(out), "--device", "cpu"], env=env)
        assert res.exit_code == 0, res.output
        names = sorted(p.name for p in out.iterdir())
        assert f"rank {task}/2 takes {len(names)} of 4 sequences" in res.output
        # device, precision and why, said before the work (the summary at the end says it again)
        lines = res.output.splitlines()
        said = next(i for i, ln in enumerate(lines) if ln.startswith("infer on cpu ("))
        assert "(auto: this CPU" in lines[said] and said < next(i for i, ln in enumerate(lines) if ln.startswith("rank "))
        written.append(names)
    # by hand: beta (5) -> 0, delta (3) -> 1, alpha (2) -> 1, gamma (2) -> 0: 7 and 5 frames
    assert written == [["beta", "gamma"], ["alpha", "delta"]]
