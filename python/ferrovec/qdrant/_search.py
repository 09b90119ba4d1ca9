"""Search: the universal ``query_points`` family and the older ``search``/``recommend``
calls. Every query becomes the JSON of Qdrant's universal query, which the core parses and
runs (prefetch, fusion, formulas, recommend, discover, context, MMR, order_by, sample)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ferrovec.errors import InvalidInputError, UnsupportedError
from ferrovec.qdrant import convert as cv
from ferrovec.qdrant._base import _Base, _check_limit, _or_false

out = cv.out


class _Search(_Base):
    def _prefetch_json(self, p: Any) -> Any:
        """A Prefetch (or a list of them) as JSON: its query's ids canonical, its filter's
        too, its lookup collection resolved through the aliases; nested ones the same."""
        if isinstance(p, (list, tuple)):
            return [self._prefetch_json(x) for x in p]
        d = cv.dump(p)
        if not isinstance(d, dict):
            raise InvalidInputError(f"prefetch {p!r} is not a Prefetch")
        d = dict(d)
        # The query before dumping: numpy arrays and ferrovec's own vectors survive as such.
        query = cv.field(p, "query")
        if query is not None:
            d["query"] = cv.query_json(query)
        if d.get("filter") is not None:
            d["filter"] = cv.filter_dict(cv.field(p, "filter"))
        if d.get("prefetch") is not None:
            d["prefetch"] = self._prefetch_json(cv.field(p, "prefetch"))
        if d.get("lookup_from") is not None:
            d["lookup_from"] = self._lookup_json(cv.field(p, "lookup_from"))
        return d

    def _lookup_json(self, lookup: Any) -> dict[str, Any] | None:
        if lookup is None:
            return None
        name = cv.field(lookup, "collection")
        if not isinstance(name, str):
            raise InvalidInputError(f"lookup_from {lookup!r} names no collection")
        vector = cv.field(lookup, "vector")
        return {"collection": self._name(name), "vector": vector}

    def _request(
        self,
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
    ) -> dict[str, Any]:
        """The JSON request of one universal query (qdrant-client's checks first)."""
        _check_limit("limit", limit, 1)
        if offset is not None:
            _check_limit("offset", offset, 0)
        req: dict[str, Any] = {
            "query": cv.query_json(query),
            "using": cv.using_of(using),
            "filter": cv.filter_dict(query_filter),
            "limit": limit,
            "offset": offset or 0,
            "with_payload": cv.payload_selector(with_payload),
            "with_vector": bool(cv.vector_selector(with_vectors)),
            "score_threshold": score_threshold,
        }
        if prefetch:
            req["prefetch"] = self._prefetch_json(prefetch)
        if search_params is not None:
            req["params"] = cv.dump(search_params)
            if req["params"].get("idf") not in (None, "global"):
                raise UnsupportedError(
                    "IDF over a filtered corpus (SearchParams.idf) is not supported yet"
                )
        if lookup_from is not None:
            req["lookup_from"] = self._lookup_json(lookup_from)
        return req

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
        """Qdrant's universal query: ``query`` is a dense or sparse vector, a ``Document``
        (embedded by the core's BM25 for a sparse vector), a point id, or a query model
        (NearestQuery with MMR, RecommendQuery, DiscoverQuery, ContextQuery, OrderByQuery,
        FusionQuery, RrfQuery, FormulaQuery, SampleQuery); ``prefetch`` gives the candidates
        it merges or re-scores."""
        col = self._col(collection_name)
        req = self._request(
            query,
            using,
            prefetch,
            query_filter,
            search_params,
            limit,
            offset,
            with_payload,
            with_vectors,
            score_threshold,
            lookup_from,
        )
        vsel = cv.vector_selector(with_vectors)
        return cv.make(out.QueryResponse, points=cv.scored_points(col.query(req), vsel))

    def query_batch_points(
        self, collection_name: str, requests: Sequence[Any], **kwargs: Any
    ) -> list[Any]:
        """Several queries, run by the core in parallel over one view of the collection."""
        col = self._col(collection_name)
        reqs = []
        selectors = []
        for r in requests:
            with_vector = cv.field(r, "with_vector")
            reqs.append(
                self._request(
                    cv.field(r, "query"),
                    cv.field(r, "using"),
                    cv.field(r, "prefetch"),
                    cv.field(r, "filter"),
                    cv.field(r, "params"),
                    cv.field(r, "limit") or 10,
                    cv.field(r, "offset"),
                    # A QueryRequest's with_payload=None means no payload.
                    _or_false(cv.field(r, "with_payload")),
                    _or_false(with_vector),
                    cv.field(r, "score_threshold"),
                    cv.field(r, "lookup_from"),
                )
            )
            selectors.append(cv.vector_selector(_or_false(with_vector)))
        return [
            cv.make(out.QueryResponse, points=cv.scored_points(hits, vsel))
            for hits, vsel in zip(col.query_batch(reqs), selectors)
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
        with its best ``group_size`` points, groups ordered by their best point;
        ``with_lookup`` adds, per group, the point of that id from another collection."""
        _check_limit("group_size", group_size, 1)
        col = self._col(collection_name)
        req = self._request(
            query,
            using,
            prefetch,
            query_filter,
            search_params,
            limit,
            None,
            with_payload,
            with_vectors,
            score_threshold,
            lookup_from,
        )
        req["group_by"] = group_by
        req["group_size"] = group_size
        vsel = cv.vector_selector(with_vectors)
        groups = [
            cv.make(out.PointGroup, id=value, hits=cv.scored_points(hits, vsel), lookup=None)
            for value, hits in col.query_groups(req)
        ]
        if with_lookup is not None:
            self._lookup_groups(groups, with_lookup)
        return out.GroupsResult(groups=groups)

    def _lookup_groups(self, groups: list[Any], with_lookup: Any) -> None:
        """Each group's `lookup`: the point whose id is the group's value, in the collection
        `with_lookup` names (a name, or WithLookup with its payload and vector selectors)."""
        if isinstance(with_lookup, str):
            name, payload, vectors = with_lookup, True, False
        else:
            name = cv.field(with_lookup, "collection")
            payload = cv.field(with_lookup, "with_payload")
            payload = True if payload is None else payload
            vectors = _or_false(cv.field(with_lookup, "with_vectors"))
        other = self._col(name)
        vsel = cv.vector_selector(vectors)
        for g in groups:
            pid = cv.lookup_id(g.id)
            recs = (
                []
                if pid is None
                else other.get(
                    [pid], with_payload=cv.payload_selector(payload), with_vectors=bool(vsel)
                )
            )
            g.lookup = cv.record(recs[0], vsel) if recs else None

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
        ``(name, vector)`` pair, a NamedVector or a NamedSparseVector."""
        using, vector = _named_query(query_vector)
        return list(
            self.query_points(
                collection_name,
                vector,
                using=using,
                query_filter=query_filter,
                search_params=search_params,
                limit=limit,
                offset=offset,
                with_payload=with_payload,
                with_vectors=with_vectors,
                score_threshold=score_threshold,
            ).points
        )

    def search_batch(
        self, collection_name: str, requests: Sequence[Any], **kwargs: Any
    ) -> list[list[Any]]:
        reqs = []
        for r in requests:
            using, vector = _named_query(cv.field(r, "vector"))
            reqs.append(
                {
                    "query": vector,
                    "using": using,
                    "filter": cv.field(r, "filter"),
                    "params": cv.field(r, "params"),
                    "limit": cv.field(r, "limit") or 10,
                    "offset": cv.field(r, "offset"),
                    "with_payload": cv.field(r, "with_payload"),
                    "with_vector": cv.field(r, "with_vector"),
                    "score_threshold": cv.field(r, "score_threshold"),
                }
            )
        return [list(r.points) for r in self.query_batch_points(collection_name, reqs)]

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
        """qdrant-client's removed ``recommend``: a RecommendQuery (examples are point ids or
        vectors; ``strategy``: average_vector, the default, best_score or sum_scores)."""
        recommend: dict[str, Any] = {
            "positive": [cv.query_json(x) for x in positive or []],
            "negative": [cv.query_json(x) for x in negative or []],
        }
        if strategy is not None:
            recommend["strategy"] = cv.dump(strategy)
        return list(
            self.query_points(
                collection_name,
                {"recommend": recommend},
                using=using,
                query_filter=query_filter,
                search_params=search_params,
                limit=limit,
                offset=offset,
                with_payload=with_payload,
                with_vectors=with_vectors,
                score_threshold=score_threshold,
                lookup_from=lookup_from,
            ).points
        )


def _named_query(query_vector: Any) -> tuple[str | None, Any]:
    """(using, vector) of an older search's ``query_vector``."""
    if isinstance(query_vector, tuple) and len(query_vector) == 2:
        return cv.using_of(query_vector[0]), query_vector[1]
    name = cv.field(query_vector, "name")
    vector = cv.field(query_vector, "vector")
    if name is not None and vector is not None:
        return cv.using_of(name), vector
    if query_vector is None or isinstance(query_vector, (str, int, dict)):
        raise InvalidInputError("query_vector must be a vector")
    return None, query_vector
