"""The web page in a real browser: headless Chromium (Debian's chromium and chromium-driver)
against a real server on 127.0.0.1: documents uploaded (several at once, bad ones reported),
listed and deleted; search with highlighted terms, modes and a source filter; chat with
citations that open their passage, sessions resumed after a reload; the API key asked once;
keyboard use and a phone-sized window. Screenshots go to `tmp_path` and to `target/` at the
repository root for a look (`docs/rag-page.png` in the README is one of them)."""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.rag.test_app import DOCS, _free_port, _serve, _wait_ready

REPO = Path(__file__).resolve().parents[2]


def _browser(size: str = "1200,1400") -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--disable-background-networking",  # no internet here
        f"--window-size={size}",
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

                browser.find_element(By.ID, "tab-chat").click()
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


@contextlib.contextmanager
def _server(
    tmp_path: Path, api_key: str | None = None, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    with log_path.open("ab") as log:
        proc = _serve(tmp_path, port, log, api_key=api_key, extra_env=extra_env)
        try:
            _wait_ready(base, proc, log_path)
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@contextlib.contextmanager
def _page(base: str, size: str = "1200,1400") -> Iterator[webdriver.Chrome]:
    browser = _browser(size)
    try:
        browser.get(base + "/")
        yield browser
    finally:
        browser.quit()


def _shot(browser: webdriver.Chrome, tmp_path: Path, name: str) -> None:
    shot = tmp_path / name
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    (REPO / "target").mkdir(exist_ok=True)
    shutil.copy(shot, REPO / "target" / name)


def _upload_rows(browser: webdriver.Chrome) -> dict[str, str]:
    rows = browser.find_elements(By.CSS_SELECTOR, "#uploads .upload")
    return {
        r.find_element(By.CSS_SELECTOR, "span").text: r.find_element(By.CSS_SELECTOR, ".state").text
        for r in rows
    }


def test_documents_are_uploaded_listed_and_deleted_with_bad_files_reported(
    tmp_path: Path,
) -> None:
    files = tmp_path / "upload"
    files.mkdir()
    (files / "guide.md").write_text("# Field guide\n\nOwls hunt at night.\n\nHerons wade.\n")
    (files / "notes.txt").write_text("Otters hold hands while they sleep.")
    (files / "blob.txt").write_bytes(b"\x00\x01binary\x00" * 50)
    (files / "latin.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (files / "empty.md").write_bytes(b"")
    with _server(tmp_path) as base, _page(base) as browser:
        wait = WebDriverWait(browser, 60)
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "ready"))
        browser.find_element(By.ID, "tab-docs").click()
        picker = browser.find_element(By.ID, "files")
        picker.send_keys("\n".join(str(files / n) for n in sorted(p.name for p in files.iterdir())))

        def settled(_: object) -> bool:
            rows = _upload_rows(browser)
            return (
                len(rows) == 5
                and all(
                    s.startswith(("done", "unchanged")) or "byte" in s or "file" in s or "text" in s
                    for s in rows.values()
                )
                and not any(s in ("uploading", "queued") for s in rows.values())
            )

        wait.until(settled)
        rows = _upload_rows(browser)
        assert rows["guide.md"].startswith("done") and rows["notes.txt"].startswith("done")
        assert "binary" in rows["blob.txt"]
        assert "UTF-8" in rows["latin.txt"]
        assert "empty" in rows["empty.md"]
        failed = browser.find_elements(By.CSS_SELECTOR, "#uploads .state.failed")
        assert len(failed) == 3
        wait.until(lambda _: len(browser.find_elements(By.CSS_SELECTOR, "#docs tr")) == 2)
        table = browser.find_element(By.ID, "docs").text
        assert "Field guide" in table and "guide.md" in table and "notes.txt" in table
        assert "blob.txt" not in table
        listed = httpx.get(base + "/documents").json()["documents"]
        assert [d["source"] for d in listed] == ["guide.md", "notes.txt"]
        assert all(d["chunks"] >= 1 and d["complete"] and d["bytes"] > 0 for d in listed)
        _shot(browser, tmp_path, "rag-page-documents.png")

        browser.find_element(By.CSS_SELECTOR, "button[aria-label='Delete notes.txt']").click()
        browser.switch_to.alert.accept()
        wait.until(lambda _: "notes.txt" not in browser.find_element(By.ID, "docs").text)
        assert [d["source"] for d in httpx.get(base + "/documents").json()["documents"]] == [
            "guide.md"
        ]


def test_search_highlights_terms_filters_by_source_and_switches_mode(tmp_path: Path) -> None:
    with _server(tmp_path) as base:
        ok = httpx.post(base + "/ingest?wait=true", json={"texts": DOCS}, timeout=30)
        assert ok.status_code == 200
        with _page(base) as browser:
            wait = WebDriverWait(browser, 30)
            wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "3 documents"))
            box = browser.find_element(By.ID, "q")
            box.send_keys("cat sleeps", Keys.ENTER)  # the keyboard alone submits
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#results .hit")))
            first = browser.find_element(By.CSS_SELECTOR, "#results .hit")
            assert "cats.md" in first.text and "chunk 1" in first.text and "score" in first.text
            marks = {m.text.lower() for m in first.find_elements(By.TAG_NAME, "mark")}
            assert {"cat", "sleeps"} <= marks
            assert "hybrid" in browser.find_element(By.ID, "search-note").text

            # Only one document, BM25 only.
            browser.find_element(By.CSS_SELECTOR, "#mode option[value=sparse]").click()
            browser.find_element(By.CSS_SELECTOR, "#source-filter option[value='dogs.md']").click()
            box.clear()
            box.send_keys("a cat or a dog", Keys.ENTER)
            wait.until(ec.text_to_be_present_in_element((By.ID, "search-note"), "sparse"))
            hits = browser.find_elements(By.CSS_SELECTOR, "#results .hit")
            assert hits and all("dogs.md" in h.text for h in hits)


def test_chat_cites_sources_and_sessions_resume_after_a_reload(tmp_path: Path) -> None:
    with _server(tmp_path) as base:
        assert httpx.post(base + "/ingest?wait=true", json={"texts": DOCS}).status_code == 200
        with _page(base) as browser:
            wait = WebDriverWait(browser, 30)
            wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "ready"))
            browser.find_element(By.ID, "tab-chat").click()
            browser.find_element(By.ID, "message").send_keys("what orbits the earth", Keys.ENTER)
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#chat a.cite")))
            cite = browser.find_element(By.CSS_SELECTOR, "#chat a.cite")
            assert cite.text == "[1]"
            panel = browser.find_element(By.CSS_SELECTOR, "#chat .sources details")
            assert panel.get_attribute("open") is None
            cite.click()
            assert panel.get_attribute("open") is not None and "moon.md" in panel.text
            assert "Moon orbits" in panel.text
            wait.until(lambda _: browser.find_elements(By.CSS_SELECTOR, "#sessions button"))
            assert "orbits" in browser.find_element(By.ID, "sessions").text

            browser.refresh()  # the session is kept in the tab: open it from the list
            wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "ready"))
            browser.find_element(By.ID, "tab-chat").click()
            wait.until(lambda _: browser.find_elements(By.CSS_SELECTOR, "#sessions button"))
            browser.find_element(By.CSS_SELECTOR, "#sessions button").click()
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#chat a.cite")))
            assert "what orbits the earth" in browser.find_element(By.ID, "chat").text
            browser.find_element(By.CSS_SELECTOR, "#chat a.cite").click()
            assert (
                "Moon orbits" in browser.find_element(By.CSS_SELECTOR, "#chat details[open]").text
            )


def test_the_api_key_is_asked_once_and_kept_for_the_tab(tmp_path: Path) -> None:
    with _server(tmp_path, api_key="s3cret") as base, _page(base) as browser:
        wait = WebDriverWait(browser, 30)
        wait.until(ec.visibility_of_element_located((By.ID, "key-dialog")))
        assert "needs an API key" in browser.find_element(By.ID, "key-why").text
        browser.find_element(By.ID, "apikey").send_keys("wrong", Keys.ENTER)
        wait.until(ec.visibility_of_element_located((By.ID, "key-dialog")))  # asked again
        field = browser.find_element(By.ID, "apikey")
        field.clear()
        field.send_keys("s3cret", Keys.ENTER)
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "ready"))
        assert browser.execute_script("return sessionStorage.getItem('ferrovec-rag-api-key')") == (
            "s3cret"
        )
        browser.refresh()  # kept: no question this time
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "ready"))
        assert not browser.find_element(By.ID, "key-dialog").is_displayed()


def test_a_phone_sized_window_and_the_keyboard_work(tmp_path: Path) -> None:
    with _server(tmp_path) as base:
        assert httpx.post(base + "/ingest?wait=true", json={"texts": DOCS}).status_code == 200
        with _page(base) as browser:
            # A phone's screen (headless Chromium's window cannot be narrower than 500 px).
            browser.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True},
            )
            browser.refresh()
            wait = WebDriverWait(browser, 30)
            wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "ready"))
            assert browser.execute_script("return window.innerWidth") == 390
            width = browser.execute_script("return document.documentElement.scrollWidth")
            assert width <= 390  # nothing wider than the screen
            # Arrow keys move between the tabs; "/" comes back to the search box.
            tab = browser.find_element(By.ID, "tab-search")
            tab.send_keys(Keys.ARROW_RIGHT)
            assert browser.switch_to.active_element.get_attribute("id") == "tab-chat"
            assert browser.find_element(By.ID, "panel-chat").is_displayed()
            browser.find_element(By.TAG_NAME, "body").send_keys("/")
            assert browser.switch_to.active_element.get_attribute("id") == "q"
            browser.switch_to.active_element.send_keys("dog tail", Keys.ENTER)
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#results .hit")))
            assert "dogs.md" in browser.find_element(By.CSS_SELECTOR, "#results .hit").text
            _shot(browser, tmp_path, "rag-page-phone.png")


def test_errors_show_as_messages_not_a_stuck_spinner(tmp_path: Path) -> None:
    with _server(tmp_path) as base, _page(base) as browser:
        wait = WebDriverWait(browser, 30)
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "ready"))
        # A filter the server refuses: its message appears where the results would.
        browser.execute_script(
            "document.getElementById('source-filter').append(new Option('x', 'x'));"
            "document.getElementById('source-filter').value = 'x';"
            "document.getElementById('mode').append(new Option('bogus', 'bogus'));"
            "document.getElementById('mode').value = 'bogus';"
        )
        browser.find_element(By.ID, "q").send_keys("anything", Keys.ENTER)
        wait.until(ec.text_to_be_present_in_element((By.ID, "results"), "422"))
        assert browser.find_element(By.ID, "toast").is_displayed()
        assert browser.find_element(By.ID, "search-note").text == ""


class _SlowLLM(BaseHTTPRequestHandler):
    """A streaming chat endpoint that sends its answer in pieces a second apart, or (for a
    question with "fail" in it) breaks off after the first piece."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        question = body["messages"][-1]["content"]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in ("The Moon orbits ", "the Earth [1]."):
            chunk = {"choices": [{"delta": {"content": piece}}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            if "fail" in question:
                self.wfile.write(b"data: {not json\n\n")
                return
            time.sleep(1.0)
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args: Any) -> None:
        pass


def test_an_llm_answer_streams_in_and_a_broken_one_says_so(tmp_path: Path) -> None:
    llm = ThreadingHTTPServer(("127.0.0.1", 0), _SlowLLM)
    threading.Thread(target=llm.serve_forever, daemon=True).start()
    env = {"LLM_BASE_URL": f"http://127.0.0.1:{llm.server_address[1]}/v1", "LLM_MODEL": "t"}
    try:
        with _server(tmp_path, extra_env=env) as base:
            assert httpx.post(base + "/ingest?wait=true", json={"texts": DOCS}).status_code == 200
            with _page(base) as browser:
                wait = WebDriverWait(browser, 30)
                wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "LLM t"))
                browser.find_element(By.ID, "tab-chat").click()
                browser.find_element(By.ID, "message").send_keys("what orbits?", Keys.ENTER)
                # The first piece shows before the answer is finished (no citation link yet).
                wait.until(ec.text_to_be_present_in_element((By.ID, "chat"), "The Moon orbits"))
                assert not browser.find_elements(By.CSS_SELECTOR, "#chat a.cite")
                wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#chat a.cite")))
                answer = browser.find_element(By.CSS_SELECTOR, "#chat .answer").text
                assert answer == "The Moon orbits the Earth [1]."

                browser.find_element(By.ID, "message").send_keys("please fail", Keys.ENTER)
                wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#chat .turn.error")))
                error = browser.find_element(By.CSS_SELECTOR, "#chat .turn.error").text
                assert "JSONDecodeError" in error
                assert browser.find_element(By.ID, "toast").is_displayed()
    finally:
        llm.shutdown()
        llm.server_close()
