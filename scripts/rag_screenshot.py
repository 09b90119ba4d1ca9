"""The README's pictures of the RAG page: this repository's docs ingested with the default
model into a fresh store, served on 127.0.0.1, and the page photographed in headless Chromium
(search, chat, documents) into docs/rag-page-*.png.

Usage: .venv/bin/python scripts/rag_screenshot.py      (needs the test tools: selenium, chromium)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="rag-shot-"))
    env = {**os.environ, "FERROVEC_PATH": str(tmp / "store")}
    env.pop("API_KEY", None)
    rag = [sys.executable, "-m", "ferrovec.rag.cli"]
    subprocess.run([*rag, "ingest", "docs", "README.md"], env=env, cwd=REPO, check=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([*rag, "serve", "--port", str(port)], env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1100,900"):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        for _ in range(600):
            try:
                if httpx.get(base + "/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        browser.get(base + "/")
        wait = WebDriverWait(browser, 60)
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "ready"))
        browser.find_element(By.ID, "q").send_keys("how do I restore a snapshot", Keys.ENTER)
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#results .hit")))
        browser.save_screenshot(str(REPO / "docs" / "rag-page-search.png"))
        browser.find_element(By.ID, "tab-chat").click()
        browser.find_element(By.ID, "message").send_keys("what does fsync durability promise?")
        browser.find_element(By.ID, "message").send_keys(Keys.ENTER)
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#chat a.cite")))
        browser.find_element(By.CSS_SELECTOR, "#chat a.cite").click()
        browser.save_screenshot(str(REPO / "docs" / "rag-page-chat.png"))
        browser.find_element(By.ID, "tab-docs").click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#docs tr")))
        browser.save_screenshot(str(REPO / "docs" / "rag-page-documents.png"))
    finally:
        browser.quit()
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
