"""Prometheus metrics of the RAG service, in the text exposition format (no client library: a few
counters and histograms)."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable

# Seconds: from a cached query to a slow ingest.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Histogram:
    def __init__(self, name: str, help: str, labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.labels = name, help, labels
        self._lock = threading.Lock()
        self._series: dict[tuple[str, ...], list[float]] = defaultdict(
            lambda: [0.0] * (len(BUCKETS) + 2)  # bucket counts, then sum, then count
        )

    def observe(self, seconds: float, *label_values: str) -> None:
        with self._lock:
            s = self._series[label_values]
            for i, le in enumerate(BUCKETS):
                if seconds <= le:
                    s[i] += 1
            s[-2] += seconds
            s[-1] += 1

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        with self._lock:
            series = {k: list(v) for k, v in self._series.items()}
        for values, s in sorted(series.items()):
            base = ",".join(f'{k}="{v}"' for k, v in zip(self.labels, values))
            sep = "," if base else ""
            for le, n in zip(BUCKETS, s):
                yield f'{self.name}_bucket{{{base}{sep}le="{le}"}} {n:.0f}'
            yield f'{self.name}_bucket{{{base}{sep}le="+Inf"}} {s[-1]:.0f}'
            labels = f"{{{base}}}" if base else ""
            yield f"{self.name}_sum{labels} {s[-2]:.6f}"
            yield f"{self.name}_count{labels} {s[-1]:.0f}"


class Counter:
    def __init__(self, name: str, help: str) -> None:
        self.name, self.help = name, help
        self._lock = threading.Lock()
        self.value = 0.0

    def inc(self, by: float = 1.0) -> None:
        with self._lock:
            self.value += by

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        yield f"{self.name} {self.value:.0f}"


class Metrics:
    def __init__(self) -> None:
        self.requests = Histogram(
            "ferrovec_rag_request_seconds", "HTTP request latency", ("method", "route", "status")
        )
        self.search = Histogram("ferrovec_rag_search_seconds", "retrieval latency (embed + search)")
        self.documents = Counter("ferrovec_rag_ingested_documents_total", "documents ingested")
        self.chunks = Counter("ferrovec_rag_ingested_chunks_total", "chunks written")
        self.embedded = Counter("ferrovec_rag_embedded_chunks_total", "chunks embedded")
