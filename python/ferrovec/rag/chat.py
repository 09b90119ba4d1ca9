"""Chat: answers from the documents, with each session's history kept in its own collection.

Each turn (the user's message, the answer) is a point of the chat-history collection: its text
embedded, its payload the session id, turn number, role, text and time. An answer is written by
the LLM endpoint when one is configured (OpenAI-compatible `/chat/completions`), else it is
extractive: it quotes the best passages and says plainly that no LLM is configured.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import ferrovec
from ferrovec._batch import scroll_all
from ferrovec.rag.library import Library
from ferrovec.rag.settings import Settings

# Earlier turns of a session given to the LLM, and how many of them are also used to find
# passages (a follow-up question often needs the one before it).
HISTORY_TURNS = 8
NO_LLM = (
    "No LLM is configured (set LLM_BASE_URL and LLM_MODEL for generated answers), so here are "
    "the passages from your documents that best match the question:"
)


@dataclass
class Answer:
    text: str
    sources: list[dict[str, Any]]
    generated: bool


class Chat:
    def __init__(self, library: Library, settings: Settings) -> None:
        self.library = library
        self.settings = settings
        self._col: ferrovec.Collection | None = None
        # One exchange at a time per session: turn numbers (and so point ids) stay distinct.
        self._sessions: dict[str, threading.Lock] = {}
        self._sessions_lock = threading.Lock()

    def _session_lock(self, session_id: str) -> threading.Lock:
        with self._sessions_lock:
            return self._sessions.setdefault(session_id, threading.Lock())

    def reopen(self) -> None:
        """Take the collection afresh from the store (after a restore replaced it)."""
        self._col = None

    @property
    def history_collection(self) -> ferrovec.Collection:
        if self._col is None:
            db, name = self.library.db, self.settings.chat_collection
            dim = self.library.embedder.dim
            self._col = db.create_collection(name, dim, "cosine", exist_ok=True)
            self._col.create_payload_index("session_id", "keyword")  # a no-op when it exists
        return self._col

    def history(self, session_id: str) -> list[dict[str, Any]]:
        """The session's turns, oldest first: turn, role, text, at."""
        flt = {"must": [{"key": "session_id", "match": {"value": session_id}}]}
        turns = [r.payload or {} for r in scroll_all(self.history_collection, flt)]
        turns.sort(key=lambda t: int(t.get("turn", 0)))
        return [{k: t.get(k) for k in ("turn", "role", "text", "at", "sources")} for t in turns]

    def sessions(self) -> list[dict[str, Any]]:
        """Every session, the most recent first: id, turns, its first question, last activity."""
        found: dict[str, dict[str, Any]] = {}
        fields = ["session_id", "turn", "role", "text", "at"]
        for r in scroll_all(self.history_collection, None, with_payload=fields):
            p = r.payload or {}
            sid = str(p.get("session_id"))
            s = found.setdefault(sid, {"session_id": sid, "turns": 0, "title": "", "at": 0.0})
            s["turns"] += 1
            s["at"] = max(float(p.get("at") or 0.0), s["at"])
            if p.get("turn") == 0:
                s["title"] = " ".join(str(p.get("text", "")).split())[:80]
        return sorted(found.values(), key=lambda s: s["at"], reverse=True)

    def _remember(
        self,
        session_id: str,
        first_turn: int,
        texts: list[tuple[str, str]],
        sources: list[dict[str, Any]],
    ) -> None:
        vectors = self.library.embedder.embed_passages([t for _, t in texts])
        now = time.time()
        cited = [{k: s.get(k) for k in ("source", "title", "chunk", "text")} for s in sources]
        ids = [
            str(uuid.uuid5(uuid.NAMESPACE_URL, f"{session_id}#{first_turn + i}"))
            for i in range(len(texts))
        ]
        payloads = [
            {
                "session_id": session_id,
                "turn": first_turn + i,
                "role": role,
                "text": text,
                "at": now,
                # What an answer cites as [n], so that a resumed session shows it again.
                "sources": cited if role == "assistant" else None,
            }
            for i, (role, text) in enumerate(texts)
        ]
        self.history_collection.upsert(ids, vectors, payloads)

    def _context(
        self, message: str, earlier: list[dict[str, Any]], top_k: int | None
    ) -> list[dict[str, Any]]:
        last_user = [t["text"] for t in earlier if t["role"] == "user"][-1:]
        question = " ".join([*last_user, message]) if last_user else message
        return self.library.query(question, top_k)

    def ask(self, session_id: str, message: str, top_k: int | None = None) -> Answer:
        """Answer `message` in the session, and remember both turns."""
        parts = list(self.stream(session_id, message, top_k))
        answer = parts[-1]
        assert isinstance(answer, Answer)
        return answer

    def stream(
        self, session_id: str, message: str, top_k: int | None = None
    ) -> Iterator[str | Answer]:
        """The answer's text in pieces as it is made, then the whole `Answer` (after both turns
        are stored). Exchanges in one session run one after another."""
        with self._session_lock(session_id):
            yield from self._exchange(session_id, message, top_k)

    def _exchange(self, session_id: str, message: str, top_k: int | None) -> Iterator[str | Answer]:
        everything = self.history(session_id)
        earlier = everything[-HISTORY_TURNS:]
        sources = self._context(message, earlier, top_k)
        pieces: list[str] = []
        generated = bool(self.settings.llm_base_url and self.settings.llm_model)
        gen = self._llm(message, earlier, sources) if generated else self._extractive(sources)
        for piece in gen:
            pieces.append(piece)
            yield piece
        text = "".join(pieces)
        turns = [("user", message), ("assistant", text)]
        self._remember(session_id, len(everything), turns, sources)
        yield Answer(text, sources, generated)

    @staticmethod
    def _extractive(sources: list[dict[str, Any]]) -> Iterator[str]:
        yield NO_LLM
        if not sources:
            yield "\n\n(no passage matched: ingest documents first)"
        for i, s in enumerate(sources[:3], 1):
            text = " ".join(str(s.get("text", "")).split())
            yield f"\n\n[{i}] {s.get('source')} (chunk {s.get('chunk')}): \u201c{text}\u201d"

    def _llm(
        self, message: str, earlier: list[dict[str, Any]], sources: list[dict[str, Any]]
    ) -> Iterator[str]:
        context = "\n\n".join(
            f"[{i}] {s.get('source')}: {s.get('text')}" for i, s in enumerate(sources, 1)
        )
        messages = [
            {
                "role": "system",
                "content": "Answer from the passages below; cite them as [n]. If they do not "
                "hold the answer, say so.\n\n" + context,
            },
            *({"role": t["role"], "content": t["text"]} for t in earlier),
            {"role": "user", "content": message},
        ]
        s = self.settings
        body = {"model": s.llm_model, "messages": messages, "stream": True}
        url = str(s.llm_base_url).rstrip("/") + "/chat/completions"
        req = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        if s.llm_api_key:
            req.add_header("Authorization", f"Bearer {s.llm_api_key}")
        with urllib.request.urlopen(req, timeout=300) as resp:
            for raw in resp:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                delta = json.loads(data)["choices"][0].get("delta", {}).get("content")
                if delta:
                    yield str(delta)
