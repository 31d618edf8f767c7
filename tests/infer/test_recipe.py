"""Recipe TOML (docs/model-api.md) and the --ensemble list form."""

from __future__ import annotations

from pathlib import Path

import pytest

from vosbench.errors import ConfigError
from vosbench.infer.recipe import load_recipe, parse_ensemble
from vosbench.infer.run import InferOptions

RECIPE = """
[recipe]
name = "scm-davis2020"
description = "SCM final entry"

[[members]]
checkpoint = "../runs/scm-r101-a/last.pt"
weight = 3.0

[[members]]
checkpoint = "/abs/dstm.pt"

[inference]
flip = true
scales = [0.75, 1, 1.25]
finetune_steps = 0
finetune_lr = 1e-5
mem_every = 5
max_mem_frames = 20
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "sub" / "entry.toml"
    p.parent.mkdir(exist_ok=True)
    p.write_text(text)
    return p


def test_recipe_format(tmp_path):
    r = load_recipe(_write(tmp_path, RECIPE))
    assert r.name == "scm-davis2020"
    assert r.members[0].checkpoint == tmp_path / "sub" / "../runs/scm-r101-a/last.pt"
    assert r.members[1].checkpoint == Path("/abs/dstm.pt")
    assert r.normalised_weights() == [0.75, 0.25]
    assert r.inference["scales"] == (0.75, 1.0, 1.25)
    # the CLI's flags override the recipe; unset flags keep its values
    opts = InferOptions.resolve(r, flip=False, mem_every=None)
    assert opts.flip is False and opts.mem_every == 5 and opts.max_mem_frames == 20 and opts.scales == (0.75, 1.0, 1.25)
    assert parse_ensemble(str(_write(tmp_path, RECIPE))).members == r.members


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[recipe]\nname='x'\n", "at least one"),
        ("[[members]]\ncheckpoint='a.pt'\nseed=1\n", "unknown key 'seed'"),
        ("[[members]]\ncheckpoint='a.pt'\nweight=-1\n", "weight must be > 0"),
        ("[[members]]\ncheckpoint='a.pt'\n[inference]\ntta=true\n", "\\[inference\\]: unknown inference option 'tta'"),
        ("[[members]]\ncheckpoint='a.pt'\n[inference]\nscales='1.0'\n", "scales must be a non-empty list of numbers"),
        ("[[members]]\ncheckpoint='a.pt'\n[inference]\nflip=1\n", "flip must be true or false"),
        ("[[members]\n", "invalid TOML"),
        ("[extra]\n[[members]]\ncheckpoint='a.pt'\n", "unknown section 'extra'"),
    ],
)
def test_recipe_errors_name_the_file(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_recipe(path)
    assert str(path) in str(info.value)


def test_list_form_with_weights(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("b.pt", "c", "run-12", "run-12:30"):
        (tmp_path / name).touch()
    # a weight only where the text after the last colon is a number and the path before it exists
    r = parse_ensemble("a.pt, b.pt:3,c:d.pt,run-12:30,gone.pt:2")
    assert [str(m.checkpoint) for m in r.members] == ["a.pt", "b.pt", "c:d.pt", "run-12:30", "gone.pt:2"]
    assert [m.weight for m in r.members] == [1.0, 3.0, 1.0, 1.0, 1.0]
    for bad in ("b.pt:inf", "b.pt:nan", "b.pt:0"):
        with pytest.raises(ConfigError, match="weight must be > 0 and finite"):
            parse_ensemble(bad)
    with pytest.raises(ConfigError):
        parse_ensemble(" , ")
    with pytest.raises(ConfigError, match="not found"):
        load_recipe(tmp_path / "missing.toml")
