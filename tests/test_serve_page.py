"""The demo page (GET /) in a real headless Chromium: type, click, one bar per label as wide as its probability."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.test_predict_files import LABELS, model_dir
from tests.test_serve import Server

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TEXT = "i miss my friends so much"


def require_chromium() -> Path:
    """Debian's chromium; skipped where it is absent, but a failure under CI=true (.ci/run installs it)."""
    if not CHROMIUM.is_file():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium")
        pytest.skip(f"{CHROMIUM} not here: apt-get install -y --no-install-recommends chromium")
    return CHROMIUM


def test_demo_page_draws_one_bar_per_label_as_wide_as_its_probability(tmp_path, tiny_models):
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    folder = model_dir(tmp_path / "model", tiny_models, multi_label=True)
    server = Server(tmp_path / "serve.log", f"run_dir={folder}", "backend=torch", "precision=fp32")
    try:
        expected = httpx.post(f"{server.url}/predict", json={"text": TEXT}).json()["predictions"][0]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                str(tmp_path / "profile"),  # a new, empty user-data-dir
                executable_path=str(chromium),
                headless=True,  # Playwright adds --headless
                args=FLAGS,
                viewport={"width": 900, "height": 600},
            )
            try:
                page = browser.new_page()
                page.goto(server.url + "/")
                page.fill("#text", TEXT)
                page.click("#predict")
                page.wait_for_selector("#bars .row")
                rows = page.eval_on_selector_all(
                    "#bars .row",
                    """rows => rows.map(row => ({
                        label: row.dataset.label,
                        decided: row.classList.contains("decided"),
                        share: row.querySelector(".bar").getBoundingClientRect().width
                            / row.querySelector(".track").getBoundingClientRect().width,
                    }))""",
                )
                page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
            finally:
                browser.close()
    finally:
        assert server.stop() == 0, server.output()
    assert sorted(row["label"] for row in rows) == sorted(LABELS)  # one bar per label
    assert [row["label"] for row in rows] == list(expected["scores"])  # sorted, best first
    for row in rows:
        assert row["share"] == pytest.approx(expected["scores"][row["label"]], abs=0.01), row
        assert row["decided"] == (row["label"] in expected["labels"])
    assert (tmp_path / "demo.png").read_bytes().startswith(b"\x89PNG")
    kept = ROOT / "outputs" / "test-artifacts" / "demo_page.png"  # the newest screenshot, to look at
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp_path / "demo.png", kept)
