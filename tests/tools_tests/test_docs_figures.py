"""The docs' figures regions: the repo's docs match their result files, and a changed figure,
a new or changed result file or a broken marker in a copy of the docs fails the check naming
the doc, the region and the file."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tools import distributed_bench
from tools import docs_figures as df
from tools import reliability_table as rt

ROOT = Path(__file__).resolve().parents[2]
RELIABILITY = df.REGIONS["reliability"].result
ROW = {"kind": "row", "test": "t.py::a[sqlite]", "backend": "sqlite", "workers": 4,
       "asked": 160, "finished": 160, "failed": 0, "faults": "none", "lost": 0,
       "duplicated": 0, "running_left": 0}  # fmt: skip


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The docs and their result files, copied as a checkout holds them."""
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    return tmp_path


def check(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = df.main(["--check", "--root", str(root)])
    return code, capsys.readouterr().err.splitlines()


def differs(doc: str, name: str, result: str, *, absent: bool = False) -> str:
    source = f"its rerun note ({result} is absent)" if absent else f"what {result} renders"
    return (
        f"docs_figures: {doc}: region {name!r} differs from {source}; "
        "run python tools/docs_figures.py"
    )


def reliability_report(finished: int) -> dict[str, Any]:
    """What tools/reliability_table.py writes for one row, through its own functions."""
    rows = rt.collect([json.dumps(ROW | {"finished": finished})])
    return dict(commit="a" * 40, dirty=False, started_at="now", machine="m", command="c",
                seconds=60, exit_code=0, rows=rows, totals=rt.totals(rows))  # fmt: skip


@pytest.mark.slow  # a process importing the tools; .ci/run runs the same check itself
def test_the_check_passes_on_the_repo_as_ci_runs_it() -> None:
    done = subprocess.run(
        [sys.executable, "tools/docs_figures.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_every_region_is_in_a_doc_and_names_the_command_that_writes_its_file() -> None:
    text = "".join(p.read_text() for p in df.docs(ROOT))
    for name, region in df.REGIONS.items():
        assert f"<!-- figures: {name} -->" in text, name
        assert region.command.split()[-1] in (region.result, region.result.rsplit("/", 1)[0])
        if (ROOT / region.result).exists():
            assert region.render is not None, name


def test_a_changed_figure_in_a_doc_fails_naming_it_and_regenerating_restores_it(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = copy / "docs" / "RELIABILITY.md"
    text = doc.read_text()
    start = text.index("<!-- figures: reliability -->")
    end = text.index(df.CLOSE, start)
    doctored = text[:start] + text[start:end].replace("run `", "run `time ") + text[end:]
    assert doctored != text
    doc.write_text(doctored)
    code, lines = check(copy, capsys)
    expected = differs("docs/RELIABILITY.md", "reliability", RELIABILITY, absent=True)
    assert (code, lines) == (1, [expected])
    assert doc.read_text() == doctored  # the check writes nothing
    assert df.main(["--root", str(copy)]) == 0
    assert doc.read_text() == text


def test_a_result_file_renders_its_region_and_a_changed_one_fails(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = copy / RELIABILITY
    result.parent.mkdir(parents=True)
    result.write_text(json.dumps(reliability_report(finished=160)))
    code, lines = check(copy, capsys)
    assert (code, lines) == (1, [differs("docs/RELIABILITY.md", "reliability", RELIABILITY)])
    assert df.main(["--root", str(copy)]) == 0
    text = (copy / "docs" / "RELIABILITY.md").read_text()
    assert rt.markdown(reliability_report(finished=160)) in text
    assert (
        f"Printed from `{RELIABILITY}`, written by `{df.REGIONS['reliability'].command}` "
        "on commit aaaaaaa."
    ) in text
    assert check(copy, capsys) == (0, [])
    result.write_text(json.dumps(reliability_report(finished=159)))
    code, lines = check(copy, capsys)
    assert (code, lines) == (1, [differs("docs/RELIABILITY.md", "reliability", RELIABILITY)])


def test_an_inline_region_stays_inside_its_sentence(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = copy / "docs" / "RESULTS.md"
    doc.write_text(doc.read_text() + "\nAt last: <!-- figures: bench-peer -->?<!-- /figures -->.\n")
    code, lines = check(copy, capsys)
    peer = df.REGIONS["bench-peer"]
    assert (code, lines) == (
        1,
        [differs("docs/RESULTS.md", "bench-peer", peer.result, absent=True)],
    )
    df.main(["--root", str(copy)])
    assert doc.read_text().endswith(
        f"\nAt last: <!-- figures: bench-peer -->Not rerun since {peer.since}; run "
        f"`{peer.command}` to regenerate.<!-- /figures -->.\n"
    )


@pytest.mark.parametrize(
    ("marker", "error"),
    [
        ("<!-- figures: bench-thruput -->x<!-- /figures -->",
         "unknown figures region 'bench-thruput'"),
        ("<!-- figures: bench-peer -->\nnever closed\n",
         "region 'bench-peer' has no <!-- /figures -->"),
    ],
)  # fmt: skip
def test_a_broken_marker_is_one_line_and_exit_2(
    copy: Path, capsys: pytest.CaptureFixture[str], marker: str, error: str
) -> None:
    doc = copy / "docs" / "RESULTS.md"
    doc.write_text(doc.read_text() + "\n" + marker)
    code, lines = check(copy, capsys)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith(f"docs_figures: docs/RESULTS.md: {error}")


def test_a_region_shown_in_no_doc_fails(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = copy / "docs" / "BENCHMARKS.md"
    text = doc.read_text()
    start = text.index("<!-- figures: bench-peer -->")
    doc.write_text(text[:start] + text[text.index(df.CLOSE, start) + len(df.CLOSE) :])
    code, lines = check(copy, capsys)
    assert code == 1
    assert lines == [
        "docs_figures: region 'bench-peer' (docs/results/bench-peer.json) is shown in no doc: "
        "put its markers in one or drop it from REGIONS"
    ]


def test_a_result_file_without_a_template_asks_for_one(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (copy / df.REGIONS["bench-peer"].result).parent.mkdir(exist_ok=True)
    (copy / df.REGIONS["bench-peer"].result).write_text("{}")
    code, lines = check(copy, capsys)
    assert (code, lines) == (2, [
        "docs_figures: docs/results/bench-peer.json exists but region 'bench-peer' has no "
        "template: add one to REGIONS in tools/docs_figures.py"
    ])  # fmt: skip


def test_a_result_file_another_command_wrote_is_one_line(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (copy / RELIABILITY).parent.mkdir(parents=True)
    (copy / RELIABILITY).write_text(json.dumps({"rows": []}))
    code, lines = check(copy, capsys)
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(
        f"docs_figures: {RELIABILITY} is not what `python tools/reliability_table.py"
    )


def test_a_result_file_from_another_command_line_is_refused(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    region = df.REGIONS["distributed"]
    args = region.command.split()[2:]  # after `python tools/distributed_bench.py`
    rows = [
        {"launcher": name, "wall_s": 60.0, "span_s": 24.0, "ckpt_kb_per_trial": 40.0}
        for name in ("local", "ray")
    ]
    report = dict(preset="p", trials=12, workers=2, cpus=2, load_average=1.0, commit="abc1234",
                  placement_s=5.0, rows=rows)  # fmt: skip
    result = copy / region.result
    result.parent.mkdir(exist_ok=True)
    result.write_text(json.dumps(report | {"argv": ["tools/distributed_bench.py", *args]}))
    assert df.main(["--root", str(copy)]) == 0
    assert distributed_bench.markdown(report) in (copy / "docs" / "DISTRIBUTED.md").read_text()
    shorter = ["tools/distributed_bench.py", "--trials", "2", *args[2:]]
    result.write_text(json.dumps(report | {"argv": shorter}))
    code, lines = check(copy, capsys)
    assert (code, lines) == (2, [
        f"docs_figures: {region.result} was written by `distributed_bench.py --trials 2 "
        f"{' '.join(args[2:])}`, not by `{region.command}`: rerun the region's command, or "
        "change it in REGIONS"
    ])  # fmt: skip


def test_a_table_continued_some_methods_at_a_time_is_its_commands() -> None:
    """The 60-minute table runs some methods a session (`--methods random`, `--again ours`):
    each continuation wrote the file by the table's command; other changes do not."""
    region = df.REGIONS["baselines-60m"]
    args = shlex.split(region.command)[1:]
    for added in (["--methods", "random"], ["--methods", "ours", "--again", "ours"]):
        df.check_argv(region, {"argv": ["fmnist-bench", *args[:4], *added, *args[4:]]})
    other = [a if a != "3" else "2" for a in args]  # --seeds 2
    with pytest.raises(df.FiguresError, match="was written by"):
        df.check_argv(region, {"argv": ["fmnist-bench", *other, "--methods", "random"]})
    with pytest.raises(df.FiguresError, match="was written by"):  # other regions: exact
        df.check_argv(df.REGIONS["baselines-15m"], {"argv": ["fmnist-bench", *shlex.split(
            df.REGIONS["baselines-15m"].command)[1:], "--methods", "random"]})  # fmt: skip
    # A table whose own command names its methods: a continuation names fewer.
    tiny = df.REGIONS["baselines-60m-tiny"]
    args = shlex.split(tiny.command)[1:]
    assert "--methods" in args
    at = args.index("--methods")
    fewer = [*args[:at], "--methods", "recipe", *args[at + 2 :]]
    df.check_argv(tiny, {"argv": ["fmnist-bench", *fewer]})
    with pytest.raises(df.FiguresError, match="was written by"):
        df.check_argv(tiny, {"argv": ["fmnist-bench", *fewer, "--study", "cpu"]})


def test_rows_from_machines_of_unlike_speed_say_so() -> None:
    """Rows measured in other sessions may come from a faster machine, which buys a method
    more epochs in the same minutes: the table says so where their host epoch s differ by
    more than a machine's own noise."""
    region = df.REGIONS["baselines-60m"]
    data = json.loads((ROOT / region.result).read_text())
    rows = [r for runs in data["baselines"]["runs"].values() for r in runs]
    assert len(rows) >= 2 and region.render is not None

    def rendered(*speeds: float) -> str:
        """The table with the rows at ``speeds``, the rows past them at the last one: the
        file's own speeds play no part."""
        for i, row in enumerate(rows):
            row["host_epoch_s"] = speeds[min(i, len(speeds) - 1)]
        return region.render(data)

    assert "Unlike machines" not in rendered(13.6, 14.1)  # within 15%: one machine's noise
    line = next(s for s in rendered(13.6, 16.3).splitlines() if "Unlike" in s)
    assert line.startswith("Unlike machines: the rows' host epoch s run from 13.6 to 16.3 (1.2 ")
