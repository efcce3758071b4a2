"""tools/suite_times.py: a pytest run timed as it ran, and the sentence README shows."""

from __future__ import annotations

from tools import suite_times


def test_a_tier_reports_pytests_own_closing_line() -> None:
    row = suite_times.run_tier(["tests/tools_tests/test_suite_times.py", "-k", "sentence"])
    assert row["exit_code"] == 0
    # Under pytest-xdist (pyproject's addopts) the closing line leaves out the deselected.
    assert row["summary"].startswith("1 passed") and "failed" not in row["summary"]
    assert row["seconds"] > 0 and row["failed"] == []


def test_a_failed_tier_names_its_failed_tests(tmp_path) -> None:
    test = tmp_path / "test_broken.py"
    test.write_text("def test_broken():\n    assert 1 == 2\n\ndef test_fine():\n    pass\n")
    row = suite_times.run_tier([str(test), "-ra"])
    assert row["exit_code"] == 1 and row["summary"].startswith("1 failed, 1 passed")
    (failed,) = row["failed"]
    assert failed.startswith("FAILED ") and "test_broken.py::test_broken" in failed


def test_the_sentence_names_both_tiers() -> None:
    tiers = {
        "fast": {"seconds": 88.4, "summary": "606 passed in 88.01s"},
        "full": {"seconds": 690.0, "summary": "740 passed in 689.00s"},
    }
    text = suite_times.markdown({"tiers": tiers, "cpus": 2})
    assert text == (
        "The fast tier took 88 s (606 passed in 88.01s) and the full suite 11.5 min "
        "(740 passed in 689.00s) on 2 cores"
    )


def test_the_cpu_is_named_where_the_file_has_it() -> None:
    tiers = {
        "fast": {"seconds": 60.2, "summary": "700 passed in 59.00s"},
        "full": {"seconds": 1380.0, "summary": "834 passed in 1379.00s"},
    }
    report = {"tiers": tiers, "cpus": 2, "cpu": "AMD EPYC", "cpu_flags": ["avx2"]}
    assert suite_times.markdown(report).endswith("on 2 cores (AMD EPYC, avx2)")
