"""`gencli serve` in a real browser: Playwright drives Debian's Chromium (Playwright's own browser download
cannot work offline) against the real server process. Without Playwright or Chromium the test is skipped,
except under CI (CI=true), where .ci/run installs them and a missing browser is a failure.

GENCLI_SERVE_SCREENSHOT=PATH also saves a screenshot of the editing panel there (the README's picture).
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import gencli_env
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
UNDER_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TIMEOUT_MS = 180_000  # the edit search and the first loads share two cores with the rest of the suite


def browser_or_skip() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if UNDER_CI:
            pytest.fail("playwright is not installed (pip install -e .[test])")
        pytest.skip("playwright is not installed")
    if CHROMIUM is None:
        if UNDER_CI:
            pytest.fail("no chromium on PATH: .ci/run installs Debian's chromium with apt-get")
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="module")
def server_url() -> str:
    process = subprocess.Popen([sys.executable, "-m", "gencli", "serve", "--port", "0", "--threads", "1",
                                "--plugins", "charrnn,wavenet,dcgan"], env=gencli_env(), stderr=subprocess.PIPE,
                               text=True)
    try:
        line = process.stderr.readline()
        assert line.startswith("gencli serve: http://"), line
        yield line.split()[2]
    finally:
        process.terminate()
        process.wait(timeout=60)
        process.stderr.close()


def blob_bytes(page, selector: str) -> bytes:
    """The bytes behind an element's src (a blob: or data: URL), read inside the page."""
    encoded = page.evaluate("""async (selector) => {
        const response = await fetch(document.querySelector(selector).src);
        const bytes = new Uint8Array(await response.arrayBuffer());
        let text = ""; for (const b of bytes) text += String.fromCharCode(b);
        return btoa(text);
    }""", selector)
    return base64.b64decode(encoded)


def non_blank(data: bytes) -> bool:
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=float)
    return pixels.std() > 1.0


def test_the_page_samples_and_edits_in_a_real_browser(server_url: str) -> None:
    executable = browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            problems: list[str] = []
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(server_url)
            page.wait_for_selector("#plugin-dcgan")

            # charrnn: text appears (streamed into a <pre>).
            page.fill("#plugin-charrnn input[name=length]", "120")
            page.click("#plugin-charrnn .sample-button")
            page.wait_for_function("(document.querySelector('#plugin-charrnn .result pre') || {}).textContent"
                                   "?.length >= 120")
            assert "gencli sample charrnn --length 120" in page.inner_text("#plugin-charrnn .command-line")

            # wavenet: an audio element holding a WAV of the asked length.
            page.fill("#plugin-wavenet input[name=seconds]", "0.25")
            page.click("#plugin-wavenet .sample-button")
            page.wait_for_selector("#plugin-wavenet .result audio")
            import soundfile

            audio, rate = soundfile.read(io.BytesIO(blob_bytes(page, "#plugin-wavenet .result audio")))
            assert len(audio) == round(0.25 * rate)

            # dcgan: a non-blank image.
            page.fill("#plugin-dcgan input[name=n]", "4")
            page.click("#plugin-dcgan .sample-button")
            page.wait_for_selector("#plugin-dcgan .result img")
            assert non_blank(blob_bytes(page, "#plugin-dcgan .result img"))

            # The editing panel: a stroke painted with mouse events brings back candidates and real neighbours.
            page.wait_for_function("document.querySelector('#plugin-dcgan .edit-image').naturalWidth > 0")
            canvas = page.locator("#plugin-dcgan .edit-canvas")
            canvas.scroll_into_view_if_needed()
            box = canvas.bounding_box()
            page.mouse.move(box["x"] + 90, box["y"] + 50)
            page.mouse.down()
            page.mouse.move(box["x"] + 190, box["y"] + 230, steps=10)
            page.mouse.up()
            page.wait_for_selector("#plugin-dcgan .candidates img")
            page.wait_for_selector("#plugin-dcgan .neighbours img")
            for kind in ("candidates", "neighbours"):
                images = page.locator(f"#plugin-dcgan .{kind} img")
                assert images.count() == 4
                for i in range(images.count()):
                    assert non_blank(base64.b64decode(images.nth(i).get_attribute("src").split(",", 1)[1]))
            if os.environ.get("GENCLI_SERVE_SCREENSHOT"):
                page.locator("#plugin-dcgan .editing").screenshot(path=os.environ["GENCLI_SERVE_SCREENSHOT"])
            assert problems == []
        finally:
            browser.close()
