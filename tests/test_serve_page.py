"""The demo page (GET /) in a real headless Chromium: type, click, one bar per label as wide as its probability."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.test_predict_files import LABELS, model_dir
from tests.test_serve import Server, server_env

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
                page.wait_for_function("document.getElementById('about').textContent.includes('emotions')")
                assert page.is_hidden("#keyrow")  # a server without a key asks for none
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


def browser_page(playwright, chromium: Path, profile: Path):
    """A fresh headless Chromium context (its own empty user-data-dir) and a page in it."""
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(chromium), headless=True, args=FLAGS, viewport={"width": 900, "height": 600}
    )
    return context, context.new_page()


def text_of(page, selector: str, words: str) -> str:
    """The text of `selector` once it holds `words`."""
    page.wait_for_function(
        "([selector, words]) => document.querySelector(selector).textContent.includes(words)", arg=[selector, words]
    )
    return page.text_content(selector)


def test_demo_page_asks_for_the_api_key_keeps_it_in_the_tab_and_sends_it(tmp_path, tiny_models):
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    key = secrets.token_urlsafe(24)
    folder = model_dir(tmp_path / "model", tiny_models, multi_label=True)
    options = [f"run_dir={folder}", "backend=torch", "precision=fp32"]
    server = Server(tmp_path / "serve.log", *options, env=server_env(EMO_API_KEY=key))
    try:
        with sync_playwright() as playwright:
            context, page = browser_page(playwright, chromium, tmp_path / "profile")
            try:
                page.goto(server.url + "/")
                assert "needs an API key" in text_of(page, "#about", "API key")  # /labels answered 401
                assert page.is_visible("#key") and page.get_attribute("#key", "type") == "password"
                page.fill("#text", TEXT)
                page.fill("#key", "not-the-key-0123456789")
                page.click("#predict")
                assert "refused this API key" in text_of(page, "#error", "API key")
                assert page.locator("#bars .row").count() == 0
                page.fill("#key", key)
                page.click("#predict")
                page.wait_for_selector("#bars .row")
                assert "emotions" in text_of(page, "#about", "emotions")  # /labels, now with the key
                stored = page.evaluate("[sessionStorage.getItem('emo-lightning-api-key'), localStorage.length]")
                page.reload()  # the same tab keeps the key: no question this time
                assert "emotions" in text_of(page, "#about", "emotions") and page.input_value("#key") == key
                rows = page.locator("#bars .row").count()
            finally:
                context.close()
    finally:
        assert server.stop() == 0, server.output()
    assert stored == [key, 0] and rows == 0  # in sessionStorage only; the reloaded page has no bars yet
    assert key not in server.output()


def test_docs_page_draws_the_routes_from_the_server_alone(tmp_path, tiny_models):
    """/docs (Swagger UI) renders with no request leaving the server: its script and style sheet are served by it."""
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    folder = model_dir(tmp_path / "model", tiny_models, multi_label=True)
    server = Server(tmp_path / "serve.log", f"run_dir={folder}", "backend=torch", "precision=fp32")
    elsewhere: list[str] = []
    try:
        with sync_playwright() as playwright:
            context, page = browser_page(playwright, chromium, tmp_path / "profile")
            page.on(
                "request", lambda request: None if request.url.startswith(server.url) else elsewhere.append(request.url)
            )
            try:
                page.goto(server.url + "/docs")
                page.wait_for_selector(".opblock-summary-path", timeout=30_000)
                paths = page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.textContent)")
            finally:
                context.close()
    finally:
        assert server.stop() == 0, server.output()
    assert {"/predict", "/health", "/labels"} <= set(paths) and elsewhere == []
