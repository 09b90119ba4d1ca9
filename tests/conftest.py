from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import ferrovec

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def db(store_path: Path):
    d = ferrovec.open(store_path)
    yield d
    d.close()


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def child(code: str, *args: str, **kw) -> subprocess.Popen:
    """Start a Python child running `code` with `args` in sys.argv[1:]."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kw,
    )


def kill_at_random(code: str, *args: str, rnd: random.Random, delay: float) -> list[int]:
    """Run a child that prints one integer per acknowledged operation, SIGKILL it at a random
    moment (up to `delay` seconds, drawn from `rnd`) after its first acknowledgement, and return
    what it printed."""
    p = child(code, *args)
    lines: list[int] = []

    def read() -> None:
        assert p.stdout is not None
        for line in p.stdout:
            lines.append(int(line))

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 60
    while not lines and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    if not lines:
        p.kill()
        _, err = p.communicate()
        pytest.fail(f"child produced nothing: {err}")
    time.sleep(rnd.uniform(0.0, delay))
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    reader.join()
    err = p.stderr.read() if p.stderr else ""
    for pipe in (p.stdout, p.stderr):
        if pipe is not None:
            pipe.close()
    assert p.returncode == -signal.SIGKILL, f"child died by itself: {err}"
    return lines
