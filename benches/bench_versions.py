"""Two builds of ferrovec side by side in one run: the headline figures of each (ingest
points/s, build time, ANN QPS at recall 0.95 on one thread, exact search QPS for one query and
for a batch), the builds' runs interleaved A B A B so the machine's drift falls on both alike,
each figure the median over the rounds, reported as the ratio B/A. For a change that must not
move the figures (a refactoring), A is the build before it.

    python benches/bench_versions.py --a OLD_VENV/bin/python --b .venv/bin/python [--n 100000]

Each interpreter must have its ferrovec installed (`maturin develop --release` or the wheel of
that commit). The ANN workload and its children are `bench_ann.py`'s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
EXACT_QUERIES = 200


def exact_child(path: str, n: int) -> None:
    """Exact search on a built store: one query at a time, then one batch of 1,000."""
    from bench_ann import cached_data

    import ferrovec

    _, q, _ = cached_data(n)
    queries = np.load(q)
    ferrovec.set_num_threads(2)
    col = ferrovec.open(Path(path) / "store").collection("bench")
    col.search(queries[0], k=10, exact=True)
    t0 = time.perf_counter()
    for v in queries[:EXACT_QUERIES]:
        col.search(v, k=10, exact=True, with_payload=False)
    single = EXACT_QUERIES / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    col.search_batch(queries, k=10, exact=True, with_payload=False)
    batch = len(queries) / (time.perf_counter() - t0)
    print("RESULT " + json.dumps({"exact_qps": single, "exact_batch_qps": batch}), flush=True)


def run(python: str, args: list[str], timeout: float = 3600) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="2", PYTHONUNBUFFERED="1")
    p = subprocess.run(
        [python, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=HERE
    )
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError((p.stderr or p.stdout)[-2000:])


def version(python: str) -> str:
    out = subprocess.run(
        [
            python,
            "-c",
            "import ferrovec, os; print(ferrovec.__version__, os.path.dirname(ferrovec.__file__))",
        ],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", help="the interpreter of build A (the reference)")
    ap.add_argument("--b", default=sys.executable, help="the interpreter of build B")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--builds", type=int, default=2, help="build rounds per version")
    ap.add_argument("--rounds", type=int, default=3, help="query rounds per version")
    ap.add_argument("--child", nargs=2, metavar=("ROLE", "PATH"))
    args = ap.parse_args()
    if args.child:
        exact_child(args.child[1], args.n)
        return
    if not args.a:
        ap.error("--a is required")
    sys.path.insert(0, str(HERE))
    from bench_ann import cached_data, qps_at

    cached_data(args.n)
    pythons = {"A": args.a, "B": args.b}
    for k, py in pythons.items():
        print(f"{k}: {version(py)}", flush=True)
    dirs = {k: Path(tempfile.mkdtemp(prefix=f"bench-version-{k}-")) for k in pythons}
    figures: dict[str, dict[str, list[float]]] = {k: {} for k in pythons}

    def add(k: str, name: str, value: float | None) -> None:
        if value is not None:
            figures[k].setdefault(name, []).append(value)

    child = ["bench_ann.py", "--child"]
    try:
        for r in range(args.builds):
            for k in ("A", "B") if r % 2 == 0 else ("B", "A"):
                shutil.rmtree(dirs[k], ignore_errors=True)
                dirs[k].mkdir()
                print(f"{k}: build round {r + 1}/{args.builds} ...", flush=True)
                b = run(pythons[k], [*child, "build", "ferrovec", str(dirs[k]), "--n", str(args.n)])
                add(k, "upsert points/s", args.n / b["upsert_s"])
                add(k, "ingest + index s", b["ingest_s"])
        for r in range(args.rounds):
            for k in ("A", "B") if r % 2 == 0 else ("B", "A"):
                print(f"{k}: query round {r + 1}/{args.rounds} ...", flush=True)
                q = run(pythons[k], [*child, "query", "ferrovec", str(dirs[k]), "--n", str(args.n)])
                add(k, "ANN QPS at recall 0.95 (1 thread)", qps_at(q["sweep"], 0.95))
                add(k, "ANN QPS at recall 0.99 (1 thread)", qps_at(q["sweep"], 0.99))
                e = run(
                    pythons[k],
                    ["bench_versions.py", "--child", "exact", str(dirs[k]), "--n", str(args.n)],
                )
                add(k, "exact QPS, one query (2 threads)", e["exact_qps"])
                add(k, "exact QPS, batch of 1,000 (2 threads)", e["exact_batch_qps"])
    finally:
        for d in dirs.values():
            shutil.rmtree(d, ignore_errors=True)
    lines = [
        f"# Two builds side by side: {args.n:,} x 384, medians of {args.builds} builds and "
        f"{args.rounds} query rounds each",
        "",
        f"A: `{version(args.a)}`  ",
        f"B: `{version(args.b)}`",
        "",
        "| figure | A | B | B/A |",
        "|---|---|---|---|",
    ]
    for name in figures["A"]:
        a = statistics.median(figures["A"][name])
        b = statistics.median(figures["B"].get(name, [float("nan")]))
        lines.append(f"| {name} | {a:,.1f} | {b:,.1f} | {b / a:.3f} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
