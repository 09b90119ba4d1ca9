"""Ingest jobs: `POST /ingest` answers at once with a job id; the ingest runs on a thread and
its status (each file's state, chunks written, rate, ETA, the final report) is kept in a
collection of the store, so that any worker process of `serve --workers N` answers
`GET /ingest/jobs/{id}`, and a job survives a restart of the service.

A job whose process died while it ran (a crash, a SIGKILL) is shown as "interrupted": its
documents are each stored whole or not at all (see `ingest.py`), and ingesting the same files
again finishes the work.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

import ferrovec
from ferrovec._batch import scroll_all
from ferrovec.rag import loaders
from ferrovec.rag.ingest import IngestReport, IngestStatus

# How often a running job's status is written to the store.
SAVE_EVERY_S = 0.5
# Jobs listed by `recent` (the newest).
RECENT = 20


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Jobs:
    """The jobs of one store, in its collection `name`."""

    def __init__(self, db: ferrovec.Database, name: str) -> None:
        self._col = db.create_collection(name, 1, "dot", exist_ok=True)
        self._col.create_payload_index("created", "float")  # a no-op when it exists

    def _save(self, job_id: str, record: dict[str, Any]) -> None:
        self._col.upsert([job_id], np.ones((1, 1), dtype=np.float32), [{"job": json.dumps(record)}])

    def get(self, job_id: str) -> dict[str, Any] | None:
        try:
            uuid.UUID(job_id)
        except ValueError:
            return None
        found = self._col.get([job_id])
        return self._shown(found[0].payload) if found else None

    def recent(self, limit: int = RECENT) -> list[dict[str, Any]]:
        jobs = [self._shown(r.payload) for r in scroll_all(self._col, None)]
        jobs.sort(key=lambda j: j["created"], reverse=True)
        return jobs[:limit]

    @staticmethod
    def _shown(payload: dict[str, Any] | None) -> dict[str, Any]:
        record: dict[str, Any] = json.loads((payload or {})["job"])
        if record["state"] in ("queued", "running") and not _alive(int(record["pid"])):
            record["state"] = "interrupted"
            record["error"] = "the service stopped during this ingest; ingest the files again"
        return record

    def start(
        self,
        documents: Iterable[loaders.Document | loaders.Unreadable],
        run: Callable[
            [Iterable[loaders.Document | loaders.Unreadable], IngestStatus], IngestReport
        ],
    ) -> str:
        """Start `run(documents, status)` on a thread; its job id."""
        job_id = str(uuid.uuid4())
        docs = list(documents)
        status = IngestStatus()
        for d in docs:
            status.file(d.source, state="queued")
        created = time.time()
        base = {"job_id": job_id, "created": created, "pid": os.getpid()}

        def record() -> dict[str, Any]:
            return {**base, **status.snapshot()}

        self._save(job_id, record())
        done = threading.Event()
        saving = threading.Lock()  # the final record is the last one written

        def saver() -> None:
            while not done.wait(SAVE_EVERY_S):
                with saving:
                    if done.is_set():
                        return
                    self._save(job_id, record())

        def work() -> None:
            threading.Thread(target=saver, name="ferrovec-rag-job-save", daemon=True).start()
            try:
                report = run(docs, status)
                status.finish(report)
            except Exception as e:  # reported in the job, where the client looks
                status.finish(None, f"{type(e).__name__}: {e}")
            finally:
                done.set()
                with saving:
                    self._save(job_id, record())

        threading.Thread(target=work, name=f"ferrovec-rag-job-{job_id[:8]}", daemon=True).start()
        return job_id
