"""Tables of top trials show first what varied between them, every value whole."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from search.results.console import VALUES_WIDTH, top_table
from search.results.report import top_table_html
from search.results.varied import split_params, wrap

LONG = "a-categorical-choice-whose-name-is-far-longer-than-any-column-of-a-console-table"


def _study() -> optuna.Study:
    """Four trials sharing five parameters; width, lr and a long categorical differ."""
    study = optuna.create_study(direction="maximize")
    shared = {"vgg.blocks": 2, "vgg.pools": 2, "vgg.convs_per_block": 1,
              "optim.schedule": "onecycle", "aug.flip_p": 0.5}  # fmt: skip
    dists = {
        "vgg.blocks": IntDistribution(1, 3),
        "vgg.pools": IntDistribution(1, 2),
        "vgg.convs_per_block": IntDistribution(1, 2),
        "optim.schedule": CategoricalDistribution(["onecycle", "cosine"]),
        "aug.flip_p": CategoricalDistribution([0.0, 0.5]),
        "vgg.width": CategoricalDistribution([16, 32]),
        "optim.lr": FloatDistribution(1e-4, 1e-1, log=True),
        "aug.kind": CategoricalDistribution(["short", LONG]),
    }
    for i, (width, lr, kind) in enumerate([(32, 3e-3, LONG), (16, 1e-2, "short"),
                                           (32, 5e-3, LONG), (16, 2e-3, "short")]):  # fmt: skip
        params = shared | {"vgg.width": width, "optim.lr": lr, "aug.kind": kind}
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions=dists,
                value=0.9 - i / 100,
                user_attrs={"params": 50_000, "best_val_acc": 0.91},
                intermediate_values={0: 0.8, 1: 0.9 - i / 100},
            )
        )
    return study


def test_split_params_puts_the_varied_ones_apart() -> None:
    study = _study()
    varying, constant = split_params(study.trials)
    assert varying == ["vgg.width", "optim.lr", "aug.kind"]
    assert constant == {"vgg.blocks": 2, "vgg.pools": 2, "vgg.convs_per_block": 1,
                        "optim.schedule": "onecycle", "aug.flip_p": 0.5}  # fmt: skip
    one_varying, one_constant = split_params(study.trials[:1])
    assert len(one_varying) == 8 and one_constant == {}


def test_wrap_breaks_between_whole_items() -> None:
    items = ["a=1", "bb=22", LONG, "c=3"]
    lines = wrap(items, 12)
    assert lines == ["a=1, bb=22,", LONG + ",", "c=3"]
    assert ", ".join(line.removesuffix(",") for line in lines) == ", ".join(items)


def test_console_table_lists_what_varied_first_and_cuts_nothing() -> None:
    text = top_table(_study(), 4)
    lines = text.splitlines()
    rows = [line for line in lines if re.match(r"\s+\d+ ", line)]
    assert len(rows) == 4
    # Each row starts its values with what differs; the shared ones are named once, last.
    assert all(re.search(r"  width=\d+, lr=", row) for row in rows)
    assert "blocks=" not in "\n".join(rows)
    assert lines[-1].startswith("same in all 4: ") and "blocks=2" in lines[-1]
    assert "schedule=onecycle" in text and "flip_p=0.5" in text
    assert text.count(LONG) == 2 and "..." not in text  # whole, on its own line
    assert all(len(line) <= 48 + VALUES_WIDTH or LONG in line for line in lines)


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.inside = False

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "tr":
            self.rows.append([])
        self.inside = tag in ("td", "th")

    def handle_data(self, data) -> None:
        if self.inside:
            self.rows[-1].append(data)

    def handle_endtag(self, tag) -> None:
        self.inside = False


def test_report_table_is_a_real_table_of_what_varied() -> None:
    page = top_table_html(_study(), 3)
    parser = _Cells()
    parser.feed(page)
    header, *rows = parser.rows
    assert header == ["trial", "val_acc", "best", "params", "epochs", "width", "lr", "kind"]
    assert [r[0] for r in rows] == ["0", "1", "2"]
    assert rows[0][5:] == ["32", "0.003", LONG]
    assert "Same in all 3: blocks=2, pools=2, convs_per_block=1, schedule=onecycle" in page
