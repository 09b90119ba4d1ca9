"""The same random sequences of operations applied to ferrovec's QdrantClient (on disk) and to
qdrant-client's local mode (the reference for semantics), comparing everything they return.

Searches use exact=True so that both sides are exact and comparable. Vectors are random floats,
so scores do not tie (one point may hold a zero vector, which scores 0 under cosine). Some
sequences run on a collection of two named vectors, of different sizes and distances.
"""

from __future__ import annotations

import datetime
import random
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient as Reference
from qdrant_client import models as m
from qdrant_client.http import models as rest

import ferrovec

DIM = 8
COLORS = ["red", "green", "blue", "black"]
TAGS = ["a", "b", "c", "d", "e"]
ZERO_ID = 7  # the one point that may get a zero vector
# with_payload choices: booleans, keys, paths into objects and arrays, include and exclude.
SELECTORS = [
    True,
    False,
    ["color", "n"],
    m.PayloadSelectorExclude(exclude=["meta"]),
    ["meta.k", "objs[].v", "tags[]"],
    m.PayloadSelectorInclude(include=["meta.depth", "n.x", "color"]),
    m.PayloadSelectorExclude(exclude=["meta.k", "objs[].v", "tags"]),
    ["objs[0]"],
]


def spelled(u: uuid.UUID, rng: random.Random) -> str:
    """A UUID in one of the spellings Qdrant accepts."""
    return rng.choice([str(u), u.hex, str(u).upper(), "{" + str(u) + "}", "urn:uuid:" + str(u)])


class World:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.uuids = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(10)]

    def pid(self) -> int | str:
        if self.rng.random() < 0.25:
            return spelled(self.rng.choice(self.uuids), self.rng)
        return self.rng.randrange(40)

    def vector(self, pid: Any, cosine: bool, dim: int = DIM) -> list[float]:
        if cosine and pid == ZERO_ID and self.rng.random() < 0.5:
            return [0.0] * dim
        return [self.rng.uniform(-1, 1) for _ in range(dim)]

    def payload(self) -> dict[str, Any] | None:
        r = self.rng
        if r.random() < 0.1:
            return None
        p: dict[str, Any] = {}
        keys = ["color", "n", "price", "tags", "meta", "title", "when", "objs"]
        r.shuffle(keys)
        for k in keys[: r.randint(0, len(keys))]:
            if k == "color":
                p[k] = r.choice(COLORS) if r.random() < 0.9 else None
            elif k == "n":
                p[k] = r.randrange(10)
            elif k == "price":
                p[k] = round(r.uniform(0, 100), 2)
            elif k == "tags":
                p[k] = r.sample(TAGS, r.randint(0, 3))
            elif k == "meta":
                p[k] = {"k": r.choice(COLORS), "depth": r.randrange(3)}
            elif k == "objs":
                p[k] = [{"v": r.randrange(3)} for _ in range(r.randint(0, 2))]
            elif k == "when":  # a datetime object: both store its ISO string
                p[k] = datetime.datetime(2024, 1, 1) + datetime.timedelta(minutes=r.randrange(9999))
            else:
                p[k] = r.choice(["alpha beta", "gamma", "beta delta"])
        return p

    def filter(self) -> m.Filter | None:
        r = self.rng
        conds = [
            lambda: m.FieldCondition(key="color", match=m.MatchValue(value=r.choice(COLORS))),
            lambda: m.FieldCondition(key="color", match=m.MatchAny(any=r.sample(COLORS, 2))),
            lambda: m.FieldCondition(
                key="n", range=m.Range(gte=r.randrange(5), lt=r.randrange(5, 10))
            ),
            lambda: m.FieldCondition(key="price", range=m.Range(gt=r.uniform(0, 60))),
            lambda: m.FieldCondition(key="tags", match=m.MatchValue(value=r.choice(TAGS))),
            lambda: m.FieldCondition(key="meta.k", match=m.MatchValue(value=r.choice(COLORS))),
            lambda: m.HasIdCondition(has_id=[self.pid() for _ in range(5)]),
            lambda: m.IsEmptyCondition(is_empty=m.PayloadField(key="tags")),
            lambda: m.FieldCondition(key="n", match=m.MatchExcept(**{"except": [1, 2, 3]})),
            lambda: m.FieldCondition(
                key="title", match=m.MatchText(text=r.choice(["beta", "gamma"]))
            ),
            lambda: m.FieldCondition(key="tags", values_count=m.ValuesCount(gte=r.randrange(3))),
            lambda: m.IsNullCondition(is_null=m.PayloadField(key="color")),
            lambda: m.FieldCondition(
                key="when",
                range=m.DatetimeRange(
                    gte=datetime.datetime(2024, 1, 1)
                    + datetime.timedelta(minutes=r.randrange(9999))
                ),
            ),
            lambda: m.FieldCondition(key="meta.depth", range=m.Range(lte=r.randrange(3))),
            lambda: (
                m.FieldCondition(key="color", match=m.MatchValue(value=r.choice(COLORS)))
                if r.random() < 0.5
                else m.Filter(
                    min_should=m.MinShould(
                        conditions=[
                            m.FieldCondition(key="color", match=m.MatchValue(value=c))
                            for c in COLORS
                        ]
                        + [m.FieldCondition(key="tags", match=m.MatchValue(value=t)) for t in TAGS],
                        min_count=2,
                    )
                )
            ),
        ]
        roll = r.random()
        if roll < 0.3:
            return None
        pick = lambda k: [r.choice(conds)() for _ in range(k)]  # noqa: E731
        if roll < 0.6:
            return m.Filter(must=pick(r.randint(1, 2)))
        if roll < 0.8:
            return m.Filter(should=pick(2), must_not=pick(1))
        return m.Filter(must_not=pick(r.randint(1, 2)))


def canon_id(pid: Any) -> Any:
    """A point id as stored (UUIDs canonical)."""
    if isinstance(pid, int):
        return pid
    return str(uuid.UUID(pid.strip("{}").removeprefix("urn:uuid:")))


def canon(x: Any) -> Any:
    """Results as plain comparable data: payload key order kept, scores and vectors rounded."""
    if isinstance(x, tuple):
        return tuple(canon(v) for v in x)
    if isinstance(x, list):
        return [canon(v) for v in x]
    if isinstance(x, (m.ScoredPoint, m.Record)):
        d: dict[str, Any] = {
            "id": x.id,
            "payload": None if x.payload is None else list(x.payload.items()),
        }
        if isinstance(x, m.ScoredPoint):
            d["score"] = round(x.score, 4)
        if isinstance(x.vector, dict):
            d["vector"] = {k: canon_vector(vec) for k, vec in x.vector.items()}
        elif x.vector is not None:
            d["vector"] = [round(v, 4) for v in x.vector]
        return d
    if isinstance(x, rest.QueryResponse):
        return canon(x.points)
    if isinstance(x, rest.GroupsResult):
        return [(g.id, canon(g.hits)) for g in x.groups]
    if isinstance(x, m.CountResult):
        return x.count
    if isinstance(x, m.FacetResponse):
        return [(h.value, h.count) for h in x.hits]
    if isinstance(x, m.UpdateResult):
        return x.status
    return x


def canon_vector(v: Any) -> list[float]:
    """A dense vector rounded; a sparse one as its indices, then its values rounded."""
    if isinstance(v, m.SparseVector):
        return [float(i) for i in v.indices] + [round(x, 4) for x in v.values]
    return [round(x, 4) for x in v]


def close_scores(a: Any, b: Any) -> bool:
    """Equal, with scores and vectors within 1e-4 (rounding may differ in the last digit)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return False
        for k in a:
            if k == "score":
                if abs(a[k] - b[k]) > 2e-4:
                    return False
            elif k == "vector" and isinstance(a[k], dict):
                if not isinstance(b[k], dict) or a[k].keys() != b[k].keys():
                    return False
                if not all(np.allclose(a[k][n], b[k][n], atol=2e-4) for n in a[k]):
                    return False
            elif k == "vector":
                if not np.allclose(a[k], b[k], atol=2e-4):
                    return False
            elif a[k] != b[k]:
                return False
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(close_scores(x, y) for x, y in zip(a, b))
    return bool(a == b)


COMPARED: Counter[str] = Counter()  # non-empty results compared, per method


def both(ours: Any, ref: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call `name` on both clients; they must both succeed with equal results or both raise
    errors of the same kind."""
    # Local mode is exact anyway (and warns that search_params has no effect there).
    ref_kwargs = {k: v for k, v in kwargs.items() if k != "search_params"}
    try:
        want = canon(getattr(ref, name)(*args, **ref_kwargs))
        ref_err = None
    except Exception as e:  # the reference decides what is an error
        ref_err = e
    try:
        got = canon(getattr(ours, name)(*args, **kwargs))
        our_err = None
    except Exception as e:
        our_err = e
    if ref_err is not None or our_err is not None:
        assert ref_err is not None and our_err is not None, (
            f"{name}{str(args)[:2000]}{str(kwargs)[:2000]}: reference raised {ref_err!r}, "
            f"ferrovec raised {our_err!r}"
        )
        assert isinstance(our_err, ValueError) == isinstance(ref_err, ValueError), (
            ref_err,
            our_err,
        )
        return None
    assert close_scores(got, want), f"{name}{args}{kwargs}:\n ferrovec  {got}\n reference {want}"
    if want not in ([], ([], None), 0, None):
        COMPARED[name] += 1
    return got


def run_sequence(seed: int, tmp: Path, steps: int, named: bool = False) -> None:
    rng = random.Random(seed)
    w = World(rng)
    ours = ferrovec.QdrantClient(path=tmp / f"s{seed}")
    ref = Reference(":memory:")
    all_distances = [m.Distance.COSINE, m.Distance.DOT, m.Distance.EUCLID, m.Distance.MANHATTAN]
    distance = rng.choice(all_distances)
    # One unnamed vector, or two named ones ("text" as the unnamed one would be, "image"
    # smaller, with a distance of its own).
    dims = {"text": DIM, "image": 4} if named else {"": DIM}
    distances = {"text": distance, "image": rng.choice(all_distances)} if named else {"": distance}
    config: Any = {n: m.VectorParams(size=dims[n], distance=distances[n]) for n in dims}
    for c in (ours, ref):
        c.create_collection("c", vectors_config=config if named else config[""])
    both(ours, ref, "collection_exists", "c")
    both(ours, ref, "collection_exists", "nope")

    def vector(pid: Any, name: str) -> list[float]:
        return w.vector(pid, distances[name] == m.Distance.COSINE, dims[name])

    def point_vector(pid: Any, names: list[str] | None = None) -> Any:
        """The vectors of a point (those named, else each with probability 0.8, as a point
        may lack some): a list, or a dict for named vectors."""
        if not named:
            return vector(pid, "")
        names = names or [n for n in dims if rng.random() < 0.8]
        return {n: vector(pid, n) for n in names}

    def query() -> tuple[str | None, list[float]]:
        """A vector to search with (`using`, query)."""
        using = rng.choice(list(dims)) if named else None
        return using, [rng.uniform(-1, 1) for _ in range(dims[using or ""])]

    def points(n: int) -> list[m.PointStruct]:
        out = []
        for _ in range(n):
            pid = w.pid()
            out.append(m.PointStruct(id=pid, vector=point_vector(pid), payload=w.payload()))
        return out

    both(ours, ref, "upsert", "c", points(30))

    def operation() -> Any:
        """One operation of a batch_update_points call."""
        ids = [w.pid() for _ in range(3)]
        existing = [r.id for r in ref.retrieve("c", ids, with_payload=False)]
        kind = rng.randrange(8)
        if kind == 0:
            return m.UpsertOperation(upsert=m.PointsList(points=points(rng.randint(1, 3))))
        if kind == 1:
            return m.DeleteOperation(delete=m.PointIdsList(points=ids))
        if kind == 2:
            return m.SetPayloadOperation(
                set_payload=m.SetPayload(payload=w.payload() or {"x": 1}, points=existing)
            )
        if kind == 3:
            return m.OverwritePayloadOperation(
                overwrite_payload=m.SetPayload(payload=w.payload() or {}, points=existing)
            )
        if kind == 4:
            return m.DeletePayloadOperation(
                delete_payload=m.DeletePayload(keys=["color", "meta.k"], points=existing)
            )
        if kind == 5:
            return m.ClearPayloadOperation(clear_payload=m.PointIdsList(points=existing))
        if kind == 6:
            return m.UpdateVectorsOperation(
                update_vectors=m.UpdateVectors(
                    points=[m.PointVectors(id=i, vector=point_vector(i)) for i in existing]
                    or [m.PointVectors(id=1, vector=point_vector(1))]
                )
            )
        return m.DeleteVectorsOperation(
            delete_vectors=m.DeleteVectors(points=ids, vector=[rng.choice(list(dims))])
        )

    for _ in range(steps):
        op = rng.randrange(18)
        f = w.filter()
        if op == 0:
            batch = points(rng.randint(1, 8))
            if rng.random() < 0.3:
                batch.append(batch[0].model_copy(update={"vector": point_vector(None)}))
            if rng.random() < 0.3:
                vectors: Any = [p.vector for p in batch]
                if named:  # a Batch has a list per name: the names every point has
                    vectors = {
                        n: [p.vector[n] for p in batch]  # type: ignore[index]
                        for n in dims
                        if all(n in p.vector for p in batch)  # type: ignore[operator]
                    }
                both(
                    ours,
                    ref,
                    "upsert",
                    "c",
                    m.Batch(
                        ids=[p.id for p in batch],
                        vectors=vectors,
                        payloads=[p.payload or {} for p in batch],
                    ),
                )
            else:
                both(ours, ref, "upsert", "c", batch)
        elif op == 15:
            # Conditional upserts (ids distinct: with a repeated id, local mode checks the
            # second copy against the first one's payload; ferrovec keeps only the last copy).
            batch = list({canon_id(p.id): p for p in points(rng.randint(1, 8))}.values())
            both(
                ours,
                ref,
                "upsert",
                "c",
                batch,
                update_filter=f,
                update_mode=rng.choice(
                    [None, m.UpdateMode.UPSERT, m.UpdateMode.INSERT_ONLY, m.UpdateMode.UPDATE_ONLY]
                ),
            )
        elif op == 1:
            ids = [w.pid() for _ in range(3)]
            sel = rng.choice([ids, m.PointIdsList(points=ids)])
            both(ours, ref, "delete", "c", sel)
        elif op == 2 and f is not None and rng.random() < 0.3:
            both(ours, ref, "delete", "c", m.FilterSelector(filter=f))
        elif op == 3:
            sel = [w.pid() for _ in range(4)] if f is None else m.FilterSelector(filter=f)
            new = w.payload() or {"x": 1}
            if rng.random() < 0.3:
                new[rng.choice(["color", "n", "tags", "meta"])] = None  # removes the key
            key = rng.choice([None, None, "meta", "meta.sub", "tags[]", "objs[0]", "new.deep"])
            both(ours, ref, "set_payload", "c", new, sel, key=key)
        elif op == 4:
            sel = [w.pid() for _ in range(4)] if f is None else m.FilterSelector(filter=f)
            both(ours, ref, "overwrite_payload", "c", w.payload() or {}, sel)
        elif op == 5:
            both(
                ours,
                ref,
                "delete_payload",
                "c",
                rng.sample(["color", "n", "tags", "meta", "meta.k", "meta.depth", "tags[]"], 2),
                [w.pid() for _ in range(5)],
            )
        elif op == 6:
            both(ours, ref, "clear_payload", "c", [w.pid() for _ in range(2)])
        elif op == 8 and rng.random() < 0.5:
            # Several queries at once: plain vectors with equal parameters run as one native
            # batch, mixed ones one by one; unset with_payload means none in a request object.
            same = rng.random() < 0.5
            using, _ = query()
            shared = {
                "limit": rng.randint(1, 6),
                "filter": f,
                "with_payload": rng.choice([None, True]),
                "using": using,
            }
            reqs = []
            for _ in range(rng.randint(1, 4)):
                own = {"limit": rng.randint(1, 6), "filter": w.filter(), "using": query()[0]}
                kwargs: dict[str, Any] = shared if same else own
                reqs.append(
                    m.QueryRequest(
                        query=[rng.uniform(-1, 1) for _ in range(dims[kwargs["using"] or ""])],
                        # no params: local mode warns about them, and ferrovec scans
                        # collections under full_scan_threshold exactly anyway
                        **kwargs,
                    )
                )
            both(ours, ref, "query_batch_points", "c", reqs)
        elif op in (7, 8):
            using, q = query()
            both(
                ours,
                ref,
                "query_points",
                "c",
                query=q,
                using=using,
                query_filter=f,
                limit=rng.randint(1, 12),
                offset=rng.choice([None, 0, 2]),
                with_payload=rng.choice(SELECTORS),
                with_vectors=rng.choice(
                    [False, False, True, ["image"]] if named else [False, True]
                ),
                score_threshold=rng.choice([None, None, 0.0]),
                search_params=m.SearchParams(exact=True),
            )
        elif op == 9:
            using, q = query()
            both(
                ours,
                ref,
                "query_points",
                "c",
                # Not the point that may hold a zero vector: every score would tie at 0.
                query=next(p for p in iter(w.pid, None) if p != ZERO_ID),
                using=using,
                query_filter=f,
                limit=5,
                search_params=m.SearchParams(exact=True),
            )
            mmr = m.Mmr(
                diversity=rng.choice([0.0, 0.3, 0.7, 1.0]), candidates_limit=rng.randint(5, 20)
            )
            using, q = query()
            both(
                ours,
                ref,
                "query_points",
                "c",
                query=m.NearestQuery(nearest=q, mmr=mmr),
                using=using,
                query_filter=f,
                limit=rng.randint(1, 6),
                offset=rng.choice([None, 1]),
                search_params=m.SearchParams(exact=True),
            )
        elif op == 10:
            limit = rng.randint(1, 7)
            offset = None
            for _ in range(20):
                page = both(
                    ours,
                    ref,
                    "scroll",
                    "c",
                    scroll_filter=f,
                    limit=limit,
                    offset=offset,
                    with_vectors=rng.random() < 0.2,
                    with_payload=rng.choice(SELECTORS),
                )
                if page is None or page[1] is None:
                    break
                offset = page[1]
        elif op == 11:
            both(
                ours,
                ref,
                "retrieve",
                "c",
                [w.pid() for _ in range(5)],
                with_vectors=rng.random() < 0.5,
                with_payload=rng.choice(SELECTORS),
            )
        elif op == 14:
            using, q = query()
            both(
                ours,
                ref,
                "query_points_groups",
                "c",
                group_by=rng.choice(["color", "n", "tags"]),
                query=q,
                using=using,
                query_filter=f,
                limit=rng.randint(1, 4),
                group_size=rng.randint(1, 3),
                search_params=m.SearchParams(exact=True),
            )
        elif op == 17:
            ops = [operation() for _ in range(rng.randint(1, 3))]
            both(ours, ref, "batch_update_points", "c", ops)
        elif op == 16:
            # Remove vectors (a named one, or the unnamed one) from points by id or filter.
            names = [rng.choice(list(dims))]
            sel = [w.pid() for _ in range(3)] if f is None else m.FilterSelector(filter=f)
            both(ours, ref, "delete_vectors", "c", names, sel)
        elif op == 12:
            both(ours, ref, "count", "c", count_filter=f)
            both(ours, ref, "facet", "c", "color", facet_filter=f, limit=rng.randint(1, 5))
        else:
            ids = list(
                {
                    (
                        p
                        if isinstance(p, int)
                        else str(uuid.UUID(p.strip("{}").removeprefix("urn:uuid:")))
                    )
                    for p in (w.pid() for _ in range(3))
                }
            )
            existing = [r.id for r in ref.retrieve("c", ids, with_payload=False)]
            if rng.random() < 0.3:
                existing = ids  # some may be missing: the rest is updated, then an error
            if existing:
                both(
                    ours,
                    ref,
                    "update_vectors",
                    "c",
                    [
                        m.PointVectors(
                            id=i,
                            # Named: some of the vectors (the others are kept).
                            vector=point_vector(i, rng.choice([["text"], ["image"], None])),
                        )
                        for i in existing
                    ],
                    update_filter=f if rng.random() < 0.4 else None,
                )
        # Bad input now and then: both must refuse it, and it must change nothing.
        if rng.random() < 0.05:
            too_long: Any = [1.0] * (DIM + 1)
            if named:
                too_long = {"text": too_long, "image": [1.0] * 4}
            both(ours, ref, "upsert", "c", [m.PointStruct(id=1, vector=too_long)])
            good = point_vector(1)
            both(ours, ref, "upsert", "c", [m.PointStruct(id="not-a-uuid", vector=good)])
            if named:
                unknown = {**good, "audio": [1.0] * 3}
                both(ours, ref, "upsert", "c", [m.PointStruct(id=1, vector=unknown)])
                both(ours, ref, "upsert", "c", [m.PointStruct(id=1, vector=[1.0] * DIM)])
                both(ours, ref, "query_points", "c", query=[1.0] * DIM, using="audio")
    # Everything, once more, at the end.
    both(ours, ref, "scroll", "c", limit=1000, with_vectors=True)
    both(ours, ref, "count", "c")
    ours.close()
    # ... and after reopening from disk.
    again = ferrovec.QdrantClient(path=tmp / f"s{seed}")
    both(again, ref, "scroll", "c", limit=1000, with_vectors=True)
    again.close()


@pytest.mark.parametrize("seed", range(40))
def test_random_sequences_match_local_mode(seed: int, tmp_path: Path) -> None:
    COMPARED.clear()
    run_sequence(seed, tmp_path, steps=150)
    # The sequence compared real results, not just empty ones or errors.
    for name, least in (("query_points", 3), ("scroll", 3), ("retrieve", 1), ("count", 1)):
        assert COMPARED[name] >= least, (name, COMPARED)


@pytest.mark.parametrize("seed", range(100, 120))
def test_random_sequences_with_named_vectors_match_local_mode(seed: int, tmp_path: Path) -> None:
    COMPARED.clear()
    run_sequence(seed, tmp_path, steps=150, named=True)
    for name, least in (("query_points", 3), ("scroll", 3), ("retrieve", 1), ("count", 1)):
        assert COMPARED[name] >= least, (name, COMPARED)


def test_facets_and_groups_match_local_mode(tmp_path: Path) -> None:
    rng = random.Random(99)
    w = World(rng)
    ours = ferrovec.QdrantClient(path=tmp_path / "f")
    ref = Reference(":memory:")
    for c in (ours, ref):
        c.create_collection(
            "c", vectors_config=m.VectorParams(size=DIM, distance=m.Distance.COSINE)
        )
    points = [
        m.PointStruct(id=i, vector=w.vector(i + 100, True), payload=w.payload() or {})
        for i in range(300)
    ]
    both(ours, ref, "upsert", "c", points)
    COMPARED.clear()
    for _ in range(30):
        f = w.filter()
        both(ours, ref, "facet", "c", "color", facet_filter=f, limit=rng.randint(1, 5))
        both(ours, ref, "facet", "c", "tags", facet_filter=f, limit=rng.randint(1, 5))
        both(ours, ref, "facet", "c", "n", facet_filter=f, limit=rng.randint(1, 5))
        both(
            ours,
            ref,
            "query_points_groups",
            "c",
            group_by=rng.choice(["color", "tags", "meta.k"]),
            query=[rng.uniform(-1, 1) for _ in range(DIM)],
            query_filter=f,
            limit=rng.randint(1, 4),
            group_size=rng.randint(1, 3),
            search_params=m.SearchParams(exact=True),
        )
    assert COMPARED["facet"] >= 60 and COMPARED["query_points_groups"] >= 20, COMPARED
