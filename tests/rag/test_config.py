"""The RAG service's TOML settings file (`ferrovec-rag serve --config`), the environment winning
over it, its refusals, and /health and /ready reporting the store's state: a real server on
127.0.0.1 over a real store, one of them damaged so that it does not open."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx
import pytest

import ferrovec
from ferrovec.errors import InvalidInputError
from ferrovec.rag import Settings
from ferrovec.rag.settings import read_toml
from tests.rag.test_app import _free_port

REPO = Path(__file__).resolve().parent.parent.parent
EXAMPLE = REPO / "ferrovec.example.toml"


def test_the_example_names_every_setting_and_parses_to_the_defaults() -> None:
    text = EXAMPLE.read_text()
    for f in dataclasses.fields(Settings):
        assert f"\n{f.name} =" in text or f"\n# {f.name} =" in text, f"{f.name} undocumented"
    assert Settings(**read_toml(EXAMPLE)) == Settings()


def test_toml_settings_and_the_environment_winning(tmp_path: Path) -> None:
    cfg = tmp_path / "ferrovec.toml"
    cfg.write_text(
        'collection = "from_toml"\ntop_k = 4\ncors_origins = ["http://a.test"]\nslow_op_ms = 50\n'
    )
    s = Settings.from_env(env={}, dotenv=None, config=cfg)
    assert (s.collection, s.top_k, s.cors_origins, s.slow_op_ms) == (
        "from_toml",
        4,
        ("http://a.test",),
        50,
    )
    s = Settings.from_env(
        env={"RETRIEVER_TOP_K": "7", "FERROVEC_RAG_CONFIG": str(cfg)}, dotenv=None
    )
    assert s.top_k == 7 and s.collection == "from_toml"  # the environment wins; the file read


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("top_k = 3\nnonsense = 1\n", "unknown setting 'nonsense'"),
        ("top_k = [3\n", "is not valid TOML"),
        ('top_k = "three"\n', "top_k must be int"),
        ("collection = 5\n", "collection must be str"),
        ("cors_origins = [1]\n", "cors_origins must be tuple"),
        ("top_k = 0\n", "RETRIEVER_TOP_K must be at least 1"),
        ("slow_op_ms = -1\n", "FERROVEC_SLOW_OP_MS must be 0 or more"),
    ],
)
def test_bad_settings_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(InvalidInputError, match=message):
        Settings.from_env(env={}, dotenv=None, config=cfg)
    with pytest.raises(InvalidInputError, match="does not exist"):
        Settings.from_env(env={}, dotenv=None, config=tmp_path / "missing.toml")


def _serve_cli(tmp_path: Path, port: int, cfg: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("API_KEY", "FERROVEC_PATH")}
    env["EMBEDDING_MODEL"] = "hash:128"
    args = ["-m", "ferrovec.rag.cli", "serve", "--config", str(cfg), "--port", str(port)]
    return subprocess.Popen(
        [sys.executable, *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


def _poll(base: str, proc: subprocess.Popen[bytes], log: Path, ready: bool) -> httpx.Response:
    for _ in range(400):
        assert proc.poll() is None, log.read_text()
        try:
            r = httpx.get(base + "/ready", timeout=1)
            if (r.status_code == 200) == ready and r.json()["status"] != "starting":
                return r
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"no such /ready answer: {log.read_text()}")


def test_serve_reads_the_config_and_reports_the_store_in_health_and_ready(tmp_path: Path) -> None:
    store = tmp_path / "from-config"
    cfg = tmp_path / "ferrovec.toml"
    cfg.write_text(f'path = "{store}"\ncollection = "cfgdocs"\nslow_op_ms = 0\n')
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    logf = log.open("ab")
    proc = _serve_cli(tmp_path, port, cfg, logf)
    try:
        r = _poll(base, proc, log, ready=True)
        body = r.json()
        assert body["store"]["path"] == str(store)
        assert "cfgdocs" in body["store"]["collections"]
        assert httpx.get(base + "/health").json() == {"status": "ok", "store": "open"}
        # slow_op_ms = 0 from the file: every store call is recorded and counted.
        httpx.post(base + "/query", json={"query": "anything"}, timeout=30)
        m = httpx.get(base + "/metrics", timeout=30).text
        assert 'ferrovec_slow_operations_total{collection="cfgdocs",op="query"} 1' in m
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    # The store's log damaged in the middle: it does not open, and /ready says why.
    for wal in (store / "collections" / "cfgdocs" / "wal").glob("*.wal"):
        wal.write_bytes(wal.read_bytes()[:64])  # keep the header: the log is empty, fine
    manifest = store / "collections" / "cfgdocs" / "MANIFEST"
    data = bytearray(manifest.read_bytes())
    data[-1] ^= 0xFF
    manifest.write_bytes(bytes(data))
    proc = _serve_cli(tmp_path, port, cfg, logf)
    try:
        r = _poll(base, proc, log, ready=False)
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "failed"
        assert body["detail"].startswith("CorruptionError:") and "ferrovec check" in body["detail"]
        assert httpx.get(base + "/health").json()["store"] in (
            "failed to open",
            "open (the model failed to load)",
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        logf.close()
    assert ferrovec.check(store)[0]["problems"]
