from argparse import ArgumentTypeError

import pytest

from search.auto.budget import text
from search.flags import duration as parse_budget


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
    ],
)
def test_auto_bad_input_is_one_line(cli, argv: list[str], names: str, tmp_path) -> None:
    result = cli("auto", *argv, "--storage", f"sqlite:///{tmp_path}/s.db", "--out", tmp_path)
    assert result.code == 2
    assert names in result.error
