"""Hundreds of random filters over random nested payloads: `count`, `scroll` and exact `search`
must pick exactly the points a plain-Python evaluator of Qdrant's filter semantics picks, with
no payload index, with every key indexed, and after a reopen. The store holds sealed segments,
in-memory rows, deleted points and payload updates, so every path of the planner is exercised."""

from __future__ import annotations

import math
import random
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

import ferrovec

DIM = 8
WORDS = ["red", "green", "blue", "amber", "violet", "black"]
TEXT_WORDS = ["vector", "store", "fast", "rust", "python", "search", "index", "crash"]
BASE_TIME = datetime(2024, 1, 1, tzinfo=timezone.utc)


# ----- a reference evaluator, written from Qdrant's documented semantics ----------------------


def parse_key(key: str) -> list:
    steps: list = []
    for part in key.split("."):
        name, _, rest = part.partition("[")
        steps.append(("key", name))
        rest = "[" + rest if rest else ""
        for m in re.finditer(r"\[(\d*)\]", rest):
            steps.append(("all", None) if m.group(1) == "" else ("idx", int(m.group(1))))
    return steps


def collect(v: Any, steps: list, out: list) -> None:
    if not steps:
        if isinstance(v, list):
            out.extend(v)
        else:
            out.append(v)
        return
    (kind, arg), rest = steps[0], steps[1:]
    if kind == "key":
        if isinstance(v, dict) and arg in v:
            collect(v[arg], rest, out)
    elif kind == "all":
        if isinstance(v, list):
            for x in v:
                collect(x, rest, out)
    elif isinstance(v, list) and arg < len(v):
        collect(v[arg], rest, out)


def values(payload: dict, key: str) -> list:
    out: list = []
    collect(payload, parse_key(key), out)
    return out


def is_int(v: Any) -> bool:
    return type(v) is int


def is_num(v: Any) -> bool:
    return type(v) in (int, float)


def scalar_eq(v: Any, s: Any) -> bool:
    return type(v) is type(s) and v == s


def tokens(s: str) -> list[str]:
    return [t for t in re.split(r"[^0-9a-zA-Z]+", s.lower()) if t]


def as_time(s: Any) -> float | None:
    if not isinstance(s, str):
        return None
    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        return None
    return t.timestamp()


def in_bounds(x: float, b: dict, conv=lambda v: v) -> bool:
    return (
        ("gt" not in b or x > conv(b["gt"]))
        and ("gte" not in b or x >= conv(b["gte"]))
        and ("lt" not in b or x < conv(b["lt"]))
        and ("lte" not in b or x <= conv(b["lte"]))
    )


def haversine(lat1, lon1, lat2, lon2) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(a)))


def geo(v: Any):
    if isinstance(v, dict) and is_num(v.get("lat")) and is_num(v.get("lon")):
        return v["lat"], v["lon"]
    return None


def field_matches(c: dict, payload: dict) -> bool:
    vals = values(payload, c["key"])
    if "match" in c:
        m = c["match"]
        if "value" in m:
            return any(scalar_eq(v, m["value"]) for v in vals)
        if "any" in m:
            return any(scalar_eq(v, s) for v in vals for s in m["any"])
        if "except" in m:
            return any(
                (isinstance(v, (str, bool)) or is_int(v))
                and not any(scalar_eq(v, s) for s in m["except"])
                for v in vals
            )
        if "text" in m:
            want = tokens(m["text"])
            return any(isinstance(v, str) and all(w in tokens(v) for w in want) for v in vals)
        if "text_any" in m:
            want = tokens(m["text_any"])
            return any(isinstance(v, str) and any(w in tokens(v) for w in want) for v in vals)
        if "phrase" in m:
            want = tokens(m["phrase"])
            for v in vals:
                if isinstance(v, str):
                    t = tokens(v)
                    if any(t[i : i + len(want)] == want for i in range(len(t) - len(want) + 1)):
                        return True
            return False
    if "range" in c:
        b = c["range"]
        if any(isinstance(x, str) for x in b.values()):
            return any(
                (t := as_time(v)) is not None and in_bounds(t, b, lambda s: as_time(s))
                for v in vals
            )
        return any(is_num(v) and in_bounds(v, b) for v in vals)
    if "values_count" in c:
        return in_bounds(sum(v is not None for v in vals), c["values_count"])
    if "geo_radius" in c:
        g = c["geo_radius"]
        ctr = g["center"]
        return any(
            (p := geo(v)) is not None and haversine(ctr["lat"], ctr["lon"], *p) <= g["radius"]
            for v in vals
        )
    if "geo_bounding_box" in c:
        g = c["geo_bounding_box"]
        tl, br = g["top_left"], g["bottom_right"]
        return any(
            (p := geo(v)) is not None
            and br["lat"] <= p[0] <= tl["lat"]
            and tl["lon"] <= p[1] <= br["lon"]
            for v in vals
        )
    raise AssertionError(c)


def cond_matches(c: dict, pid: Any, payload: dict) -> bool:
    if "key" in c:
        if c.get("is_empty"):
            return all(v is None for v in values(payload, c["key"]))
        return field_matches(c, payload)
    if "is_empty" in c:
        return all(v is None for v in values(payload, c["is_empty"]["key"]))
    if "is_null" in c:
        return any(v is None for v in values(payload, c["is_null"]["key"]))
    if "has_id" in c:
        return pid in c["has_id"]
    if "nested" in c:
        n = c["nested"]
        return any(
            isinstance(e, dict) and filter_matches(n["filter"], None, e)
            for e in values(payload, n["key"])
        )
    return filter_matches(c, pid, payload)


def filter_matches(f: dict, pid: Any, payload: dict) -> bool:
    def as_list(x):
        return x if isinstance(x, list) else [x]

    must = as_list(f.get("must", []))
    should = as_list(f.get("should", []))
    must_not = as_list(f.get("must_not", []))
    ok = all(cond_matches(c, pid, payload) for c in must)
    ok = ok and (not should or any(cond_matches(c, pid, payload) for c in should))
    ok = ok and not any(cond_matches(c, pid, payload) for c in must_not)
    if "min_should" in f:
        ms = f["min_should"]
        ok = ok and sum(cond_matches(c, pid, payload) for c in ms["conditions"]) >= ms["min_count"]
    return ok


# ----- random data and filters ---------------------------------------------------------------


def when(rng: random.Random) -> str:
    t = BASE_TIME + timedelta(hours=rng.randrange(0, 24 * 60))
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def random_payload(rng: random.Random) -> dict:
    p: dict = {}
    r = rng.random()
    if r < 0.6:
        p["kw"] = rng.choice(WORDS)
    elif r < 0.8:
        p["kw"] = rng.sample(WORDS, rng.randrange(0, 3))
    elif r < 0.85:
        p["kw"] = None
    elif r < 0.9:
        p["kw"] = rng.randrange(5)  # a number where strings are usual
    if rng.random() < 0.8:
        p["num"] = rng.choice([rng.randrange(-20, 20), round(rng.uniform(-20, 20), 2)])
    if rng.random() < 0.3:
        p["num"] = [rng.randrange(-20, 20) for _ in range(rng.randrange(0, 3))]
    if rng.random() < 0.7:
        p["flag"] = rng.random() < 0.5
    if rng.random() < 0.7:
        p["when"] = when(rng)
    if rng.random() < 0.6:
        p["loc"] = {"lat": rng.uniform(40, 60), "lon": rng.uniform(-10, 30)}
    if rng.random() < 0.7:
        p["text"] = " ".join(rng.choice(TEXT_WORDS) for _ in range(rng.randrange(1, 6)))
    if rng.random() < 0.6:
        p["meta"] = {"src": rng.choice(["a.pdf", "b.md", "c.html"]), "n": rng.randrange(10)}
    if rng.random() < 0.5:
        p["items"] = [
            {"a": rng.choice(WORDS), "b": rng.randrange(10)} for _ in range(rng.randrange(0, 4))
        ]
    return p


def random_condition(rng: random.Random, ids: list, depth: int) -> dict:
    kinds = [
        "kw",
        "kw_any",
        "kw_except",
        "num_range",
        "num_match",
        "flag",
        "when",
        "count",
        "geo_r",
        "geo_box",
        "text",
        "text_any",
        "phrase",
        "empty",
        "null",
        "meta",
        "items",
        "nested",
        "has_id",
        "empty_field",
    ]
    if depth < 2:
        kinds.append("sub")
    k = rng.choice(kinds)
    if k == "kw":
        return {"key": "kw", "match": {"value": rng.choice(WORDS)}}
    if k == "kw_any":
        return {"key": "kw", "match": {"any": rng.sample(WORDS, 2)}}
    if k == "kw_except":
        return {"key": "kw", "match": {"except": rng.sample(WORDS, 3)}}
    if k == "num_range":
        lo = rng.randrange(-20, 15)
        b = {rng.choice(["gt", "gte"]): lo, rng.choice(["lt", "lte"]): lo + rng.randrange(1, 15)}
        return {"key": "num", "range": b}
    if k == "num_match":
        return {"key": "num", "match": {"any": [rng.randrange(-20, 20) for _ in range(4)]}}
    if k == "flag":
        return {"key": "flag", "match": {"value": rng.random() < 0.5}}
    if k == "when":
        a, b = sorted([when(rng), when(rng)])
        return {"key": "when", "range": {"gte": a, "lt": b}}
    if k == "count":
        return {"key": "num", "values_count": {"gte": rng.randrange(0, 3)}}
    if k == "geo_r":
        return {
            "key": "loc",
            "geo_radius": {
                "center": {"lat": rng.uniform(40, 60), "lon": rng.uniform(-10, 30)},
                "radius": rng.uniform(100_000, 900_000),
            },
        }
    if k == "geo_box":
        lat, lon = rng.uniform(40, 55), rng.uniform(-10, 20)
        return {
            "key": "loc",
            "geo_bounding_box": {
                "top_left": {"lat": lat + 5, "lon": lon},
                "bottom_right": {"lat": lat, "lon": lon + 10},
            },
        }
    if k == "text":
        return {"key": "text", "match": {"text": " ".join(rng.sample(TEXT_WORDS, 2))}}
    if k == "text_any":
        return {"key": "text", "match": {"text_any": " ".join(rng.sample(TEXT_WORDS, 2))}}
    if k == "phrase":
        return {"key": "text", "match": {"phrase": " ".join(rng.sample(TEXT_WORDS, 2))}}
    if k == "empty":
        return {"is_empty": {"key": rng.choice(["kw", "num", "items"])}}
    if k == "null":
        return {"is_null": {"key": "kw"}}
    if k == "empty_field":
        return {"key": rng.choice(["kw", "meta.src"]), "is_empty": True}
    if k == "meta":
        return {"key": "meta.src", "match": {"value": rng.choice(["a.pdf", "b.md", "c.html"])}}
    if k == "items":
        return {"key": "items[].a", "match": {"value": rng.choice(WORDS)}}
    if k == "nested":
        return {
            "nested": {
                "key": "items",
                "filter": {
                    "must": [
                        {"key": "a", "match": {"value": rng.choice(WORDS)}},
                        {"key": "b", "range": {"gte": rng.randrange(10)}},
                    ]
                },
            }
        }
    if k == "has_id":
        return {"has_id": rng.sample(ids, 30)}
    return random_filter(rng, ids, depth + 1)


def random_filter(rng: random.Random, ids: list, depth: int = 0) -> dict:
    f: dict = {}
    for clause in ("must", "should", "must_not"):
        if rng.random() < 0.5:
            n = rng.randrange(1, 3)
            cs = [random_condition(rng, ids, depth) for _ in range(n)]
            f[clause] = cs if n > 1 or rng.random() < 0.5 else cs[0]
    if rng.random() < 0.15:
        f["min_should"] = {
            "conditions": [random_condition(rng, ids, depth) for _ in range(3)],
            "min_count": rng.randrange(1, 3),
        }
    return f


# ----- the test ------------------------------------------------------------------------------


INDEXES = [
    ("kw", "keyword"),
    ("num", "float"),
    ("flag", "bool"),
    ("when", "datetime"),
    ("loc", "geo"),
    ("text", "text"),
    ("meta.src", "keyword"),
    ("items[].a", "keyword"),
    ("meta.n", "integer"),
]


def check_all(col, model: dict, vectors: dict, filters: list, rng: np.random.Generator) -> None:
    ids = sorted(model)
    for i, f in enumerate(filters):
        want = {pid for pid in ids if filter_matches(f, pid, model[pid])}
        assert col.count(filter=f) == len(want), (i, f)
        got, nxt = col.scroll(limit=10_000, filter=f, with_payload=False)
        assert nxt is None
        got_ids = [r.id for r in got]
        assert got_ids == sorted(want), (i, f)
        if i % 3 == 0 and want:
            q = rng.standard_normal(DIM).astype(np.float32)
            cand = sorted(want, key=lambda pid: -float(np.dot(vectors[pid], q)))[:5]
            hits = col.search(q, k=5, filter=f, exact=True, with_payload=False)
            assert [h.id for h in hits] == cand, (i, f)


def test_random_filters_match_reference(tmp_path):
    prng = random.Random(7)
    nrng = np.random.default_rng(7)
    path = tmp_path / "store"
    model: dict = {}
    vectors: dict = {}

    db = ferrovec.open(path)
    col = db.create_collection(
        "c",
        dim=DIM,
        distance="dot",
        hnsw={"full_scan_threshold": 100},
        optimizer={"idle_ms": 60_000},
    )

    def upsert(id_list: list) -> None:
        vs = nrng.standard_normal((len(id_list), DIM)).astype(np.float32)
        ps = [random_payload(prng) for _ in id_list]
        col.upsert(id_list, vs, ps)
        for pid, v, p in zip(id_list, vs, ps):
            model[pid], vectors[pid] = p, v

    upsert(list(range(0, 500)))
    col.optimize()  # a sealed segment with a graph
    upsert(list(range(500, 700)) + list(range(0, 40)))  # in-memory rows, some replacing sealed
    for pid in range(40, 70):  # deletes in the sealed segment
        col.delete([pid])
        del model[pid], vectors[pid]
    col.set_payload({"kw": "violet", "flag": True}, ids=list(range(100, 120)))
    for pid in range(100, 120):
        model[pid].update({"kw": "violet", "flag": True})
    col.delete_payload(["text"], filter={"must": {"key": "meta.src", "match": {"value": "b.md"}}})
    for p in model.values():
        if p.get("meta", {}).get("src") == "b.md":
            p.pop("text", None)

    filters = [random_filter(prng, sorted(model)) for _ in range(250)]
    check_all(col, model, vectors, filters, nrng)

    for key, kind in INDEXES:
        col.create_payload_index(key, kind)
    assert {i["key"] for i in col.info()["payload_indexes"]} == {k for k, _ in INDEXES}
    check_all(col, model, vectors, filters, nrng)

    col.flush()  # the in-memory rows become a second segment, indexed as it is sealed
    check_all(col, model, vectors, filters, nrng)
    db.close()

    with ferrovec.open(path) as db2:
        col2 = db2.collection("c")
        check_all(col2, model, vectors, filters, nrng)
        col2.optimize()  # merged into one segment whose indexes are rebuilt
        check_all(col2, model, vectors, filters, nrng)
        for key, _ in INDEXES:
            col2.drop_payload_index(key)
        assert col2.info()["payload_indexes"] == []
        check_all(col2, model, vectors, filters[:60], nrng)


def test_facet_and_order_by(tmp_path):
    prng = random.Random(3)
    with ferrovec.open(tmp_path / "s") as db:
        col = db.create_collection("c", dim=4, distance="dot")
        payloads = [random_payload(prng) for _ in range(300)]
        col.upsert(list(range(300)), np.ones((300, 4), np.float32), payloads)
        col.flush()
        col.upsert([300], np.ones((1, 4), np.float32), [{"kw": "red", "when": when(prng)}])
        payloads.append({"kw": "red", "when": payloads[0].get("when", when(prng))})
        payloads[300] = col.get([300])[0].payload
        f = {"must_not": {"key": "flag", "match": {"value": True}}}
        want: dict = {}
        for pid, p in enumerate(payloads):
            if filter_matches(f, pid, p):
                for v in set(x for x in values(p, "kw") if isinstance(x, str)):
                    want[v] = want.get(v, 0) + 1
        expect = sorted(want.items(), key=lambda kv: (-kv[1], kv[0]))[:4]
        assert col.facet("kw", filter=f, limit=4) == expect
        col.create_payload_index("kw", "keyword")
        assert col.facet("kw", filter=f, limit=4) == expect

        with pytest.raises(ferrovec.errors.InvalidInputError, match="payload index"):
            col.scroll(5, order_by="when")
        col.create_payload_index("when", "datetime")
        got, nxt = col.scroll(10, order_by={"key": "when", "direction": "desc"}, filter=f)
        assert nxt is None
        times = [datetime.fromisoformat(r.payload["when"]) for r in got]
        assert times == sorted(times, reverse=True)
        everyone = sorted(
            (datetime.fromisoformat(p["when"]), pid)
            for pid, p in enumerate(payloads)
            if "when" in p and filter_matches(f, pid, p)
        )
        assert times[0] == everyone[-1][0]
        start = everyone[len(everyone) // 2][0].strftime("%Y-%m-%dT%H:%M:%SZ")
        got, _ = col.scroll(1000, order_by={"key": "when", "start_from": start}, filter=f)
        assert len(got) == sum(1 for t, _ in everyone if t >= everyone[len(everyone) // 2][0])


@pytest.mark.parametrize(
    "bad, part",
    [
        ({"must": [{"key": "a", "range": {"gt": "soon"}}]}, "filter.must[0].range.gt"),
        ({"must": [{"key": "a", "match": {"valu": 1}}]}, "filter.must[0].match.valu"),
        ({"should": {"key": "", "match": {"value": 1}}}, "filter.should.key"),
        ({"must": {"nested": {"key": "x", "filter": {"must": {"has_id": [1]}}}}}, "has_id"),
        (
            {"must": {"key": "loc", "geo_radius": {"center": {"lat": 99, "lon": 0}, "radius": 1}}},
            "lat",
        ),
        ({"mustt": []}, "filter.mustt"),
        ({"must": [{"key": "a", "match": {"value": 1.5}}]}, "not an integer"),
        ({"must": [{"key": "a", "match": {"text": "  "}}]}, "no words"),
        ({"must": [{"key": "a[x]", "match": {"value": 1}}]}, "invalid key"),
    ],
)
def test_malformed_filters_name_the_part(db, bad, part):
    col = db.create_collection("c", dim=2)
    col.upsert([1], [[1.0, 0.0]], [{"a": 1}])
    for call in (
        lambda: col.count(filter=bad),
        lambda: col.search([1.0, 0.0], filter=bad),
        lambda: col.scroll(filter=bad),
        lambda: col.delete(filter=bad),
        lambda: col.set_payload({"x": 1}, filter=bad),
    ):
        with pytest.raises(ferrovec.errors.InvalidInputError, match=re.escape(part)):
            call()
    assert col.get([1])[0].payload == {"a": 1}


def test_qdrant_client_models_are_accepted(db):
    models = pytest.importorskip("qdrant_client.models")
    col = db.create_collection("c", dim=2)
    col.upsert([1, 2], [[1.0, 0.0], [0.0, 1.0]], [{"city": "Oslo"}, {"city": "Rome"}])
    f = models.Filter(
        must=[models.FieldCondition(key="city", match=models.MatchValue(value="Rome"))]
    )
    assert col.count(filter=f) == 1
    assert [h.id for h in col.search([1.0, 0.0], filter=f)] == [2]
