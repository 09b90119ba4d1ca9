"""What observing the store costs, side by side in one run: single-query QPS (one thread, an
indexed collection of N x 384 clustered unit vectors, ef 64) and upsert throughput (batches of
1,000, durability "off" so that fsync noise does not hide the difference) with

- `baseline`: another build without the metrics (`--baseline PYTHON`, an interpreter with that
  build installed, e.g. the commit before them), if given;
- `off`: this build, metrics on (they always are), the slow-operation profiler off;
- `traced`: the profiler on with a threshold no call reaches (every call traced, none recorded);
- `recording`: the profiler recording every call (slow_op_ms=0: the ring and the logger).

Each measurement is a child process on the same store; rounds interleave the settings so the
machine's drift falls on all alike; each figure is the median over rounds, reported as a ratio
to `off` (and `off` to `baseline`).

    python benches/bench_observe.py [--n 100000] [--rounds 5] [--seconds 3] [--baseline PYTHON]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

DIM = 384
EF = 64
SETTINGS = {"off": None, "traced": 10**9, "recording": 0}

CHILD = """
import json, sys, time, numpy as np, ferrovec
path, setting, tag = sys.argv[1], sys.argv[2], sys.argv[4]
seconds, ef = float(sys.argv[3]), int(sys.argv[5])
ferrovec.set_num_threads(1)
db = ferrovec.open(path, durability="off")
if setting != "baseline" and setting != "off":
    ferrovec.set_slow_op_ms(int(setting))
col = db.collection("b")
q = np.load(path + "/queries.npy")
rows = np.load(path + "/rows.npy")
for v in q[:200]:
    col.search(v, k=10, ef=ef, with_payload=False)
n, t = 0, time.perf_counter()
while time.perf_counter() - t < seconds:
    col.search(q[n % len(q)], k=10, ef=ef, with_payload=False)
    n += 1
qps = n / (time.perf_counter() - t)
w = db.create_collection("w" + tag, dim=rows.shape[1], optimizer={"indexing_threshold": 10**9})
done, t = 0, time.perf_counter()
while time.perf_counter() - t < seconds:
    i = done % (len(rows) - 1000)
    w.upsert(list(range(done, done + 1000)), rows[i:i + 1000])
    done += 1000
ups = done / (time.perf_counter() - t)
del w
db.drop_collection("w" + tag)
print("RESULT " + json.dumps({"qps": qps, "upserts": ups}))
"""


def clustered(rng: np.random.Generator, n: int) -> np.ndarray:
    centres = rng.standard_normal((1000, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    v = centres[rng.integers(1000, size=n)] + 0.5 / np.sqrt(DIM) * rng.standard_normal(
        (n, DIM), dtype=np.float32
    )
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def build(path: Path, n: int) -> None:
    import ferrovec

    rng = np.random.default_rng(0)
    data = clustered(rng, n)
    db = ferrovec.open(path, durability="off")
    col = db.create_collection("b", dim=DIM)
    for s in range(0, n, 10_000):
        col.upsert(list(range(s, min(s + 10_000, n))), data[s : s + 10_000])
    col.optimize()
    del col
    db.close()
    np.save(path / "queries.npy", clustered(rng, 1000))
    np.save(path / "rows.npy", data[:20_000])


def measure(python: str, path: Path, setting: str, seconds: float, tag: str) -> dict[str, float]:
    p = subprocess.run(
        [python, "-c", CHILD, str(path), setting, str(seconds), tag, str(EF)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[7:]))
    raise RuntimeError(p.stderr[-2000:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--baseline", help="an interpreter with a build without the metrics")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "observe.md"))
    args = ap.parse_args()
    runs: list[tuple[str, str, str]] = [(sys.executable, k, str(v)) for k, v in SETTINGS.items()]
    runs = [(py, name, "off" if v == "None" else v) for py, name, v in runs]
    if args.baseline:
        runs.insert(0, (args.baseline, "baseline", "baseline"))
    found: dict[str, dict[str, list[float]]] = {r[1]: {"qps": [], "upserts": []} for r in runs}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store"
        build(path, args.n)
        for r in range(args.rounds):
            for i, (python, name, setting) in enumerate(runs):
                got = measure(python, path, setting, args.seconds, f"{r}_{i}")
                for k, v in got.items():
                    found[name][k].append(v)
                print(f"round {r + 1}: {name} {got}", file=sys.stderr)
    med = {k: {m: statistics.median(v) for m, v in d.items()} for k, d in found.items()}
    off = med["off"]
    lines = [
        f"# Cost of metrics and the profiler ({args.n:,} x {DIM}, one thread, ef {EF},"
        f" {args.rounds} interleaved rounds of {args.seconds:g} s)",
        "",
        "| build / setting | single-query QPS | / off | upserted points/s | / off |",
        "|---|---|---|---|---|",
    ]
    for k, m in med.items():
        lines.append(
            f"| {k} | {m['qps']:,.0f} | {m['qps'] / off['qps']:.3f} |"
            f" {m['upserts']:,.0f} | {m['upserts'] / off['upserts']:.3f} |"
        )
    if "baseline" in med:
        b = med["baseline"]
        lines += [
            "",
            f"Metrics on (`off`) against the build without them: single-query QPS"
            f" {off['qps'] / b['qps']:.3f}, upserts {off['upserts'] / b['upserts']:.3f}.",
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)
    Path(args.out).with_suffix(".json").write_text(json.dumps(found, indent=1))


if __name__ == "__main__":
    main()
