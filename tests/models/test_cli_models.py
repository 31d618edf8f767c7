from typer.testing import CliRunner

from vosbench_cli.main import app
from vosbench.models import build_model, list_presets
from vosbench.models.summary import summarize

runner = CliRunner()


def test_models_lists_every_preset():
    result = runner.invoke(app, ["models"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in list_presets():
        assert name in result.output
    assert "spatial+aspp+refine" in result.output


def test_models_config_and_unknown():
    result = runner.invoke(app, ["models", "dstm-tiny", "--config"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert '"depth": true' in result.output and "dstm-tiny" in result.output
    bad = runner.invoke(app, ["models", "stm-r18"])
    assert bad.exit_code == 1
    assert "unknown model preset 'stm-r18'" in bad.output


def test_parameter_count_matches_built_model():
    summary = summarize("scm-tiny")
    assert summary.parameters == build_model("scm-tiny").num_parameters()
    assert summary.parts == ("spatial_prior", "aspp", "refine") and summary.losses == ("ce", "iou")
