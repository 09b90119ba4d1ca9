"""Sparse vectors and the universal query, compared with qdrant-client's local mode (which
implements sparse vectors, IDF, prefetch, fusion, formulas, recommend, discover and MMR in
Python): random sequences of writes, deletes, overwrites and vector updates, with ferrovec's
collection optimized (sealed into segments with inverted indexes) and reopened along the way,
and after each step random queries of every kind on both sides. Ids must come in the same
order and scores agree within 2e-4.

Collections are small, so dense searches are exact on both sides; vectors and weights are
random floats, so scores do not tie except where Qdrant's own rules make them (RRF ranks,
which both sides order by first appearance).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient as Reference
from qdrant_client import models as m

import ferrovec
from tests.qdrant.test_congruence import COMPARED, World, both, canon, close_scores

DIM = 6
VOCAB = 40


def tied(points: list[dict[str, Any]], i: int) -> bool:
    """Point i shares its score with another in the list, or with the last one (points beyond
    the limit may share it)."""
    s = points[i]["score"]
    near = [j for j, p in enumerate(points) if abs(p["score"] - s) <= 2e-4]
    return len(near) > 1 or abs(points[-1]["score"] - s) <= 2e-4


def same_modulo_ties(got: Any, want: Any) -> bool:
    """Results equal where scores are distinct; among points of equal score (which local mode
    orders arbitrarily, and a limit may cut through), only the scores must agree."""
    if isinstance(got, list) and got and isinstance(got[0], list):
        return len(got) == len(want) and all(same_modulo_ties(g, w) for g, w in zip(got, want))
    if len(got) != len(want):
        return False
    for i, (g, w) in enumerate(zip(got, want)):
        if abs(g["score"] - w["score"]) > 2e-4:
            return False
        if not (tied(want, i) or tied(got, i)) and not close_scores(g, w):
            return False
    return True


# Half the sequences use non-negative weights only (as BM25's), where the core prunes its
# sparse search by score bounds; the others mix in negative ones, which it scores whole.
LOW = {True: 0.001, False: -0.2}


def sparse(rng: random.Random, nnz: int | None = None) -> m.SparseVector:
    idx = sorted(rng.sample(range(VOCAB), nnz or rng.randint(1, 8)))
    low = LOW[getattr(rng, "nonneg", False)]
    return m.SparseVector(indices=idx, values=[round(rng.uniform(low, 1.0), 6) for _ in idx])


class Hybrid:
    """One random hybrid collection on both clients, and random requests for it."""

    def __init__(self, seed: int, tmp: Path) -> None:
        self.rng = rng = random.Random(seed)
        rng.nonneg = seed % 2 == 0  # type: ignore[attr-defined]
        self.w = World(rng)
        self.tmp = tmp
        self.ours = ferrovec.QdrantClient(path=tmp / "store")
        self.ref = Reference(":memory:")
        self.distance = rng.choice([m.Distance.COSINE, m.Distance.DOT, m.Distance.EUCLID])
        self.dense = rng.choice(["", "d"])
        self.idf = rng.random() < 0.7
        config = m.VectorParams(size=DIM, distance=self.distance)
        for c in (self.ours, self.ref):
            c.create_collection(
                "c",
                vectors_config={self.dense: config},
                sparse_vectors_config={
                    "s": m.SparseVectorParams(modifier=m.Modifier.IDF if self.idf else None),
                    "t": m.SparseVectorParams(),
                },
            )

    def vector(self) -> dict[str, Any]:
        r = self.rng
        v: dict[str, Any] = {}
        if r.random() < 0.9:
            v[self.dense] = [r.uniform(-1, 1) for _ in range(DIM)]
        if r.random() < 0.85:
            v["s"] = sparse(r)
        if r.random() < 0.6:
            v["t"] = sparse(r)
        return v

    def points(self, n: int) -> list[m.PointStruct]:
        out = []
        for _ in range(n):
            pid = self.w.pid()
            out.append(m.PointStruct(id=pid, vector=self.vector(), payload=self.w.payload()))
        return out

    def both(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return both(self.ours, self.ref, name, "c", *args, **kwargs)

    def both_modulo_ties(self, name: str, *args: Any, **kwargs: Any) -> None:
        """As `both`, for queries whose scores tie by design (discovery and context ranks,
        sparse examples sharing no dimension with a point score 0)."""
        try:
            want = canon(getattr(self.ref, name)("c", *args, **kwargs))
        except ValueError:
            with pytest.raises(ValueError):
                getattr(self.ours, name)("c", *args, **kwargs)
            return
        got = canon(getattr(self.ours, name)("c", *args, **kwargs))
        assert same_modulo_ties(got, want), f"{name}{kwargs}:\n ours {got}\n ref  {want}"
        if want:
            COMPARED[name] += 1

    def existing(self, n: int) -> list[Any]:
        recs, _ = self.ref.scroll("c", limit=1000, with_payload=False)
        ids = [r.id for r in recs]
        return self.rng.sample(ids, min(n, len(ids)))

    # Queries -------------------------------------------------------------------------------

    def dense_query(self) -> list[float]:
        return [self.rng.uniform(-1, 1) for _ in range(DIM)]

    def leaf(self) -> m.Prefetch:
        """A prefetch that searches the collection: dense, or one of the sparse vectors."""
        r = self.rng
        limit = r.choice([None, 5, 15, 40])
        flt = self.w.filter() if r.random() < 0.3 else None
        if r.random() < 0.4:
            return m.Prefetch(
                query=self.dense_query(), using=self.dense or None, limit=limit, filter=flt
            )
        return m.Prefetch(
            query=sparse(r, r.randint(2, 10)), using=r.choice(["s", "t"]), limit=limit, filter=flt
        )

    def fusion(self, n: int) -> Any:
        r = self.rng
        kind = r.randrange(3)
        if kind == 0:
            return m.FusionQuery(fusion=m.Fusion.RRF)
        if kind == 1:
            return m.FusionQuery(fusion=m.Fusion.DBSF)
        weights = [round(r.uniform(0, 2), 3) for _ in range(n)] if r.random() < 0.5 else None
        return m.RrfQuery(rrf=m.Rrf(k=r.randint(1, 60), weights=weights))

    def example(self, using: str) -> Any:
        """A recommend / discover example: a point id, or a vector of the `using` kind."""
        ids = self.existing(1)
        if ids and self.rng.random() < 0.6:
            return ids[0]
        return self.dense_query() if using == self.dense else sparse(self.rng)

    def request(self) -> dict[str, Any]:
        """Keyword arguments of one random query_points call."""
        r = self.rng
        kind = r.randrange(9)
        self.ties = kind in (4, 5)
        args: dict[str, Any] = {"limit": r.randint(1, 12)}
        if r.random() < 0.3:
            args["offset"] = r.randint(0, 4)
        if r.random() < 0.3:
            args["query_filter"] = self.w.filter()
        if r.random() < 0.3:
            args["with_payload"] = r.choice([False, ["color", "n"]])
        using = r.choice([self.dense, "s", "t"])
        if kind == 0:  # sparse nearest
            args.update(query=sparse(r), using=r.choice(["s", "t"]))
            if r.random() < 0.3:
                args["score_threshold"] = r.uniform(0, 1)
        elif kind == 1:  # hybrid fusion of two or three searches
            pre = [self.leaf() for _ in range(r.randint(2, 3))]
            args.update(prefetch=pre, query=self.fusion(len(pre)))
            if r.random() < 0.2:
                args["score_threshold"] = r.uniform(0, 0.5)
        elif kind == 2:  # nested: a fusion re-scored by a dense or sparse vector
            inner = m.Prefetch(
                prefetch=[self.leaf(), self.leaf()], query=self.fusion(2), limit=r.choice([10, 30])
            )
            q: Any = self.dense_query() if using == self.dense else sparse(r)
            args.update(prefetch=[inner, self.leaf()], query=q, using=using or None)
        elif kind == 3:  # a formula over the prefetches' scores and payload values
            pre = [self.leaf(), self.leaf()]
            formula = m.SumExpression(
                sum=[
                    "$score",
                    m.MultExpression(mult=[0.5, "$score[1]"]),
                    m.MultExpression(mult=[0.01, "n"]),
                    m.FieldCondition(key="color", match=m.MatchValue(value="red")),
                ]
            )
            args.update(prefetch=pre, query=m.FormulaQuery(formula=formula, defaults={"n": 3}))
        elif kind == 4:  # recommend
            strategy = r.choice(list(m.RecommendStrategy))
            pos = [self.example(using) for _ in range(r.randint(1, 2))]
            neg = [self.example(using) for _ in range(r.randint(0, 2))]
            args.update(
                query=m.RecommendQuery(
                    recommend=m.RecommendInput(positive=pos, negative=neg, strategy=strategy)
                ),
                using=using or None,
            )
        elif kind == 5:  # discover
            pos, neg = self.example(using), self.example(using)
            if pos == neg:  # one example on both sides ties every point but for rounding
                return self.request()
            ctx = [m.ContextPair(positive=pos, negative=neg)]
            args.update(
                query=m.DiscoverQuery(
                    discover=m.DiscoverInput(target=self.example(using), context=ctx)
                ),
                using=using or None,
            )
        elif kind == 6:  # MMR over dense or sparse candidates
            q = self.dense_query() if using == self.dense else sparse(r)
            mmr = m.Mmr(diversity=round(r.uniform(0, 1), 2), candidates_limit=r.randint(5, 30))
            args.update(query=m.NearestQuery(nearest=q, mmr=mmr), using=using or None)
        elif kind == 7:  # a point id as the query (left out of its own results)
            ids = self.existing(1)
            if not ids:
                return self.request()
            args.update(query=ids[0], using=using or None)
        else:  # a hybrid query in a query_batch_points request mix
            args.update(prefetch=[self.leaf(), self.leaf()], query=self.fusion(2))
        if self.ties:
            args.pop("offset", None)  # which tied points an offset skips is arbitrary
        return args

    def query(self) -> None:
        r = self.rng
        if r.random() < 0.15:
            reqs = []
            ties = False
            for _ in range(r.randint(1, 3)):
                a = self.request()
                ties = ties or self.ties
                reqs.append(
                    m.QueryRequest(
                        query=a.get("query"),
                        using=a.get("using"),
                        prefetch=a.get("prefetch"),
                        filter=a.get("query_filter"),
                        limit=a["limit"],
                        offset=a.get("offset"),
                        with_payload=True,
                        score_threshold=a.get("score_threshold"),
                    )
                )
            (self.both_modulo_ties if ties else self.both)("query_batch_points", reqs)
        elif r.random() < 0.1:
            a = self.request()
            a.pop("offset", None)
            if not self.ties:
                self.both(
                    "query_points_groups",
                    group_by=r.choice(["color", "n", "tags"]),
                    group_size=r.randint(1, 3),
                    **a,
                )
        else:
            a = self.request()
            (self.both_modulo_ties if self.ties else self.both)("query_points", **a)

    # Writes ---------------------------------------------------------------------------------

    def write(self) -> None:
        r = self.rng
        kind = r.randrange(6)
        if kind <= 1:
            self.both("upsert", self.points(r.randint(1, 6)))
        elif kind == 2:
            self.both("delete", m.PointIdsList(points=self.existing(2)))
        elif kind == 3:
            ids = self.existing(2)
            if ids:
                pts = [m.PointVectors(id=i, vector={r.choice(["s", "t"]): sparse(r)}) for i in ids]
                self.both("update_vectors", pts)
        elif kind == 4:
            ids = self.existing(2)
            if ids:
                self.both("delete_vectors", [r.choice(["s", "t", self.dense])], ids)
        else:
            ids = self.existing(3)
            if ids:
                self.both("set_payload", self.w.payload() or {"x": 1}, ids)

    def settle(self) -> None:
        """Seal ferrovec's rows into segments (inverted indexes built), or reopen the store."""
        if self.rng.random() < 0.5:
            self.ours._db.collection("c").optimize()
        else:
            self.ours.close()
            self.ours = ferrovec.QdrantClient(path=self.tmp / "store")


@pytest.mark.parametrize("seed", range(20))
def test_hybrid_sequences_match_local_mode(seed: int, tmp_path: Path) -> None:
    COMPARED.clear()
    h = Hybrid(seed, tmp_path)
    h.both("upsert", h.points(40))
    for step in range(60):
        h.write()
        for _ in range(3):
            h.query()
        if step % 15 == 14:
            h.settle()
    h.both("scroll", limit=1000, with_vectors=True)
    assert COMPARED["query_points"] >= 60, COMPARED
    assert COMPARED["scroll"] >= 1
    info = h.ours.get_collection("c")
    assert set(info.config.params.sparse_vectors) == {"s", "t"}


def test_lookup_from_with_lookup_batches_and_older_calls_match_local_mode(tmp_path: Path) -> None:
    """`lookup_from` (examples read in another collection), groups `with_lookup`, a Batch of
    sparse vectors and documents, the older search with NamedSparseVector, and the async
    client: each as local mode answers."""
    import asyncio

    ours = ferrovec.QdrantClient(path=tmp_path / "db")
    ref = Reference(":memory:")
    rng = random.Random(5)
    dense = m.VectorParams(size=DIM, distance=m.Distance.COSINE)
    for c in (ours, ref):
        c.create_collection(
            "c",
            vectors_config={"": dense},
            sparse_vectors_config={"s": m.SparseVectorParams(modifier=m.Modifier.IDF)},
        )
        c.create_collection("other", vectors_config={"": dense})
    ids = list(range(30))
    batch = m.Batch(
        ids=ids,
        vectors={
            "": [[rng.uniform(-1, 1) for _ in range(DIM)] for _ in ids],
            "s": [sparse(rng) for _ in ids],
        },
        payloads=[{"g": i % 4} for i in ids],
    )
    others = [
        m.PointStruct(id=i, vector=[rng.uniform(-1, 1) for _ in range(DIM)]) for i in (0, 1, 2)
    ] + [m.PointStruct(id=3, vector=[0.5] * DIM, payload={"name": "three"})]
    for c in (ours, ref):
        c.upsert("c", batch)
        c.upsert("other", others)
    both(ours, ref, "scroll", "c", limit=100, with_vectors=True)
    both(
        ours,
        ref,
        "query_points",
        "c",
        query=m.RecommendQuery(recommend=m.RecommendInput(positive=[0, 1], negative=[2])),
        lookup_from=m.LookupLocation(collection="other"),
        limit=5,
    )
    both(
        ours,
        ref,
        "query_points_groups",
        "c",
        group_by="g",
        query=[0.1] * DIM,
        limit=4,
        group_size=2,
        with_lookup=m.WithLookup(collection="other", with_payload=True),
    )
    q = sparse(rng)
    # qdrant-client 1.20 removed search and NamedSparseVector; ferrovec keeps both (RAG code
    # still sends them): they must answer what query_points answers in local mode.
    from ferrovec.qdrant import models as fm

    want = canon(ref.query_points("c", query=q, using="s", limit=5).points)
    got = canon(ours.search("c", fm.NamedSparseVector(name="s", vector=q), limit=5))
    assert close_scores(got, want) and len(want) == 5
    (batch_hits,) = ours.search_batch(
        "c", [fm.SearchRequest(vector=fm.NamedSparseVector(name="s", vector=q), limit=3)]
    )
    assert close_scores(canon(batch_hits), [{**h, "payload": None} for h in want[:3]])

    async def hybrid() -> Any:
        client = ferrovec.AsyncQdrantClient(path=tmp_path / "async")
        await client.create_collection(
            "c", vectors_config={"": dense}, sparse_vectors_config={"s": m.SparseVectorParams()}
        )
        await client.upsert("c", batch)
        res = await client.query_points(
            "c",
            prefetch=[m.Prefetch(query=[0.1] * DIM), m.Prefetch(query=q, using="s")],
            query=m.FusionQuery(fusion=m.Fusion.RRF),
        )
        await client.close()
        return res

    got = [p.id for p in asyncio.run(hybrid()).points]
    want = [
        p.id
        for p in ours.query_points(
            "c",
            prefetch=[m.Prefetch(query=[0.1] * DIM), m.Prefetch(query=q, using="s")],
            query=m.FusionQuery(fusion=m.Fusion.RRF),
        ).points
    ]
    assert got == want and len(got) == 10
    # The groups carry the other collection's point of the group's id.
    groups = ours.query_points_groups(
        "c", group_by="g", query=[0.1] * DIM, with_lookup="other", limit=4
    ).groups
    assert {g.id: g.lookup.id for g in groups if g.lookup} == {g.id: g.id for g in groups}
    ours.close()
