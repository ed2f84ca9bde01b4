"""The built site renders its formulas in a real browser, offline.

Builds the site (or uses the one in ``JAXIRM_DOCS_SITE``), serves it on localhost, and loads the theory page
in headless Chromium driven by playwright, with every request that leaves localhost refused. The page must
show MathJax's rendered formulas (``mjx-container``), none of them an error, and no raw TeX delimiters.

Needs the ``dev`` extra (playwright, the docs toolchain) and a Chromium binary: ``JAXIRM_CHROMIUM``, else
``chromium`` on the PATH (Debian: ``apt-get install chromium``; playwright's own browser download is not
used). Skipped when either is missing, unless ``JAXIRM_REQUIRE_BROWSER=1`` (set in CI), which makes it fail.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _unavailable(message: str):
    if os.environ.get("JAXIRM_REQUIRE_BROWSER") == "1":
        pytest.fail(f"JAXIRM_REQUIRE_BROWSER=1: {message}")
    pytest.skip(message)


def _chromium() -> str:
    path = os.environ.get("JAXIRM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path or not Path(path).exists():
        _unavailable("no Chromium binary (set JAXIRM_CHROMIUM, or apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if os.environ.get("JAXIRM_DOCS_SITE"):
        return Path(os.environ["JAXIRM_DOCS_SITE"])
    mkdocs = Path(sys.executable).parent / "mkdocs"
    if not mkdocs.exists():
        _unavailable('mkdocs is not installed (pip install -e ".[docs]")')
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "MKDOCS": str(mkdocs)}
    proc = subprocess.run(
        ["bash", str(ROOT / "docs" / "build.sh"), str(out)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, f"docs build failed:\n{proc.stdout}\n{proc.stderr}"
    return out


@pytest.fixture(scope="module")
def server(site):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    thread.join()


def test_theory_page_renders_math_offline(server):
    chromium = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable('playwright is not installed (pip install -e ".[dev]")')

    outside = []

    def only_localhost(route):
        if route.request.url.startswith(server):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(60_000)
            page.route("**/*", only_localhost)
            page.goto(f"{server}/theory/", wait_until="load")
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
            page.evaluate("() => MathJax.startup.promise")
            rendered = page.locator("article mjx-container").count()
            errors = page.locator("mjx-merror").count()
            article = page.locator("article").inner_text()
            toc_math = page.locator("nav mjx-container").count()
            visible = page.evaluate("() => document.body.innerText")
        finally:
            browser.close()

    assert not outside, f"the page asked for files outside the site: {outside}"
    assert rendered > 100, f"only {rendered} rendered formulas on the theory page"
    assert errors == 0, f"{errors} formulas failed to typeset"
    for raw in ("\\(", "\\)", "\\[", "$$"):
        assert raw not in article, f"raw TeX {raw!r} left on the theory page"
        assert raw not in visible, f"raw TeX {raw!r} left in the page's navigation"
    assert toc_math > 0  # headings with formulas are typeset in the table of contents too
