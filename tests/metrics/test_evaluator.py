import json
import os
import zipfile

import numpy as np
import pytest

from tests.metrics.helpers import messy_ids, moving_objects, perturb, write_davis, write_results
from tests.metrics.reference import reference_f, reference_sequence
from vosbench.errors import DataError, VosbenchError
from vosbench.metrics import DavisEvaluator, evaluate_results
from vosbench.metrics import evaluator as evaluator_module


def _square(shape, y, x, size=2, value=1, into=None):
    m = np.zeros(shape, np.uint8) if into is None else into
    m[y : y + size, x : x + size] = value
    return m


@pytest.fixture
def one_object(tmp_path):
    """4 frames, one 2x2 object; prediction perfect on frame 1, empty on frame 2."""
    gt = [_square((8, 8), 2, 2) for _ in range(4)]
    pred = [gt[0], gt[1], np.zeros((8, 8), np.uint8), gt[3]]
    root = write_davis(tmp_path / "davis", {"seq": gt})
    res = write_results(tmp_path / "res", {"seq": pred})
    return root, res


def test_hand_computed_sequence_and_official_csvs(one_object):
    root, res = one_object
    result = evaluate_results(root, res, workers=1)
    (obj,) = result.objects
    assert obj.name == "seq_1"
    assert result.sequences[0].frames == ["00001", "00002"]  # first and last not scored
    assert result.sequences[0].j.tolist() == [[1.0, 0.0]] and result.sequences[0].f.tolist() == [[1.0, 0.0]]
    assert (obj.j.mean, obj.j.recall, obj.j.decay) == (0.5, 0.5, 1.0)
    frames = result.per_frame_table()
    assert frames[["Frame", "J", "F"]].values.tolist() == [["00001", 1.0, 1.0], ["00002", 0.0, 0.0]]
    per_object = result.per_object_table().iloc[0]
    assert (per_object["Sequence"], per_object["Object"], per_object["J&F-Mean"], per_object["F-Decay"]) == ("seq", 1, 0.5, 1.0)
    assert (res / "global_results-val.csv").read_text() == (
        "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay\n0.500,0.500,0.500,1.000,0.500,0.500,1.000\n"
    )
    assert (res / "per-sequence_results-val.csv").read_text() == "Sequence,J-Mean,F-Mean\nseq_1,0.500,0.500\n"


def test_always_recomputes_over_stale_csv(one_object):
    root, res = one_object
    (res / "global_results-val.csv").write_text("stale\n")
    evaluate_results(root, res, workers=1)
    assert (res / "global_results-val.csv").read_text().startswith("J&F-Mean,")


def test_id_gaps_and_objects_absent_for_some_frames(tmp_path):
    shape = (8, 8)
    gt, pred = [], []
    for t in range(5):
        g = _square(shape, 1, 1, value=1)
        if t != 2:  # object 3 leaves the scene in frame 2; id 2 never exists in the GT
            _square(shape, 5, 5, value=3, into=g)
        gt.append(g)
        p = g.copy()
        if t == 3:
            p[0, 7] = 2  # a false positive for the always-empty object 2
        pred.append(p)
    root = write_davis(tmp_path / "davis", {"gaps": gt})
    write_results(tmp_path / "res", {"gaps": pred})
    result = evaluate_results(root, tmp_path / "res", workers=1)
    s = result.sequences[0]
    assert [o.name for o in result.objects] == ["gaps_1", "gaps_2", "gaps_3"]
    assert s.j.tolist() == [[1, 1, 1], [1, 1, 0], [1, 1, 1]]  # absent in both GT and prediction = 1
    assert s.f.tolist() == [[1, 1, 1], [1, 1, 0], [1, 1, 1]]  # empty GT boundary, predicted boundary: F = 0


def test_void_is_background_and_missing_predicted_objects_are_empty(tmp_path):
    shape = (10, 10)
    g = _square(shape, 1, 1, value=1)
    _square(shape, 6, 6, value=255, into=g)  # void
    _square(shape, 1, 6, value=2, into=g)
    p = _square(shape, 1, 1, value=1)
    _square(shape, 6, 6, value=1, into=p)  # predicts object 1 on the void pixels too; no object 2
    root = write_davis(tmp_path / "davis", {"v": [g, g, g]})
    write_results(tmp_path / "res", {"v": [p, p, p]})
    result = evaluate_results(root, tmp_path / "res", workers=1)
    s = result.sequences[0]
    assert s.j[0, 0] == 4 / 8  # void pixels predicted as the object count as false positives
    assert s.f[0, 0] == reference_f(g == 1, p == 1)
    assert s.j[1, 0] == 0.0 and s.f[1, 0] == 0.0  # object 2 not predicted at all


def test_extra_predicted_ids_fail_or_are_dropped(tmp_path):
    shape = (8, 8)
    gt = [_square(shape, 1, 1, value=1) for _ in range(3)]
    pred = [m.copy() for m in gt]
    pred[1][6, 6] = 3
    root = write_davis(tmp_path / "davis", {"s": gt})
    write_results(tmp_path / "res", {"s": pred})
    with pytest.raises(DataError, match=r"s/00001\.png: predicted object id\(s\) 3 but sequence 's' has 1 object"):
        evaluate_results(root, tmp_path / "res", workers=1)
    result = evaluate_results(root, tmp_path / "res", workers=1, ignore_extra_ids=True)
    assert result.sequences[0].j.tolist() == [[1.0]]


def test_every_missing_sequence_and_frame_is_listed(tmp_path):
    rng = np.random.default_rng(0)
    seqs = {n: moving_objects(5, 1, (12, 16), rng) for n in ("a", "b", "c")}
    root = write_davis(tmp_path / "davis", seqs)
    res = write_results(tmp_path / "res", {"a": seqs["a"], "b": seqs["b"]})
    os.remove(res / "a" / "00001.png")
    os.remove(res / "a" / "00003.png")
    os.remove(res / "b" / "00002.png")
    os.remove(res / "b" / "00004.png")  # the last frame is not scored: not required
    with pytest.raises(DataError) as exc:
        evaluate_results(root, res, workers=1)
    msg = str(exc.value)
    assert "1 sequence(s) missing: c" in msg
    assert "3 frame(s) missing: a/00001.png, a/00003.png, b/00002.png" in msg


def test_ground_truth_problems_are_all_listed(tmp_path):
    m = _square((8, 8), 1, 1)
    root = write_davis(tmp_path / "davis", {"ok": [m] * 3, "short": [m] * 2})
    (root / "ImageSets" / "2017" / "val.txt").write_text("ok\nshort\nghost\n")
    (root / "JPEGImages" / "480p" / "ok").mkdir(parents=True)
    for t in range(4):
        (root / "JPEGImages" / "480p" / "ok" / f"{t:05d}.jpg").write_bytes(b"")
    write_results(tmp_path / "res", {"ok": [m] * 3})
    with pytest.raises(DataError) as exc:
        evaluate_results(root, tmp_path / "res", workers=1)
    msg = str(exc.value)
    assert "ok: 3 annotations for 4 frames" in msg
    assert "short: 2 annotated frame(s)" in msg
    assert "ghost: no annotations" in msg


def _dataset(tmp_path, n_seqs=4, size=(40, 56), seed=0):
    rng = np.random.default_rng(seed)
    gt = {f"s{i}": moving_objects(int(rng.integers(5, 9)), int(rng.integers(1, 4)), size, rng) for i in range(n_seqs)}
    pred = {n: [perturb(m, rng) for m in masks] for n, masks in gt.items()}
    root = write_davis(tmp_path / "davis", gt)
    res = write_results(tmp_path / "res", pred)
    return root, res, gt, pred


def test_matches_reference_implementation_per_frame(tmp_path):
    root, res, gt, pred = _dataset(tmp_path)
    result = evaluate_results(root, res, workers=1)
    for s in result.sequences:
        j, f = reference_sequence(gt[s.name], pred[s.name])
        assert np.array_equal(s.j, j) and np.array_equal(s.f, f)


def test_matches_reference_on_void_gaps_absence_and_missing_predicted_objects(tmp_path):
    """Bit-identical per-frame values and statistics against the literal official formulation on
    masks with void, id gaps, objects absent in some frames, objects cut by the image border, and
    predictions that lack the highest ids (padded as empty objects)."""
    from tests.metrics.test_summary import official_style

    rng = np.random.default_rng(2024)
    gt, pred = {}, {}
    for i in range(6):
        shape = (int(rng.integers(5, 70)), int(rng.integers(5, 90)))
        n_frames, max_id = int(rng.integers(3, 8)), int(rng.integers(1, 5))
        masks = [messy_ids(shape, max_id, rng) for _ in range(n_frames)]
        masks[0][0, 0] = max_id  # at least one object in the first frame
        n = int(masks[0][masks[0] != 255].max())
        top = n - 1 if i % 2 else n  # every other sequence: the prediction never uses id n
        gt[f"m{i}"] = masks
        pred[f"m{i}"] = [np.minimum(np.where(p == 255, 0, p), top) for p in (messy_ids(shape, n, rng) for _ in masks)]
    root = write_davis(tmp_path / "davis", gt)
    write_results(tmp_path / "res", pred)
    result = evaluate_results(root, tmp_path / "res", workers=1, write_csv=False)
    assert [s.name for s in result.sequences] == list(gt)
    objects = iter(result.objects)
    for s in result.sequences:
        j, f = reference_sequence(gt[s.name], pred[s.name])
        assert np.array_equal(s.j, j) and np.array_equal(s.f, f), s.name
        for k in range(j.shape[0]):
            o = next(objects)
            assert (o.j.mean, o.j.recall, o.j.decay) == official_style(j[k])
            assert (o.f.mean, o.f.recall, o.f.decay) == official_style(f[k])
    assert next(objects, None) is None


def test_pool_gives_identical_results_and_json(tmp_path):
    root, res, _, _ = _dataset(tmp_path, n_seqs=5)
    serial = evaluate_results(root, res, workers=1, write_csv=False)
    pooled = evaluate_results(root, res, workers=2, json_path=tmp_path / "out.json")
    assert [s.name for s in pooled.sequences] == [s.name for s in serial.sequences]  # split order kept
    for a, b in zip(serial.sequences, pooled.sequences):
        assert np.array_equal(a.j, b.j) and np.array_equal(a.f, b.f)
    assert pooled.summary == serial.summary
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["global"]["J&F-Mean"] == serial.summary.jf_mean  # full precision survives
    first = data["objects"][0]
    assert first["J_per_frame"] == serial.sequences[0].j[0].tolist()
    assert first["frames"] == serial.sequences[0].frames


def test_submission_zip_with_or_without_top_folder(tmp_path):
    root, res, _, _ = _dataset(tmp_path, n_seqs=2)
    expected = evaluate_results(root, res, workers=1, write_csv=False).summary
    for name, prefix in (("flat.zip", ""), ("nested.zip", "results/")):
        zpath = tmp_path / "zips" / name
        zpath.parent.mkdir(exist_ok=True)
        with zipfile.ZipFile(zpath, "w") as zf:
            for png in sorted(res.glob("*/*.png")):
                zf.write(png, prefix + png.relative_to(res).as_posix())
            zf.writestr("__MACOSX/s0/._00001.png", b"junk")
        got = evaluate_results(root, zpath, workers=2)
        assert got.summary == expected
        assert (zpath.parent / "global_results-val.csv").is_file()  # written next to the zip


def test_corrupt_png_in_worker_propagates(tmp_path):
    root, res, _, _ = _dataset(tmp_path, n_seqs=3)
    bad = res / "s1" / "00002.png"
    bad.write_bytes(bad.read_bytes()[:40])
    with pytest.raises(DataError, match=r"s1/00002\.png: corrupt or truncated"):
        evaluate_results(root, res, workers=2)
    assert not (res / "global_results-val.csv").exists()  # nothing half-written


def _die(task):
    os._exit(3)


def test_dead_worker_fails_fast_instead_of_hanging(tmp_path, monkeypatch):
    root, res, _, _ = _dataset(tmp_path, n_seqs=3)
    monkeypatch.setattr(evaluator_module, "_run_task", _die)
    with pytest.raises(VosbenchError, match="worker process died"):
        evaluate_results(root, res, workers=2)


def test_evaluator_protocol_streams_sequences(tmp_path):
    root, res, _, pred = _dataset(tmp_path, n_seqs=3)
    full = evaluate_results(root, res, workers=1, write_csv=False)
    ev = DavisEvaluator(root, "val")
    ev.process("s0", res)
    ev.process_sequence("s1", {f"{t:05d}": m for t, m in enumerate(pred["s1"])})
    partial = ev.evaluate()
    assert [s.name for s in partial.sequences] == ["s0", "s1"]
    with pytest.raises(DataError, match="not evaluated: s2"):
        ev.evaluate(require_all=True)
    ev.process("s2", res)
    assert ev.evaluate(require_all=True).summary == full.summary
    ev.reset()
    with pytest.raises(DataError, match="nothing to evaluate"):
        ev.evaluate()


def test_process_sequence_reports_missing_frames(tmp_path):
    root, _, _, pred = _dataset(tmp_path, n_seqs=1)
    ev = DavisEvaluator(root, "val")
    with pytest.raises(DataError, match=r"frame\(s\) missing: s0/00001\.png"):
        ev.process_sequence("s0", {f"{t:05d}": m for t, m in enumerate(pred["s0"]) if t != 1})


def test_csvs_identical_to_official_pipeline_written_out(tmp_path):
    """The official evaluation, transcribed: reference per-frame values, ``db_statistics`` with
    uint8 edges (fine below 256 frames), the same pandas tables -> byte-identical CSVs."""
    import pandas as pd

    from tests.metrics.test_summary import official_style

    root, res, gt, pred = _dataset(tmp_path, n_seqs=4, seed=11)
    result = evaluate_results(root, res, workers=2)
    jm, jr, jd, fm, fr, fd, names = [], [], [], [], [], [], []
    for seq in gt:
        j, f = reference_sequence(gt[seq], pred[seq])
        for k in range(j.shape[0]):
            m, r, d = official_style(j[k])
            jm.append(m), jr.append(r), jd.append(d)
            m, r, d = official_style(f[k])
            fm.append(m), fr.append(r), fd.append(d)
            names.append(f"{seq}_{k + 1}")
    g = np.array([(np.mean(jm) + np.mean(fm)) / 2.0, np.mean(jm), np.mean(jr), np.mean(jd), np.mean(fm), np.mean(fr), np.mean(fd)])
    table_g = pd.DataFrame(data=g.reshape(1, -1), columns=["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"])
    table_s = pd.DataFrame(data=list(zip(names, jm, fm)), columns=["Sequence", "J-Mean", "F-Mean"])
    assert result.summary.values() == tuple(g)  # to the last bit, not just 3 decimals
    assert [(o.j.mean, o.j.recall, o.j.decay) for o in result.objects] == list(zip(jm, jr, jd))
    assert [(o.f.mean, o.f.recall, o.f.decay) for o in result.objects] == list(zip(fm, fr, fd))
    assert (res / "global_results-val.csv").read_text() == table_g.to_csv(index=False, float_format="%.3f")
    assert (res / "per-sequence_results-val.csv").read_text() == table_s.to_csv(index=False, float_format="%.3f")
