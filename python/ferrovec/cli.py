"""The ``ferrovec`` command: ``info``, ``verify`` and ``demo``."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ferrovec


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def cmd_info(args: argparse.Namespace) -> int:
    with ferrovec.open(args.path) as db:
        infos = db.info()
        if not infos:
            print(f"{args.path}: no collections")
            return 0
        header = (
            f"{'collection':<24} {'dim':>6} {'distance':<10} "
            f"{'points':>10} {'disk':>10} {'log':>10}"
        )
        print(header)
        print("-" * len(header))
        for i in infos:
            print(
                f"{i['name']:<24} {i['dim']:>6} {i['distance']:<10} {i['points']:>10} "
                f"{_size(i['disk_bytes']):>10} {_size(i['log_bytes']):>10}"
            )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    with ferrovec.open(args.path) as db:
        for name in db.list_collections():
            db.collection(name).verify()
            print(f"{name}: ok")
    return 0


def _progress(done: int, total: int, started: float) -> None:
    rate = done / max(time.perf_counter() - started, 1e-9)
    sys.stderr.write(f"\r  ingested {done:>7,}/{total:,} points ({rate:,.0f} points/s)")
    sys.stderr.flush()


def cmd_demo(args: argparse.Namespace) -> int:
    import numpy as np

    n, dim, batch = args.points, 384, 1000
    own_dir: str | None = None
    if args.path is None:
        own_dir = tempfile.mkdtemp(prefix="ferrovec-demo-")
        path = Path(own_dir) / "store"
    else:
        path = Path(args.path)
        if path.exists():
            print(
                f"{path} exists; pass a new path (the demo creates its own store)", file=sys.stderr
            )
            return 2
    rng = np.random.default_rng(7)
    # Embedding-like data: a mixture of 1,000 clusters (isotropic noise alone has no neighbours
    # worth the name, and no approximate index does well on it).
    centres = rng.standard_normal((1000, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def draw(m: int) -> Any:
        noise = rng.standard_normal((m, dim), dtype=np.float32)
        noise *= 0.9 / np.linalg.norm(noise, axis=1, keepdims=True)
        return centres[rng.integers(1000, size=m)] + noise

    print(f"ferrovec {ferrovec.__version__} demo: {n:,} x {dim}-d vectors in {path}")
    try:
        t0 = time.perf_counter()
        db = ferrovec.open(path, durability="fsync")
        col = db.create_collection("demo", dim=dim, distance="cosine")
        started = time.perf_counter()
        for start in range(0, n, batch):
            m = min(batch, n - start)
            vecs = draw(m)
            ids = list(range(start, start + m))
            payloads = [
                {"title": f"doc {i}", "group": f"g{i % 20}", "year": 2000 + i % 25} for i in ids
            ]
            col.upsert(ids, vecs, payloads)
            if (start // batch) % 10 == 9 or start + m == n:
                _progress(start + m, n, started)
        ingest = time.perf_counter() - started
        sys.stderr.write("\n")
        print(f"  ingest: {ingest:.2f} s ({n / ingest:,.0f} points/s, every batch fsynced)")

        queries = draw(1000)
        t = time.perf_counter()
        col.search(queries[0], k=10, exact=True)
        one = time.perf_counter() - t
        t = time.perf_counter()
        exact = col.search_batch(queries, k=10, exact=True, with_payload=False)
        many = time.perf_counter() - t
        print(f"  exact search: one query {one * 1000:.1f} ms; batch of 1,000 {many:.2f} s")

        t = time.perf_counter()
        col.optimize()
        info = col.info()
        print(
            f"  optimize (HNSW graph build): {time.perf_counter() - t:.2f} s; "
            f"{len(info['segments'])} segment(s), {info['indexed_points']:,} points indexed"
        )
        t = time.perf_counter()
        approx = [col.search(q, k=10, with_payload=False) for q in queries]
        ann = time.perf_counter() - t
        hits = sum(len({h.id for h in a} & {h.id for h in e}) for a, e in zip(approx, exact))
        print(
            f"  HNSW search: {len(queries) / ann:,.0f} queries/s one at a time, "
            f"recall@10 {hits / (10 * len(queries)):.3f} against exact"
        )
        before = [h.id for h in approx[0]]

        t = time.perf_counter()
        del col
        db.close()
        print(f"  close: {time.perf_counter() - t:.2f} s")

        t = time.perf_counter()
        db = ferrovec.open(path)
        col = db.collection("demo")
        count = col.count()
        after = [h.id for h in col.search(queries[0], k=10, with_payload=False)]
        reopen = time.perf_counter() - t
        print(f"  reopen + count + first query: {reopen * 1000:.1f} ms")
        ok = count == n and before == after
        rec = col.get([n - 1])[0]
        print(f"  after reopen: {count:,} points; same top-10 as before close: {before == after}")
        print(f"  point {rec.id}: {rec.payload}")
        info = col.info()
        print(
            f"  disk: {_size(info['disk_bytes'])} in {len(info['segments'])} segment(s); "
            f"log {_size(info['log_bytes'])}"
        )
        del col
        db.close()
        print(f"  total: {time.perf_counter() - t0:.2f} s -> {'OK' if ok else 'MISMATCH'}")
        return 0 if ok else 1
    finally:
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ferrovec", description="ferrovec vector store tools")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "info", help="print each collection's dim, distance, points, disk and log bytes"
    )
    p.add_argument("path")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("verify", help="check every checksum of every collection's files")
    p.add_argument("path")
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser("demo", help="ingest, search, close, reopen: the store end to end, timed")
    p.add_argument("--path", help="where to create the demo store (default: a temporary directory)")
    p.add_argument("--points", type=int, default=100_000)
    p.set_defaults(func=cmd_demo)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ferrovec.FerrovecError as e:
        print(f"ferrovec: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
