from argparse import ArgumentTypeError

import pytest

from search.auto.budget import text
from search.auto.options import AutoOptions
from search.errors import SearchError
from search.flags import duration as parse_budget
from search.study import resolve


@pytest.mark.parametrize(
    ("given", "seconds"),
    [("15m", 900), ("1h", 3600), ("900s", 900), ("900", 900), ("1.5h", 5400), ("90S", 90)],
)
def test_budget_strings(given: str, seconds: float) -> None:
    assert parse_budget(given) == seconds


@pytest.mark.parametrize("bad", ["", "0", "-5m", "15x", "m", "1e9", "inf", "15 minutes"])
def test_bad_budget_is_refused(bad: str) -> None:
    with pytest.raises(ArgumentTypeError, match="give a positive duration"):
        parse_budget(bad)


def test_budget_text_reads_back() -> None:
    for seconds in (900, 3600, 45, 5400):
        assert parse_budget(text(seconds)) == seconds


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["--budget", "15x"], "--budget: '15x'"),
        (["--budget=-1h"], "--budget: '-1h'"),
        (["--budget", "15m", "--seeds", "-1"], "--seeds -1"),
        (["--budget", "15m", "--study", "nosuch"], "unknown study 'nosuch'"),
        (["--budget", "15m", "--final-images", "3"], "--final-images 3"),
        (["--study", "pareto"], "auto trains one winner, and preset 'pareto' searches a Pareto"),
    ],
)
def test_auto_bad_input_is_one_line(cli, argv: list[str], names: str, tmp_path) -> None:
    result = cli("auto", *argv, "--storage", f"sqlite:///{tmp_path}/s.db", "--out", tmp_path)
    assert result.code == 2
    assert names in result.error


def test_auto_spends_the_presets_budget_unless_told(tiny_preset, tmp_path) -> None:
    named = resolve(str(tiny_preset(tmp_path / "named.toml", budget="90s")))
    assert AutoOptions(study="x").with_budget_of(named).budget_s == 90
    assert AutoOptions(study="x", budget_s=30).with_budget_of(named).budget_s == 30
    unnamed = resolve(str(tiny_preset(tmp_path / "unnamed.toml")))
    with pytest.raises(SearchError, match="preset 'unnamed' names no budget; give one with"):
        AutoOptions(study="x").with_budget_of(unnamed)


def test_auto_without_budget_on_a_preset_without_one_is_one_line(cli, tiny_preset, tmp_path):
    preset = tiny_preset(tmp_path / "unnamed.toml")
    result = cli("auto", "--study", preset, "--storage", f"sqlite:///{tmp_path}/s.db")
    assert result.code == 2
    assert result.error == (
        "fmnist-search: error: preset 'unnamed' names no budget; give one with --budget 15m "
        '(or add budget = "15m" to the preset)'
    )
