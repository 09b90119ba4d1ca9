"""The web page in a real browser: headless Chromium (Debian's chromium and chromium-driver)
against a real server on 127.0.0.1 searches, chats with cited sources, and saves a screenshot
(`tmp_path/page.png`, and `target/rag-page.png` at the repository root for a look)."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.rag.test_app import DOCS, _free_port, _serve, _wait_ready

REPO = Path(__file__).resolve().parents[2]


def _browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--disable-background-networking",  # no internet here
        "--window-size=1200,1400",
    ):
        options.add_argument(arg)
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    assert binary, "Debian's chromium is not installed (.ci/run installs it)"
    options.binary_location = binary
    return webdriver.Chrome(service=Service(driver), options=options)


def test_the_page_searches_and_chats(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    with log_path.open("ab") as log:
        proc = _serve(tmp_path, port, log, api_key=None)
        try:
            _wait_ready(base, proc, log_path)
            assert (
                httpx.post(base + "/ingest?wait=true", json={"texts": DOCS}, timeout=30).status_code
                == 200
            )
            browser = _browser()
            try:
                browser.get(base + "/")
                wait = WebDriverWait(browser, 30)
                wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "ready"))
                box = browser.find_element(By.ID, "q")
                box.send_keys("why do cats purr")
                browser.find_element(By.ID, "search-btn").click()
                wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#results .hit")))
                first = browser.find_element(By.CSS_SELECTOR, "#results .hit")
                assert "cats.md" in first.text and "purr" in first.text

                browser.find_element(By.ID, "message").send_keys("tell me about the moon")
                browser.find_element(By.ID, "send-btn").click()
                wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#chat .sources")))
                answer = browser.find_element(By.CSS_SELECTOR, "#chat .answer").text
                assert "No LLM is configured" in answer and "moon" in answer.lower()
                cited = browser.find_element(By.CSS_SELECTOR, "#chat .sources").text
                assert "moon.md" in cited
                shot = tmp_path / "page.png"
                assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
                (REPO / "target").mkdir(exist_ok=True)
                shutil.copy(shot, REPO / "target" / "rag-page.png")
            finally:
                browser.quit()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
