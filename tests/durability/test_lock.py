"""A second process opening an open store fails at once with StoreLockedError naming the path
and the holder's pid; when the holder closes, the store can be opened again."""

from __future__ import annotations

import json
import os

import ferrovec
from tests.conftest import child

TRY_OPEN = """
import json, sys, ferrovec
try:
    ferrovec.open(sys.argv[1])
    print(json.dumps({"opened": True}))
except ferrovec.StoreLockedError as e:
    print(json.dumps({"error": type(e).__name__, "pid": e.pid, "path": e.path, "msg": str(e)}))
"""


def run(path) -> dict:
    p = child(TRY_OPEN, str(path))
    # A child that waited on the lock would hang here until the timeout fails the test.
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    return json.loads(out)


def test_second_process_gets_store_locked_error(store_path):
    db = ferrovec.open(store_path)
    db.create_collection("c", dim=2).upsert([1], [[1, 0]])
    got = run(store_path)
    assert got["error"] == "StoreLockedError"
    assert got["pid"] == os.getpid()
    assert str(store_path) in got["path"]
    assert str(os.getpid()) in got["msg"]
    db.close()
    assert run(store_path) == {"opened": True}
    with ferrovec.open(store_path) as again:
        assert again.collection("c").count() == 1
