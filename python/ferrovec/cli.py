"""The ``ferrovec`` command: ``info``, ``verify``, ``check``, ``stats``, ``metrics``, ``optimize``,
``reindex``, ``repair``, ``demo``, ``snapshot ...``, ``backup ...`` and ``migrate``."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ferrovec
from ferrovec._progress import format_duration


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def cmd_info(args: argparse.Namespace) -> int:
    # Read-only: beside a running server this takes no write lock and changes nothing.
    with ferrovec.open(args.path, read_only=True) as db:
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
            named = i["dim"] is None
            print(
                f"{i['name']:<24} {'-' if named else i['dim']:>6} "
                f"{'named' if named else i['distance']:<10} {i['points']:>10} "
                f"{_size(i['disk_bytes']):>10} {_size(i['log_bytes']):>10}"
            )
            if named:  # one line per named vector
                for name, spec in i["vectors"].items():
                    print(f"  {name:<22} {spec['dim']:>6} {spec['distance']:<10}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    with ferrovec.open(args.path, read_only=True) as db:
        for name in db.list_collections():
            db.collection(name).verify()
            print(f"{name}: ok")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 when every collection is healthy, 1 when any has a problem."""
    found = ferrovec.check(args.path)
    bad = 0
    for c in found:
        state = "ok" if not c["problems"] else f"{len(c['problems'])} problem(s)"
        print(f"{c['name']}: {state} ({c['log_records']:,} log records after the checkpoint)")
        for p in c["problems"]:
            print(f"  problem: {p}")
        for n in c["notes"]:
            print(f"  note: {n}")
        bad += bool(c["problems"])
    if not found:
        print(f"{args.path}: no collections")
    return 1 if bad else 0


def cmd_stats(args: argparse.Namespace) -> int:
    with ferrovec.open(args.path, read_only=True) as db:
        stats = [db.collection(args.collection).stats()] if args.collection else db.stats()
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    for s in stats:
        print(f"{s['name']}: {s['points']:,} points ({s['unindexed_points']:,} unindexed)")
        for seg in s["segments"]:
            recall = seg.get("self_check_recall")
            shown = "-" if recall is None else f"{recall:.3f}"
            print(
                f"  {seg['source']:<20} {seg['live']:>10,} live"
                f"  {seg['deleted_share']:6.1%} deleted"
                f"  {'indexed' if seg['indexed'] else 'exact  '}  recall {shown:<6}"
                f"  codes {seg.get('codes') or '-':<6}"
                f"  {_size(seg['disk_bytes']):>10}"
            )
        for p in s["payload_indexes"]:
            print(
                f"  index {p['key']!r} ({p['kind']}): {p['distinct_values']:,} distinct values,"
                f" {_size(p['disk_bytes'])}"
            )
        log = s["log"]
        print(
            f"  log: {_size(log['bytes'])} in {log['files']} file(s), oldest record"
            f" {log['oldest_record_age_s']:.0f} s old"
        )
        disk = ", ".join(f"{k} {_size(v)}" for k, v in s["disk_bytes"].items())
        print(f"  disk: {disk}")
        opt = s["optimizer"]
        last = opt["last"]
        shown = (
            "none in this process"
            if last is None
            else f"{last['kind']} of {last['points']:,} points"
        )
        print(f"  optimizer: {opt['status']}; last: {shown}; next: {opt['next']}")
        cap = s["capacity"]
        print(
            f"  per point: {cap['disk_bytes_per_point']:.0f} B on disk,"
            f" {cap['serving_bytes_per_point']:.0f} B to keep resident for serving"
        )
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    with ferrovec.open(args.path, read_only=True) as db:
        sys.stdout.write(db.metrics(args.name or None, collection=args.collection))
    return 0


def _with_progress(col: ferrovec.Collection, work: Callable[[], object]) -> float:
    """Run `work()` (a long call on `col`) while its progress shows on stderr; its seconds."""
    started = time.perf_counter()
    done = threading.Event()
    watcher = threading.Thread(target=_watch, args=(col, started, done), daemon=True)
    watcher.start()
    try:
        work()
    finally:
        done.set()
        watcher.join()
        sys.stderr.write("\n")
    return time.perf_counter() - started


def _watch(col: ferrovec.Collection, started: float, done: threading.Event) -> None:
    """Show an optimization's progress on stderr every half second until `done`: its step,
    the graph insertions made of those planned and the time left at the rate so far."""
    while not done.wait(0.5):
        s = col.stats()
        p = s["optimizer"]["progress"]
        built = ""
        if p is not None and p["total"]:
            built = f", graphs {p['done'] / p['total']:.0%}"
            if p["eta_s"] is not None:
                built += f", {format_duration(p['eta_s'])} left"
        sys.stderr.write(
            f"\r  {col.name}: {s['optimizer']['status']:<10} {len(s['segments'])} segment(s),"
            f" {s['indexed_points']:,}/{s['points']:,} indexed{built}"
            f" ({time.perf_counter() - started:.0f} s)\x1b[K"
        )
        sys.stderr.flush()


def cmd_optimize(args: argparse.Namespace) -> int:
    """Seal, index, merge and vacuum now, showing the optimizer's progress."""
    with ferrovec.open(args.path) as db:
        names = [args.collection] if args.collection else db.list_collections()
        for name in names:
            col = db.collection(name)
            before = col.info()
            took = _with_progress(col, col.optimize)
            after = col.info()
            print(
                f"{name}: {len(before['segments'])} -> {len(after['segments'])} segment(s),"
                f" {after['indexed_points']:,} of {after['points']:,} points indexed"
                f" in {took:.1f} s"
            )
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    """Rebuild graphs and payload indexes from the stored rows, then verify."""
    with ferrovec.open(args.path) as db:
        col = db.collection(args.collection)
        took = _with_progress(col, col.reindex)
        info = col.info()
        print(
            f"{args.collection}: rebuilt and verified in {took:.1f} s:"
            f" {len(info['segments'])} segment(s), {info['indexed_points']:,} of"
            f" {info['points']:,} points indexed, {len(info['payload_indexes'])} payload index(es)"
        )
    return 0


def cmd_repair(args: argparse.Namespace) -> int:
    """Exit 0 when nothing was lost (the store was healthy, or only derived files or a torn
    tail were repaired), 1 when writes or points were lost (listed) or something still fails."""
    lost_any = False
    for c in ferrovec.repair(args.path):
        if not c["damage"]:
            print(f"{c['name']}: no damage, nothing changed")
            continue
        print(f"{c['name']}:")
        for d in c["damage"]:
            print(f"  damage: {d}")
        for a in c["actions"]:
            print(f"  done: {a}")
        for lost in c["lost"]:
            print(f"  LOST: {lost}")
        for p in c["kept_aside"]:
            print(f"  kept aside: {p}")
        if c["still_failing"]:
            print(f"  STILL FAILING: {c['still_failing']}")
        lost_any = lost_any or bool(c["lost"]) or bool(c["still_failing"])
    return 1 if lost_any else 0


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


class _Bar:
    """A progress bar on stderr for long copies: progress(done, total) in bytes."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.perf_counter()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        frac = done / total if total else 1.0
        rate = done / max(time.perf_counter() - self.started, 1e-9)
        bar = "#" * int(frac * 30)
        sys.stderr.write(
            f"\r  {self.label} [{bar:<30}] {frac:6.1%} {_size(done)} / {_size(total)}"
            f" ({_size(rate)}/s)"
        )
        sys.stderr.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


def _backup_line(b: dict[str, Any]) -> str:
    cols = ", ".join(f"{n}@{c['sequence']}" for n, c in b["collections"].items()) or "-"
    return (
        f"{b['id']}  {b['kind']:<11} {_size(b['total_bytes']):>10} "
        f"(+{_size(b['added_bytes'])})  {cols}"
    )


def cmd_backup_create(args: argparse.Namespace) -> int:
    bar = _Bar("copying")
    with ferrovec.open(args.path) as db:
        info = db.backup(args.dest, incremental=args.incremental, progress=bar)
    bar.done()
    print(_backup_line(info))
    return 0


def cmd_backup_list(args: argparse.Namespace) -> int:
    backups = ferrovec.list_backups(args.dest)
    if not backups:
        print(f"{args.dest}: no backups")
    for b in backups:
        print(_backup_line(b))
    return 0


def cmd_backup_verify(args: argparse.Namespace) -> int:
    bar = _Bar("verifying")
    info = ferrovec.verify_backup(args.dest, args.id, progress=bar)
    bar.done()
    print(f"{info['id']}: ok ({_size(info['total_bytes'])} checked)")
    return 0


def cmd_backup_restore(args: argparse.Namespace) -> int:
    bar = _Bar("restoring")
    names = ferrovec.restore_backup(
        args.dest,
        args.target,
        backup_id=args.id,
        collection=args.collection,
        replace=args.replace,
        to_sequence=args.to_sequence,
        to_time=args.to_time,
        log_archive=args.log_archive,
        progress=bar,
    )
    bar.done()
    print(f"restored {', '.join(names) or 'nothing'} into {args.target}")
    return 0


def cmd_backup_cleanup(args: argparse.Namespace) -> int:
    removed = ferrovec.cleanup_backups(
        args.dest, keep_last=args.keep_last, max_age_days=args.max_age_days
    )
    print(f"removed {len(removed)} backup(s){': ' + ', '.join(removed) if removed else ''}")
    return 0


def _age(s: float | None) -> str:
    if s is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:.1f} {unit} ago"
    return f"{s:.0f} s ago"


def cmd_backup_status(args: argparse.Namespace) -> int:
    st = ferrovec.backup_status(args.dest)
    change = st["size_change_bytes"]
    print(f"backups:                {st['backups']}")
    print(f"newest backup:          {st['newest_id'] or '-'} ({_age(st['newest_age_s'])})")
    shown = "-" if change is None else f"{'+' if change >= 0 else '-'}{_size(abs(change))}"
    print(f"size change:            {shown} from the previous backup")
    print(f"last verified:          {_age(st['last_verified_age_s'])}")
    print(f"last restored:          {_age(st['last_restored_age_s'])}")
    return 0


def cmd_snapshot_create(args: argparse.Namespace) -> int:
    with ferrovec.open(args.path) as db:
        s = db.create_snapshot(args.collection, dest=args.dest)
    print(f"{s.path}  {_size(s.size_bytes)}  sha256 {s.sha256}")
    return 0


def cmd_snapshot_list(args: argparse.Namespace) -> int:
    with ferrovec.open(args.path, read_only=True) as db:
        for s in db.list_snapshots(args.dest):
            cols = ", ".join(f"{n}@{q}" for n, q in s.collections.items())
            print(f"{s.name}  {_size(s.size_bytes):>10}  {cols}")
    return 0


def cmd_snapshot_verify(args: argparse.Namespace) -> int:
    s = ferrovec.verify_snapshot(args.archive)
    print(f"{s.path}: ok ({', '.join(s.collections)})")
    return 0


def cmd_snapshot_restore(args: argparse.Namespace) -> int:
    names = ferrovec.restore_snapshot(
        args.archive, args.target, collection=args.collection, replace=args.replace
    )
    print(f"restored {', '.join(names)} into {args.target}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Copy collections to a Qdrant server (or a qdrant-client local-mode directory) with
    qdrant-client's own `migrate`, reading from ferrovec's Qdrant-compatible client."""
    try:
        from qdrant_client import QdrantClient as Destination
        from qdrant_client.migrate.migrate import migrate
    except ImportError:
        print("ferrovec migrate needs qdrant-client: pip install qdrant-client", file=sys.stderr)
        return 2
    if "://" in args.dest:
        dest = Destination(url=args.dest, api_key=args.api_key)
    else:
        dest = Destination(path=args.dest)
    source: Any = ferrovec.QdrantClient(path=args.path)  # migrate() reads it duck-typed
    try:
        names = args.collection or [c.name for c in source.get_collections().collections]
        migrate(
            source,
            dest,
            collection_names=names,
            recreate_on_collision=args.recreate,
            batch_size=args.batch_size,
        )
        for name in names:
            print(f"{name}: {dest.count(name).count:,} points in {args.dest}")
    except ValueError as e:  # qdrant-client's refusals (a collection exists there, ...)
        print(f"ferrovec migrate: {e}", file=sys.stderr)
        return 1
    finally:
        source.close()
        dest.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ferrovec", description="ferrovec vector store tools")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "info",
        help="print each collection's dim and distance (each named vector's), points, disk and "
        "log bytes",
    )
    p.add_argument("path")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("verify", help="check every checksum of every collection's files")
    p.add_argument("path")
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser(
        "check",
        help="check manifests, every log record and every checksum without writing; "
        "exit 1 if anything is damaged",
    )
    p.add_argument("path")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser(
        "stats", help="segments, payload indexes, log, disk and memory per part, optimizer"
    )
    p.add_argument("path")
    p.add_argument("--collection")
    p.add_argument("--json", action="store_true", help="print the stats as JSON")
    p.set_defaults(func=cmd_stats)
    p = sub.add_parser("metrics", help="print the metrics in Prometheus' text format")
    p.add_argument("path")
    p.add_argument("--collection")
    p.add_argument("--name", action="append", help="only this metric family (repeatable)")
    p.set_defaults(func=cmd_metrics)
    p = sub.add_parser("optimize", help="seal, index, merge and vacuum now, with progress")
    p.add_argument("path")
    p.add_argument("--collection")
    p.set_defaults(func=cmd_optimize)
    p = sub.add_parser(
        "reindex", help="rebuild a collection's graphs and payload indexes from its rows, verified"
    )
    p.add_argument("path")
    p.add_argument("--collection", required=True)
    p.set_defaults(func=cmd_reindex)
    p = sub.add_parser(
        "repair",
        help="salvage a damaged store (no process may have it open): keep every intact record, "
        "rebuild damaged indexes, move damaged files aside, report what is lost",
    )
    p.add_argument("path")
    p.set_defaults(func=cmd_repair)
    p = sub.add_parser("demo", help="ingest, search, close, reopen: the store end to end, timed")
    p.add_argument("--path", help="where to create the demo store (default: a temporary directory)")
    p.add_argument("--points", type=int, default=100_000)
    p.set_defaults(func=cmd_demo)

    snap = sub.add_parser("snapshot", help="one-file snapshots of a store").add_subparsers(
        dest="action", required=True
    )
    p = snap.add_parser("create", help="write a snapshot of one or every collection")
    p.add_argument("path")
    p.add_argument("--collection")
    p.add_argument("--dest", help="directory for the archive (default: PATH/snapshots)")
    p.set_defaults(func=cmd_snapshot_create)
    p = snap.add_parser("list", help="list complete snapshots")
    p.add_argument("path")
    p.add_argument("--dest")
    p.set_defaults(func=cmd_snapshot_list)
    p = snap.add_parser("verify", help="check an archive without restoring it")
    p.add_argument("archive")
    p.set_defaults(func=cmd_snapshot_verify)
    p = snap.add_parser("restore", help="restore an archive into a store")
    p.add_argument("archive")
    p.add_argument("target")
    p.add_argument("--collection")
    p.add_argument("--replace", action="store_true")
    p.set_defaults(func=cmd_snapshot_restore)

    bk = sub.add_parser("backup", help="full and incremental backups").add_subparsers(
        dest="action", required=True
    )
    p = bk.add_parser("create", help="back up the store at PATH into DEST")
    p.add_argument("path")
    p.add_argument("dest")
    p.add_argument("--incremental", action="store_true", help="copy only files DEST lacks")
    p.set_defaults(func=cmd_backup_create)
    p = bk.add_parser("list", help="list the backups in DEST")
    p.add_argument("dest")
    p.set_defaults(func=cmd_backup_list)
    p = bk.add_parser("verify", help="check every file of a backup (default: the newest)")
    p.add_argument("dest")
    p.add_argument("--id")
    p.set_defaults(func=cmd_backup_verify)
    p = bk.add_parser("restore", help="restore a backup (default: the newest) into TARGET")
    p.add_argument("dest")
    p.add_argument("target")
    p.add_argument("--id")
    p.add_argument("--collection")
    p.add_argument("--replace", action="store_true")
    p.add_argument(
        "--to-sequence", type=int, help="point in time: replay the archived log up to this record"
    )
    p.add_argument(
        "--to-time", help="point in time: replay the archived log up to this RFC 3339 time"
    )
    p.add_argument("--log-archive", help="the log archive directory (with --to-sequence/--to-time)")
    p.set_defaults(func=cmd_backup_restore)
    p = bk.add_parser("cleanup", help="remove old backups (never one a kept backup needs)")
    p.add_argument("dest")
    p.add_argument("--keep-last", type=int)
    p.add_argument("--max-age-days", type=float)
    p.set_defaults(func=cmd_backup_cleanup)
    p = bk.add_parser("status", help="age and size of the newest backup, last verification")
    p.add_argument("dest")
    p.set_defaults(func=cmd_backup_status)
    p = sub.add_parser(
        "migrate",
        help="copy collections to a Qdrant server (URL) or a qdrant-client local directory",
    )
    p.add_argument("path", help="the ferrovec store")
    p.add_argument("dest", help="http(s)://host:6333 of a Qdrant server, or a directory")
    p.add_argument("--collection", action="append", help="only this collection (repeatable)")
    p.add_argument("--api-key", default=None)
    p.add_argument("--recreate", action="store_true", help="replace collections that exist there")
    p.add_argument("--batch-size", type=int, default=100)
    p.set_defaults(func=cmd_migrate)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ferrovec.FerrovecError as e:
        print(f"ferrovec: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
