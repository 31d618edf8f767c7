"""hf: members (transformers video trackers): SAM 2's own loop on real clips, the label rule, memory
bounds, and bad specs. The reference loop below is written against transformers directly (the
documented semi-supervised usage), not with the adapter's code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vosbench.data.imageio import read_frame, read_mask, write_mask
from vosbench.infer import InferOptions, infer_dataset
from vosbench.infer.hf_video import HFVideoModel, sam_probabilities
from vosbench_cli.main import app

from ..conftest import REAL_SEQUENCES, REAL_VOS

transformers = pytest.importorskip("transformers")
if not hasattr(transformers, "Sam2VideoModel"):
    pytest.skip("transformers without Sam2VideoModel (needs >= 5)", allow_module_level=True)

FRAMES = 8  # of each real clip: short, so the tests stay fast on a shared CPU
NEAR_ZERO = 0.05  # |logit| below this is a near-tie of random weights: not compared


@pytest.fixture(scope="module")
def tiny_sam2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vosbench.infer.hf_tiny import write_tiny_tracker

    return write_tiny_tracker(tmp_path_factory.mktemp("hf") / "sam2-tiny", image_size=64)


def _link_clip(root: Path, name: str, n: int, masks: dict[int, np.ndarray] | None = None) -> None:
    """``name``'s first ``n`` real frames into ``root`` (DAVIS layout); masks: the given ones, else frame 0's GT."""
    src = REAL_VOS / REAL_SEQUENCES[name]
    frames = sorted((src / "JPEGImages" / "480p" / name).glob("*.jpg"))[:n]
    (root / "JPEGImages" / "480p" / name).mkdir(parents=True)
    for f in frames:
        os.symlink(f, root / "JPEGImages" / "480p" / name / f.name)
    if masks is None:
        masks = {0: read_mask(src / "Annotations" / "480p" / name / "00000.png")}
    for t, m in masks.items():
        write_mask(root / "Annotations" / "480p" / name / f"{t:05d}.png", m)
    sets = root / "ImageSets" / "2017"
    sets.mkdir(parents=True, exist_ok=True)
    with open(sets / "val.txt", "a") as fh:
        fh.write(f"{name}\n")


def _gt(name: str, t: int) -> np.ndarray:
    return read_mask(REAL_VOS / REAL_SEQUENCES[name] / "Annotations" / "480p" / name / f"{t:05d}.png")


CLASSES = {  # model_type -> (model, processor) as transformers documents them
    "sam2_video": ("Sam2VideoModel", "Sam2VideoProcessor"),
    "edgetam_video": ("EdgeTamVideoModel", "Sam2VideoProcessor"),
    "sam3_tracker_video": ("Sam3TrackerVideoModel", "Sam3TrackerVideoProcessor"),
}


def direct_loop(folder: Path, frames: list[np.ndarray], prompts: dict[int, np.ndarray], family: str = "sam2_video"):
    """SAM 2's semi-supervised loop on transformers: mask prompts on their frames (each object on the
    first frame it appears in), propagation, and tools/vos_inference.py's rule (the lowest object id
    whose logit is > 0 wins). Returns per-frame (labels, logits K,H,W, object ids)."""
    model_cls, proc_cls = (getattr(transformers, n) for n in CLASSES[family])
    model = model_cls.from_pretrained(folder).eval()
    proc = proc_cls.from_pretrained(folder)
    session = proc.init_video_session(video=frames, inference_device="cpu", dtype=torch.float32)
    h, w = frames[0].shape[:2]
    seen: set[int] = set()
    results = []
    with torch.inference_mode():
        for t in range(len(frames)):
            if t in prompts:
                ids = [int(o) for o in np.unique(prompts[t]) if o and int(o) not in seen]
                seen.update(ids)
                proc.add_inputs_to_inference_session(session, frame_idx=t, obj_ids=ids,
                                                     input_masks=[prompts[t] == o for o in ids])
            out = model(inference_session=session, frame_idx=t)
            logits = proc.post_process_masks([out.pred_masks], original_sizes=[[h, w]], binarize=False)[0][:, 0]
            labels = np.zeros((h, w), np.uint8)
            for oid in sorted(out.object_ids, reverse=True):  # lower ids painted last: they win overlaps
                labels[(logits[out.object_ids.index(oid)] > 0).numpy()] = oid
            results.append((labels, logits, list(out.object_ids)))
    return results


def _compare(out: Path, name: str, reference, prompted: set[int]) -> tuple[int, int]:
    """(pixels compared, pixels differing) over the frames without a prompt."""
    compared = differing = 0
    frames = sorted((out / name).glob("*.png"))
    assert len(frames) == len(reference)
    for t, (path, (labels, logits, _)) in enumerate(zip(frames, reference)):
        if t in prompted:
            continue
        clear = (logits.abs() > NEAR_ZERO).all(0).numpy()
        got = read_mask(path)
        compared += int(clear.sum())
        differing += int((got != labels)[clear].sum())
    return compared, differing


def _options(**kw) -> InferOptions:
    return InferOptions.resolve(None, device="cpu", precision="fp32", **kw)


def test_single_member_equals_sam2_loop_on_real_clips(tiny_sam2: Path, tmp_path: Path) -> None:
    root = tmp_path / "davis"
    for name in ("car-shadow", "libby"):
        _link_clip(root, name, FRAMES)
    summary = infer_dataset(f"hf:{tiny_sam2}", root, "val", out=tmp_path / "out", options=_options(save_probs=True))
    assert [s.status for s in summary.sequences] == ["written", "written"]
    for name in ("car-shadow", "libby"):
        frames = [read_frame(p) for p in sorted((root / "JPEGImages" / "480p" / name).glob("*.jpg"))]
        reference = direct_loop(tiny_sam2, frames, {0: _gt(name, 0)})
        compared, differing = _compare(tmp_path / "out", name, reference, {0})
        assert compared > 0.9 * (FRAMES - 1) * 480 * 854 and differing == 0, (name, compared, differing)
        assert np.array_equal(read_mask(tmp_path / "out" / name / "00000.png"), _gt(name, 0))
    record = json.loads((tmp_path / "out" / "libby" / "provenance.json").read_text())
    (entry,) = record["checkpoints"]
    assert entry["model"] == f"hf:{tiny_sam2}" and entry["model_type"] == "sam2_video" and len(entry["sha256"]) == 64


def test_objects_joining_later_are_prompted_on_their_first_frame(tiny_sam2: Path, tmp_path: Path) -> None:
    """blackswan split into two objects (left/right half) on frame 0; the whole swan joins as object 3
    on frame 4 and overlaps both, so the lowest-id rule decides most of its pixels."""
    swan0 = _gt("blackswan", 0)
    cols = np.nonzero(swan0.any(0))[0]
    first = swan0.copy()
    first[:, (cols.min() + cols.max()) // 2:] *= 2  # right half = object 2
    later = _gt("blackswan", 4) * 3
    root = tmp_path / "davis"
    _link_clip(root, "blackswan", FRAMES, {0: first, 4: later})
    infer_dataset(f"hf:{tiny_sam2}", root, "val", out=tmp_path / "out", options=_options(given="first-appearance"))
    frames = [read_frame(p) for p in sorted((root / "JPEGImages" / "480p" / "blackswan").glob("*.jpg"))]
    reference = direct_loop(tiny_sam2, frames, {0: first, 4: later})
    assert reference[-1][2] == [1, 2, 3]
    compared, differing = _compare(tmp_path / "out", "blackswan", reference, {0, 4})
    assert compared > 0.9 * (FRAMES - 2) * 480 * 854 and differing == 0, (compared, differing)
    assert read_mask(tmp_path / "out" / "blackswan" / "00003.png").max() <= 2  # object 3 not before its frame
    on_4 = read_mask(tmp_path / "out" / "blackswan" / "00004.png")
    assert np.array_equal(on_4[later == 3], later[later == 3])  # its given mask on its frame


@pytest.mark.parametrize("family", ["edgetam_video", "sam3_tracker_video"])
def test_edgetam_and_sam3_tracker_run_through_the_same_adapter(family: str, tmp_path: Path) -> None:
    from vosbench.infer.hf_tiny import write_tiny_tracker

    folder = write_tiny_tracker(tmp_path / family, family, image_size=112 if family.startswith("sam3") else 64)
    root = tmp_path / "davis"
    _link_clip(root, "dog", 4)
    res = CliRunner().invoke(app, ["infer", "--checkpoint", f"hf:{folder}", "--data", str(root), "--out",
                                   str(tmp_path / "out"), "--device", "cpu", "--precision", "fp32"])
    assert res.exit_code == 0, res.output
    frames = [read_frame(p) for p in sorted((root / "JPEGImages" / "480p" / "dog").glob("*.jpg"))]
    reference = direct_loop(folder, frames, {0: _gt("dog", 0)}, family)
    compared, differing = _compare(tmp_path / "out", "dog", reference, {0})
    assert compared > 0.5 * 3 * 480 * 854 and differing == 0, (compared, differing)
    record = json.loads((tmp_path / "out" / "dog" / "provenance.json").read_text())
    assert record["checkpoints"][0]["model_type"] == family


def test_probabilities_follow_the_lowest_id_rule() -> None:
    # pixels: both positive (2 has the larger logit), only 2 positive, none positive (two near 0.5), exactly 0
    logits = torch.tensor([[[1.0, -3.0, -0.1, 0.0]], [[4.0, 2.0, -0.2, 0.0]]])  # K=2, H=1, W=4
    for ids, lowest in (([1, 2], 0), ([2, 1], 1)):  # channel order need not be id order
        p = sam_probabilities(logits, ids)
        assert p.shape == (3, 1, 4)
        torch.testing.assert_close(p.sum(0), torch.ones(1, 4))
        labels = p.argmax(0)[0].tolist()
        assert labels[0] == 1 + lowest  # the lowest id wins although the other logit is larger
        assert labels[1] == 2  # channel 2 = the only positive object
        assert labels[2] == 0 and labels[3] == 0  # no logit > 0: background (STM's product rule would say object)
    # one object: background 1 - p and STM's odds normalisation, by hand
    q = torch.sigmoid(torch.tensor(0.7))
    odds = torch.stack([(1 - q) / q, q / (1 - q)])
    p = sam_probabilities(torch.full((1, 1, 1), 0.7), [5])
    torch.testing.assert_close(p[:, 0, 0], odds / odds.sum())


def test_bounded_memory_keeps_the_masks(tmp_path: Path) -> None:
    """A video longer than the memory windows: the core drops old frames and outputs and still gives
    the direct loop's logits on every frame."""
    from vosbench.infer.hf_tiny import write_tiny_tracker

    folder = write_tiny_tracker(tmp_path / "short-memory", image_size=64, num_maskmem=3,
                                max_object_pointers_in_encoder=4)
    g = np.random.default_rng(0)
    frames = [g.integers(0, 255, (40, 56, 3), dtype=np.uint8) for _ in range(14)]
    mask = np.zeros((40, 56), np.uint8)
    mask[5:25, 8:30], mask[20:35, 30:50] = 1, 2
    reference = direct_loop(folder, frames, {0: mask})
    hf = HFVideoModel(f"hf:{folder}", "cpu", "fp32")
    core = hf.video_core(None, len(frames))
    for t, f in enumerate(frames):
        probs = core.step(torch.from_numpy(f).permute(2, 0, 1).float() / 255, mask if t == 0 else None)
        assert probs.shape == (3, 40, 56)
        if t:
            torch.testing.assert_close(core.logits, reference[t][1], atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(core.object_probabilities(), torch.sigmoid(reference[t][1]), atol=1e-4, rtol=0)
        kept = core.session.output_dict_per_obj[0]["non_cond_frame_outputs"]
        assert len(kept) <= hf.window and all(t - k < hf.window for k in kept)
        assert sum(v is not None for v in core.session.processed_frames.values()) == 0


def _cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def _bad(tmp_path: Path, spec: str, env: dict[str, str] | None = None, monkeypatch=None):
    root = tmp_path / "davis"
    if not root.exists():
        _link_clip(root, "car-shadow", 2)
    res = _cli("infer", "--checkpoint", spec, "--data", root, "--out", tmp_path / "out", "--device", "cpu")
    assert res.exit_code == 1, res.output
    assert not (tmp_path / "out").exists()
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in res.output, res.output
    return " ".join(res.output.split())


def test_bad_specs_are_one_line_and_write_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "model folder not found" in _bad(tmp_path, f"hf:{tmp_path / 'nowhere'}")
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    text = _bad(tmp_path, f"hf:{tmp_path / 'bert'}")
    assert "'bert'" in text and "sam2_video" in text
    (tmp_path / "empty").mkdir()
    assert "no config.json" in _bad(tmp_path, f"hf:{tmp_path / 'empty'}")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))  # an empty cache
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # a hub that does not answer
    text = _bad(tmp_path, "hf:facebook/sam2.1-hiera-tiny")
    assert "facebook/sam2.1-hiera-tiny" in text and "hf:FOLDER" in text
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert "hf:FOLDER" in _bad(tmp_path, "hf:facebook/sam2.1-hiera-tiny")
    assert "hf:" in _bad(tmp_path, "hf:")


def test_online_finetuning_of_a_sam_member_is_refused(tiny_sam2: Path, tmp_path: Path) -> None:
    root = tmp_path / "davis"
    _link_clip(root, "car-shadow", 2)
    res = _cli("infer", "--checkpoint", f"hf:{tiny_sam2}", "--data", root, "--out", tmp_path / "out",
               "--device", "cpu", "--finetune-steps", "2")
    assert res.exit_code == 1 and "online finetuning of a SAM member" in " ".join(res.output.split())
    assert not (tmp_path / "out").exists()


def test_models_lists_the_hf_families() -> None:
    res = _cli("models", "stm-tiny")
    assert res.exit_code == 0, res.output
    for text in ("sam2_video", "edgetam_video", "sam3_tracker_video", "hf:facebook/sam2.1-hiera-tiny"):
        assert text in res.output


def test_missing_transformers_names_the_extra(tiny_sam2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from vosbench.errors import ConfigError

    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now fails
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[sam\]'"):
        HFVideoModel(f"hf:{tiny_sam2}", "cpu", "fp32")


def test_a_cached_hub_id_loads_without_the_network(tiny_sam2: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The Hugging Face cache layout (models--org--name/snapshots/<rev>, refs/main), hub unreachable."""
    import shutil

    from huggingface_hub import constants

    repo = tmp_path / "cache" / "models--org--tiny-sam2"
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_sam2, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    hf = HFVideoModel("hf:org/tiny-sam2", "cpu", "fp32")
    assert hf.folder == snapshot and hf.model_type == "sam2_video"
    assert hf.sha256() == HFVideoModel(f"hf:{tiny_sam2}", "cpu", "fp32").sha256()  # same files, same hash
    with pytest.raises(Exception, match="hf:org/other"):
        HFVideoModel("hf:org/other", "cpu", "fp32")


def test_sav_root_keeps_each_sam_objects_own_mask_overlaps_included(tiny_sam2: Path, tmp_path: Path) -> None:
    """On an SA-V root a SAM member scores each object on its own: object k is written where its
    own logit is > 0, as the direct loop's logits say, so objects may overlap (a hand on a person)."""
    from PIL import Image

    from tests.infer.test_sav import HAND, LATE, PERSON, write_sav

    data = write_sav(tmp_path / "sav")
    summary = infer_dataset(f"hf:{tiny_sam2}", data, "val", out=tmp_path / "out", options=_options())
    assert [(s.name, s.objects) for s in summary.sequences] == [("v", 3)]
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((data / "JPEGImages_24fps" / "v").glob("*.jpg"))]
    first = np.zeros(PERSON.shape, np.uint8)  # engine labels: folder 000 -> 1, 001 -> 2, 002 -> 3
    first[PERSON] = 1
    first[HAND] = 2  # the smaller object keeps the shared pixels of the given masks
    reference = direct_loop(tiny_sam2, frames, {0: first, 4: LATE.astype(np.uint8) * 3})
    compared = overlap = 0
    for t, (_, logits, ids) in enumerate(reference):
        if t in (0, 4):
            continue
        clear = (logits.abs() > NEAR_ZERO).all(0).numpy()
        masks = {}
        for oid, folder in ((1, "000"), (2, "001"), (3, "002")):
            got = np.asarray(Image.open(tmp_path / "out" / "v" / folder / f"{t:05d}.png")) != 0
            if oid in ids:
                want = (logits[ids.index(oid)] > 0).numpy()
                assert np.array_equal(got[clear], want[clear]), (t, folder)
                compared += int(clear.sum())
            else:
                assert not got.any()  # not joined yet
            masks[oid] = got
        overlap += int((masks[1] & masks[2]).sum())
    assert compared > 0
    # SAM 2's label rule would give every pixel one object; here the reference's own overlaps survive
    ref_overlap = sum(int(((lg[ids.index(1)] > 0) & (lg[ids.index(2)] > 0)).sum())
                      for t, (_, lg, ids) in enumerate(reference) if t not in (0, 4))
    assert ref_overlap > 0 and overlap > 0  # this tiny model's person and hand do overlap
