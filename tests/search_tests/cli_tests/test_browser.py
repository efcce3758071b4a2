"""The study as a user sees it, in Debian's Chromium driven headless by Playwright.

Skips, saying why, where no Chromium (or no Playwright) is installed; with
``FMNIST_REQUIRE_BROWSER=1`` (as ``.ci/run`` sets it) that is a failure instead. Screenshots
go to ``$FMNIST_TEST_ARTIFACTS/browser`` when that is set, else to the test's tmp folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from search.trials import ranked
from tests.testing import QuickStudy, free_port

pytestmark = pytest.mark.slow

# Playwright drives the system browser; `playwright install` (its own download) is never used.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000  # the CI machine is shared; the dashboard's first load can be slow


def chromium_path() -> str | None:
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("FMNIST_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and FMNIST_REQUIRE_BROWSER=1 forbids skipping the browser tests")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        _unavailable("no Chromium at /usr/bin/chromium or on PATH (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ModuleNotFoundError:
        _unavailable("the playwright package is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    root = os.environ.get("FMNIST_TEST_ARTIFACTS")
    folder = Path(root) / "browser" if root else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Tab:
    """A fresh page, and what went wrong in it: console errors, uncaught exceptions and
    failed responses."""

    page: Any
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.problems.append(f"uncaught: {e}"))
        self.page.on("response", self._response)

    def _console(self, message) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")

    def _response(self, response) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")


@pytest.fixture
def tab(browser) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield Tab(context.new_page())
    context.close()


def wait_for_dashboard(port: int, process, stderr: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, stderr.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as r:
                json.load(r)
            return
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline, "the dashboard did not answer within 120 s"
            time.sleep(0.3)


def test_dashboard_shows_the_best_trials_artifacts(
    quick_study: QuickStudy, tab: Tab, shots: Path, command, spawn, tmp_path: Path
) -> None:
    study = quick_study.load()
    best = ranked(study)[0].number
    port = free_port()
    process = spawn(command("dashboard", "--storage", quick_study.url, "--port", port))
    wait_for_dashboard(port, process, tmp_path / "stderr.txt")
    page = tab.page

    page.goto(f"http://127.0.0.1:{port}/dashboard")
    page.get_by_text(re.compile(r"^(\d+\. )?quick$")).first.click()  # its card: "1. quick"
    page.get_by_role("link", name="Trials (List)").wait_for()
    page.locator(".js-plotly-plot .point").first.wait_for()  # the history plot has drawn
    page.screenshot(path=shots / "dashboard-study.png")

    page.get_by_role("link", name="Trials (List)").click()
    for trial in study.trials:
        page.get_by_text(f"Trial {trial.number}", exact=True).first.wait_for()
    page.get_by_text(f"Trial {best}", exact=True).first.click()
    page.get_by_text(f"Trial {best} (trial_id=", exact=False).wait_for()
    # Into view, and back to the left edge: the trial's long config attribute widens the page.
    page.get_by_text("Artifacts", exact=True).evaluate(
        "e => { e.scrollIntoView({block: 'center'});"
        " for (let n = e; n; n = n.parentElement) n.scrollLeft = 0; }"
    )
    for name in ("config.toml", "learning_curves.png", "confusion_matrix.png"):
        page.get_by_text(name, exact=True).first.wait_for()
    images = page.locator("img[src*='/artifacts/']")
    images.nth(1).wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll(\"img[src*='/artifacts/']\")]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    assert images.count() >= 2  # the two PNGs, drawn from the artifact store
    page.screenshot(path=shots / "dashboard-best-trial-artifacts.png")
    # The dashboard's own console messages are its business; broken requests are ours.
    assert not [p for p in tab.problems if not p.startswith("console")], tab.problems

    process.terminate()
    process.wait(timeout=30)


def test_report_page_has_no_console_errors(quick_report: Path, tab: Tab, shots: Path) -> None:
    page = tab.page
    page.goto((quick_report / "report.html").as_uri(), wait_until="load")
    drawn = quick_report.glob("*.png")  # anytime.png is ours, not a plotly plot
    plots = [p for p in drawn if not p.name.startswith("best_trial_") and p.stem != "anytime"]
    page.wait_for_function(
        f"() => document.querySelectorAll('.js-plotly-plot').length === {len(plots)}"
    )
    page.locator("#slice_vgg\\.width").scroll_into_view_if_needed()
    page.screenshot(path=shots / "report.png", full_page=True)
    assert tab.problems == []
