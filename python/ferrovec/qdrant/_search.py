"""Search: the universal ``query_points`` family and the older ``search``/``recommend``
calls."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

import ferrovec._native as native
from ferrovec.errors import (
    InvalidInputError,
    UnsupportedError,
)
from ferrovec.qdrant import convert as cv
from ferrovec.qdrant._base import _Base, _check_limit, _distance, _or_false

out = cv.out


class _Search(_Base):
    def _query_vector(
        self, col: native.Collection, query: Any, using: str | None
    ) -> tuple[Any, list[int | str]]:
        """The vector a query asks for (of the vector `using`), and the ids it mentions (which
        are not results)."""
        if isinstance(query, (int, np.integer, str, uuid.UUID)) and not isinstance(query, bool):
            pid = cv.point_id(query)
            recs = col.get([pid], with_payload=False, with_vectors=True)
            if not recs:
                raise InvalidInputError(f"No point with id {pid} found")
            vector = recs[0].vector
            if (col.dim is None) != (using is not None) or (
                using is not None and using not in col.vectors
            ):
                raise InvalidInputError(
                    f"Dense vector {using or ''} is not found in the collection"
                )
            if isinstance(vector, Mapping):
                vector = vector.get(using)  # type: ignore[arg-type, assignment]
            if vector is None:  # this point has no such vector (delete_vectors, or left out)
                raise InvalidInputError(f"Vector with name {using or ''} for point {pid} not found")
            return vector, [pid]
        if isinstance(query, np.ndarray):
            return query, []
        if isinstance(query, (list, tuple)):
            return query, []
        nearest = cv.field(query, "nearest")
        if nearest is not None:
            return self._query_vector(col, nearest, using)
        if isinstance(query, Mapping) and set(query) == {""}:
            return query[""], []
        if hasattr(query, "indices") or (isinstance(query, Mapping) and "indices" in query):
            raise UnsupportedError("sparse vectors are not supported yet (a later issue)")
        raise UnsupportedError(
            f"query of type {type(query).__name__} is not supported yet: pass a vector, a point "
            "id or NearestQuery (recommend, discover, fusion and formula queries come later)"
        )

    def _search(
        self,
        collection_name: str,
        query: Any,
        query_filter: Any,
        search_params: Any,
        limit: int,
        offset: int | None,
        with_payload: Any,
        with_vectors: Any,
        score_threshold: float | None,
        using: str | None = None,
    ) -> list[Any]:
        _check_limit("limit", limit, 1)
        if offset is not None:
            _check_limit("offset", offset, 0)
        col = self._col(collection_name)
        vector, mentioned = self._query_vector(col, query, using)
        mmr = cv.field(query, "mmr") if not isinstance(query, (list, np.ndarray)) else None
        if mmr is not None:
            return self._search_mmr(
                col,
                vector,
                mmr,
                cv.exclude_ids(cv.filter_dict(query_filter), mentioned),
                search_params,
                limit,
                offset or 0,
                with_payload,
                with_vectors,
                score_threshold,
                using,
            )
        sel = cv.payload_selector(with_payload)
        vsel = cv.vector_selector(with_vectors)
        hits = col.search(
            vector,  # a list or an array: the native call reads either
            limit,
            filter=cv.exclude_ids(cv.filter_dict(query_filter), mentioned),
            score_threshold=score_threshold,
            offset=offset or 0,
            with_payload=sel,
            with_vectors=bool(vsel),
            ef=cv.field(search_params, "hnsw_ef"),
            exact=bool(cv.field(search_params, "exact", False)),
            allow_zero=True,
            using=using,
        )
        return cv.scored_points(_beyond(hits, col, score_threshold, using), vsel)

    def _search_mmr(
        self,
        col: native.Collection,
        vector: Any,
        mmr: Any,
        flt: dict[str, Any] | None,
        search_params: Any,
        limit: int,
        offset: int,
        with_payload: Any,
        with_vectors: Any,
        score_threshold: float | None,
        using: str | None,
    ) -> list[Any]:
        """Maximal marginal relevance, as Qdrant's ``NearestQuery(mmr=Mmr(diversity,
        candidates_limit))``: from the ``candidates_limit`` nearest points, pick greedily the one
        maximising ``(1 - diversity) * sim(query) - diversity * max sim(picked)``; the scores
        returned are the similarities to the query."""
        diversity = cv.field(mmr, "diversity")
        diversity = 0.5 if diversity is None else float(diversity)
        if not 0.0 <= diversity <= 1.0:
            raise InvalidInputError(f"MMR diversity must be between 0 and 1, got {diversity}")
        candidates = cv.field(mmr, "candidates_limit") or limit
        sel = cv.payload_selector(with_payload)
        hits = col.search(
            np.asarray(vector, dtype=np.float32),
            candidates,
            filter=flt,
            score_threshold=score_threshold,
            with_payload=sel,
            with_vectors=True,
            ef=cv.field(search_params, "hnsw_ef"),
            exact=bool(cv.field(search_params, "exact", False)),
            allow_zero=True,
            using=using,
        )
        hits = _beyond(hits, col, score_threshold, using)
        if not hits:
            return []
        distance = _distance(col, using)
        vecs = np.asarray(
            [h.vector if using is None else cast("dict[str, Any]", h.vector)[using] for h in hits],
            dtype=np.float64,
        )
        if distance in ("cosine", "dot"):
            pair = vecs @ vecs.T
        elif distance == "euclid":
            # Qdrant compares squared distances inside MMR (its internal euclid score).
            pair = -((vecs[:, None, :] - vecs[None, :, :]) ** 2).sum(-1)
        else:
            pair = -np.abs(vecs[:, None, :] - vecs[None, :, :]).sum(-1)
        relevance = np.array([h.score for h in hits], dtype=np.float64)
        if distance == "euclid":
            relevance = -(relevance**2)
        elif distance == "manhattan":
            relevance = -relevance  # scores are distances there: lower is more relevant
        picked = [int(np.argmax(relevance))]
        pending = [i for i in range(len(hits)) if i != picked[0]]
        want = limit + offset
        while pending and len(picked) < want:
            closest = pair[np.ix_(pending, picked)].max(axis=1)
            mmr_score = (1.0 - diversity) * relevance[pending] - diversity * closest
            picked.append(pending.pop(int(np.argmax(mmr_score))))
        vsel = cv.vector_selector(with_vectors)
        return cv.scored_points([hits[i] for i in picked[offset:]], vsel)

    def query_points(
        self,
        collection_name: str,
        query: Any = None,
        using: str | None = None,
        prefetch: Any = None,
        query_filter: Any = None,
        search_params: Any = None,
        limit: int = 10,
        offset: int | None = None,
        with_payload: Any = True,
        with_vectors: Any = False,
        score_threshold: float | None = None,
        lookup_from: Any = None,
        consistency: Any = None,
        shard_key_selector: Any = None,
        timeout: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Nearest points to ``query``: a vector, a point id (that point itself is left out) or
        a NearestQuery; ``using`` names the vector searched."""
        if prefetch:
            raise UnsupportedError("prefetch (hybrid queries) is not supported yet (a later issue)")
        if lookup_from is not None:
            raise UnsupportedError("lookup_from is not supported yet")
        if query is None:
            raise UnsupportedError("query=None (scroll-like queries) is not supported; use scroll")
        points = self._search(
            collection_name,
            query,
            query_filter,
            search_params,
            limit,
            offset,
            with_payload,
            with_vectors,
            score_threshold,
            cv.using_of(using),
        )
        return cv.make(out.QueryResponse, points=points)

    def query_batch_points(
        self, collection_name: str, requests: Sequence[Any], **kwargs: Any
    ) -> list[Any]:
        """Several queries; those that are plain vectors with the same parameters run as one
        native batch on the core's threads."""
        col = self._col(collection_name)
        reqs = list(requests)
        plain = all(
            isinstance(cv.field(r, "query"), (list, np.ndarray))
            and not cv.field(r, "prefetch")
            and cv.field(r, "lookup_from") is None
            for r in reqs
        )
        keys = {
            json.dumps(
                [
                    cv.dump(cv.field(r, k))
                    for k in (
                        "filter",
                        "params",
                        "limit",
                        "offset",
                        "with_payload",
                        "with_vector",
                        "using",
                    )
                ]
                + [cv.field(r, "score_threshold")],
                sort_keys=True,
                default=str,
            )
            for r in reqs
        }
        if reqs and plain and len(keys) == 1:
            r = reqs[0]
            limit = cv.field(r, "limit") or 10
            _check_limit("limit", limit, 1)
            # A QueryRequest's with_payload=None means no payload (query_points' default is True).
            sel = cv.payload_selector(_or_false(cv.field(r, "with_payload")))
            params = cv.field(r, "params")
            offset = cv.field(r, "offset") or 0
            using = cv.using_of(cv.field(r, "using"))
            vsel = cv.vector_selector(cv.field(r, "with_vector"))
            batch = col.search_batch(
                np.asarray([cv.field(x, "query") for x in reqs], dtype=np.float32),
                limit + offset,
                filter=cv.filter_dict(cv.field(r, "filter")),
                score_threshold=cv.field(r, "score_threshold"),
                with_payload=sel,
                with_vectors=bool(vsel),
                ef=cv.field(params, "hnsw_ef"),
                exact=bool(cv.field(params, "exact", False)),
                allow_zero=True,
                using=using,
            )
            threshold = cv.field(r, "score_threshold")
            return [
                cv.make(
                    out.QueryResponse,
                    points=cv.scored_points(_beyond(hits[offset:], col, threshold, using), vsel),
                )
                for hits in batch
            ]
        return [
            self.query_points(
                collection_name,
                query=cv.field(r, "query"),
                using=cv.field(r, "using"),
                prefetch=cv.field(r, "prefetch"),
                query_filter=cv.field(r, "filter"),
                search_params=cv.field(r, "params"),
                limit=cv.field(r, "limit") or 10,
                offset=cv.field(r, "offset"),
                with_payload=_or_false(cv.field(r, "with_payload")),
                with_vectors=_or_false(cv.field(r, "with_vector")),
                score_threshold=cv.field(r, "score_threshold"),
                lookup_from=cv.field(r, "lookup_from"),
            )
            for r in reqs
        ]

    def query_points_groups(
        self,
        collection_name: str,
        group_by: str,
        query: Any = None,
        using: str | None = None,
        prefetch: Any = None,
        query_filter: Any = None,
        search_params: Any = None,
        limit: int = 10,
        group_size: int = 3,
        with_payload: Any = True,
        with_vectors: Any = False,
        score_threshold: float | None = None,
        with_lookup: Any = None,
        lookup_from: Any = None,
        **kwargs: Any,
    ) -> Any:
        """The best ``limit`` groups of points sharing the payload value at ``group_by`` (a
        string or integer; a point with an array there joins each of its values' groups), each
        with its best ``group_size`` points, groups ordered by their best point."""
        if prefetch or with_lookup is not None or lookup_from is not None:
            raise UnsupportedError("prefetch, with_lookup and lookup_from are not supported yet")
        _check_limit("limit", limit, 1)
        _check_limit("group_size", group_size, 1)
        col = self._col(collection_name)
        total = len(col)
        k = max(limit * group_size * 4, 64)
        while True:
            hits = self._search(
                collection_name,
                query,
                query_filter,
                search_params,
                min(k, max(total, 1)),
                None,
                True,
                with_vectors,
                score_threshold,
                cv.using_of(using),
            )
            groups: dict[Any, list[Any]] = {}
            for h in hits:
                for value in _group_values(h.payload, group_by):
                    members = groups.setdefault(value, [])
                    if len(members) < group_size:
                        members.append(h)
            full = sum(1 for m in groups.values() if len(m) >= group_size)
            if full >= limit or len(hits) < k or k >= total:
                break
            k *= 4
        chosen = list(groups.items())[:limit]
        # Grouping needed whole payloads; the hits carry what `with_payload` asks for.
        sel = cv.payload_selector(with_payload)
        if sel is not True:
            wanted = list({h.id: None for _, members in chosen for h in members})
            payloads = {r.id: r.payload for r in col.get(wanted, with_payload=sel)}
            for _, members in chosen:
                for h in members:
                    h.payload = payloads.get(h.id)
        return out.GroupsResult(
            groups=[out.PointGroup(id=value, hits=members) for value, members in chosen]
        )

    def search(
        self,
        collection_name: str,
        query_vector: Any,
        query_filter: Any = None,
        search_params: Any = None,
        limit: int = 10,
        offset: int | None = None,
        with_payload: Any = True,
        with_vectors: Any = False,
        score_threshold: float | None = None,
        append_payload: bool = True,
        consistency: Any = None,
        shard_key_selector: Any = None,
        timeout: int | None = None,
        **kwargs: Any,
    ) -> list[Any]:
        """qdrant-client's removed ``search``: ``query_vector`` is a vector, a
        ``(name, vector)`` pair or a NamedVector."""
        using = None
        if isinstance(query_vector, tuple) and len(query_vector) == 2:
            using = cv.using_of(query_vector[0])
            query_vector = query_vector[1]
        elif (
            cv.field(query_vector, "name") is not None
            and cv.field(query_vector, "vector") is not None
        ):
            using = cv.using_of(cv.field(query_vector, "name"))
            query_vector = cv.field(query_vector, "vector")
        if not isinstance(query_vector, (list, np.ndarray)):
            raise InvalidInputError("query_vector must be a vector")
        return self._search(
            collection_name,
            query_vector,
            query_filter,
            search_params,
            limit,
            offset,
            with_payload,
            with_vectors,
            score_threshold,
            using,
        )

    def search_batch(
        self, collection_name: str, requests: Sequence[Any], **kwargs: Any
    ) -> list[list[Any]]:
        return [
            self.search(
                collection_name,
                cv.field(r, "vector"),
                query_filter=cv.field(r, "filter"),
                search_params=cv.field(r, "params"),
                limit=cv.field(r, "limit") or 10,
                offset=cv.field(r, "offset"),
                with_payload=_or_false(cv.field(r, "with_payload")),
                with_vectors=_or_false(cv.field(r, "with_vector")),
                score_threshold=cv.field(r, "score_threshold"),
            )
            for r in requests
        ]

    def recommend(
        self,
        collection_name: str,
        positive: Sequence[Any] | None = None,
        negative: Sequence[Any] | None = None,
        query_filter: Any = None,
        search_params: Any = None,
        limit: int = 10,
        offset: int = 0,
        with_payload: Any = True,
        with_vectors: Any = False,
        score_threshold: float | None = None,
        using: str | None = None,
        lookup_from: Any = None,
        strategy: Any = None,
        **kwargs: Any,
    ) -> list[Any]:
        """qdrant-client's removed ``recommend`` with Qdrant's default ``average_vector``
        strategy: search near ``mean(pos) + (mean(pos) - mean(neg))``, leaving out the points
        given by id."""
        using = cv.using_of(using)
        if lookup_from is not None:
            raise UnsupportedError("lookup_from is not supported yet")
        if strategy not in (None, "average_vector") and cv.dump(strategy) != "average_vector":
            raise UnsupportedError(f"recommend strategy {strategy!r} is not supported yet")
        if not positive:
            raise InvalidInputError("recommend needs at least one positive example")
        col = self._col(collection_name)
        pos: list[Any] = []
        neg: list[Any] = []
        mentioned: list[int | str] = []
        for examples, into in ((positive, pos), (negative or [], neg)):
            for e in examples:
                vec, ids = self._query_vector(col, e, using)
                into.append(np.asarray(vec, dtype=np.float64))
                mentioned += ids
        mean_pos = np.mean(pos, axis=0)
        vector = mean_pos + mean_pos - np.mean(neg, axis=0) if neg else mean_pos
        flt = cv.exclude_ids(cv.filter_dict(query_filter), mentioned)
        return self._search(
            collection_name,
            vector,
            flt,
            search_params,
            limit,
            offset,
            with_payload,
            with_vectors,
            score_threshold,
            using,
        )


def _beyond(
    hits: list[Any], col: native.Collection, threshold: float | None, using: str | None = None
) -> list[Any]:
    """Hits strictly better than `threshold`, as qdrant-client takes it (the core keeps a score
    equal to the threshold too); hits are sorted, so those equal to it are at the end."""
    if threshold is None:
        return hits
    if _distance(col, using) in ("euclid", "manhattan"):
        return [h for h in hits if h.score < threshold]
    return [h for h in hits if h.score > threshold]


def _group_values(payload: dict[str, Any] | None, key: str) -> list[Any]:
    value: Any = payload
    for part in key.split("."):
        if not isinstance(value, dict):
            return []
        value = value.get(part)
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, (str, int)) and not isinstance(v, bool)]
