"""The YouTube-VOS-layout meta files (YouTube-VOS ``meta.json``, LVOS ``<split>_meta.json``): one reader,
one line per malformed file."""

from __future__ import annotations

import json

import pytest

from vosbench.data import lvos, youtube
from vosbench.errors import DataError

YT = {"frames": ["00000", "00005"], "category": "cat"}
LV = {"frame_range": {"start": "00000001", "end": "00000009", "frame_nums": 2}}


def _write(tmp_path, meta) -> object:
    path = tmp_path / "meta.json"
    path.write_text(meta if isinstance(meta, str) else json.dumps(meta), encoding="utf-8")
    return path


def test_both_formats_parse(tmp_path):
    yt = youtube._parse_meta(_write(tmp_path, {"videos": {"v1": {"objects": {"2": YT}}}}))
    assert yt["v1"][2].frames == ("00000", "00005") and yt["v1"][2].category == "cat"
    lv = lvos._parse_meta(_write(tmp_path, {"videos": {"v1": {"objects": {"1": LV}}}}))
    assert (lv["v1"][1].start, lv["v1"][1].end) == ("00000001", "00000009")


@pytest.mark.parametrize("parse, good", [(youtube._parse_meta, YT), (lvos._parse_meta, LV)],
                         ids=["youtube", "lvos"])
@pytest.mark.parametrize("meta, message", [
    ("{not json", "not valid JSON"),
    ([1, 2], 'expected an object with a "videos" mapping'),
    ({"videos": {"v": {}}}, "video 'v' has no \"objects\" mapping"),
    ({"videos": {"v": {"objects": {"x": "GOOD"}}}}, "object 'x': expected an integer id with"),
    ({"videos": {"v": {"objects": {"255": "GOOD"}}}}, "object id 255 outside 1..254"),
    ({"videos": {"v": {"objects": {"1": {}}}}}, "object '1': expected an integer id with"),
    ({"videos": {"../up": {"objects": {"1": "GOOD"}}}}, "video name"),
], ids=["json", "no-videos", "no-objects", "id", "id-range", "fields", "name"])
def test_malformed_meta_is_one_data_error(tmp_path, parse, good, meta, message):
    if isinstance(meta, dict):
        meta = json.loads(json.dumps(meta).replace('"GOOD"', json.dumps(good)))
    with pytest.raises(DataError) as err:
        parse(_write(tmp_path, meta))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_file_and_format_checks(tmp_path):
    with pytest.raises(DataError, match="meta.json not found"):
        youtube._parse_meta(tmp_path / "nope.json")
    with pytest.raises(DataError, match="LVOS meta file not found"):
        lvos._parse_meta(tmp_path / "nope.json")
    with pytest.raises(DataError, match="lists no frames"):
        youtube._parse_meta(_write(tmp_path, {"videos": {"v": {"objects": {"1": {"frames": []}}}}}))
    with pytest.raises(DataError, match="frame name"):
        youtube._parse_meta(_write(tmp_path, {"videos": {"v": {"objects": {"1": {"frames": ["../x"]}}}}}))
    with pytest.raises(DataError, match='"frame_range"'):  # frame names must be numbers
        bad = {"frame_range": {"start": "a", "end": "b"}}
        lvos._parse_meta(_write(tmp_path, {"videos": {"v": {"objects": {"1": bad}}}}))
