"""Write the store of format version N that `tests/compat/test_old_stores.py` opens in every
later version: `python tests/compat/make_fixture.py tests/compat/v5`, run with the version that
writes format N, once, when that version is current. The result is committed and never
regenerated: it is what an old ferrovec really wrote.

It holds every kind of file the engine writes:
- `store/`: two collections. "plain" (cosine, 8-d): one segment with an HNSW graph and int8
  codes, keyword, integer and datetime payload indexes, a deletion bitmap, and log records after
  the checkpoint (the process dies without closing, so they are not checkpointed). "named"
  (vectors "text": 6-d cosine, "image": 4-d euclid, some points lacking "image"): a graph per
  vector. From format 6 on, "hybrid" too (an unnamed 4-d dense vector and the sparse vector
  "text" with modifier idf, made from documents by BM25): a segment with its sparse files
  (vectors and inverted index), and sparse log records after the checkpoint. From format 7 on,
  "int4" and "binary" (32-d cosine, 400 points each): a segment with a graph and int4 or binary
  codes (with the collection's quantization settings). From format 8 on, "int4" keeps its f32
  rows resident and "binary" reads them from disk (`vectors_on_disk` False and True).
  `store/snapshots/`: a snapshot of the collections;
- `backups/`: a full backup of them;
- `expected.json`: what searches, counts and reads returned in the writing process.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

import ferrovec

COLORS = ["red", "green", "blue"]


def main(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rng = np.random.default_rng(5)
    db = ferrovec.open(out / "store")
    hnsw = {"m": 8, "ef_construct": 32, "full_scan_threshold": 100}
    plain = db.create_collection("plain", dim=8, distance="cosine", hnsw=hnsw)
    n = 300
    payloads = [
        {"color": COLORS[i % 3], "n": i, "at": f"2024-01-{1 + i % 28:02d}T00:00:00Z", "s": f"p{i}"}
        for i in range(n)
    ]
    plain.upsert(list(range(n)), rng.standard_normal((n, 8), dtype=np.float32), payloads)
    plain.create_payload_index("color", "keyword")
    plain.create_payload_index("n", "integer")
    plain.create_payload_index("at", "datetime")
    plain.optimize()
    plain.delete(list(range(0, 20, 2)))
    plain.flush()  # the deletion bitmap

    named = db.create_collection(
        "named",
        vectors={
            "text": {"dim": 6, "distance": "cosine"},
            "image": {"dim": 4, "distance": "euclid"},
        },
        hnsw=hnsw,
    )
    m = 250
    image = rng.standard_normal((m, 4), dtype=np.float32)
    image[::5] = np.nan  # every fifth point has no image
    named.upsert(
        [f"doc-{i}" for i in range(m)],
        {"text": rng.standard_normal((m, 6), dtype=np.float32), "image": image},
        [{"i": i} for i in range(m)],
    )
    named.optimize()

    hybrid = db.create_collection("hybrid", dim=4, sparse={"text": {"modifier": "idf"}})
    words = ["fox", "dog", "quick", "lazy", "jumps", "sleeps", "brown", "river", "stone"]
    texts = [" ".join(words[(i * k) % len(words)] for k in (1, 2, 3, 5)) for i in range(120)]
    hybrid.upsert(
        list(range(120)),
        {
            "": rng.standard_normal((120, 4), dtype=np.float32),
            "text": [ferrovec.Document(t) if i % 9 else None for i, t in enumerate(texts)],
        },
        [{"t": t} for t in texts],
    )
    hybrid.optimize()

    coded = {}
    for kind, oversampling, on_disk in (("int4", 3.0, False), ("binary", 6.0, True)):
        col = db.create_collection(
            kind,
            dim=32,
            hnsw=hnsw,
            quantization={"codes": kind, "oversampling": oversampling, "rescore": True},
            vectors_on_disk=on_disk,
        )
        col.upsert(list(range(400)), rng.standard_normal((400, 32), dtype=np.float32))
        col.optimize()
        coded[kind] = col

    db.create_snapshot()
    db.backup(out / "backups")

    # After the checkpoint: records only the log holds.
    plain.upsert(
        [1000, 1001, 1002],
        rng.standard_normal((3, 8), dtype=np.float32),
        [{"color": "red", "n": 1000 + i, "at": "2024-02-01T00:00:00Z"} for i in range(3)],
    )
    plain.delete([21, 23])
    plain.set_payload({"edited": True}, [25])
    hybrid.upsert(
        [200, 201],
        {"": np.ones((2, 4), np.float32), "text": [ferrovec.Document("quick quick fox"), None]},
    )
    hybrid.delete([3])

    q = np.linspace(-1, 1, 8, dtype=np.float32)
    red = {"must": [{"key": "color", "match": {"value": "red"}}]}
    expected = {
        "plain_count": plain.count(),
        "plain_red": plain.count(filter=red),
        "plain_top10": [h.id for h in plain.search(q, k=10, exact=True)],
        "plain_red_top5": [h.id for h in plain.search(q, k=5, filter=red, exact=True)],
        "plain_25": plain.get([25])[0].payload,
        "named_count": named.count(),
        "named_text_top5": [
            h.id for h in named.search(np.ones(6, np.float32), k=5, using="text", exact=True)
        ],
        "named_image_top5": [
            h.id for h in named.search(np.zeros(4, np.float32), k=5, using="image", exact=True)
        ],
        "query": q.tolist(),
        "collections": sorted(db.list_collections()),
        "hybrid_count": hybrid.count(),
        "hybrid_bm25_top5": [
            [h.id, h.score]
            for h in hybrid.search(ferrovec.Document("quick fox"), k=5, using="text")
        ],
        "hybrid_rrf_top5": [
            h.id
            for h in hybrid.query(
                {
                    "prefetch": [
                        {"query": [1.0, 0.5, 0.0, -0.5], "params": {"exact": True}},
                        {"query": {"text": "lazy dog", "model": "qdrant/bm25"}, "using": "text"},
                    ],
                    "query": {"fusion": "rrf"},
                    "limit": 5,
                }
            )
        ],
    }
    q32 = np.ones(32, np.float32)
    expected["query32"] = q32.tolist()
    for kind, col in coded.items():
        expected[f"{kind}_quantization"] = col.info()["quantization"]
        expected[f"{kind}_vectors_on_disk"] = col.info()["vectors_on_disk"]
        expected[f"{kind}_top5"] = [h.id for h in col.search(q32, k=5)]
    (out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    # Die without closing: the records above stay in the log, as after a crash.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
