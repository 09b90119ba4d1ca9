"""The benchmark workload: a Gaussian mixture of unit vectors, as the peer measurements used it.

1,000 unit centres, Dirichlet(2) mixture weights, isotropic noise of norm 0.9, then every vector
normalised; held-out queries from the same mixture; exact top-k ground truth by brute force.
"""

from __future__ import annotations

import numpy as np

SEED = 20240611


def mixture(n: int, dim: int = 384, n_queries: int = 1000, seed: int = SEED):
    """Return (base, queries), float32, unit length, from one mixture."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = rng.dirichlet(np.full(1000, 2.0))

    def draw(m: int) -> np.ndarray:
        out = np.empty((m, dim), dtype=np.float32)
        for s in range(0, m, 50_000):
            e = min(s + 50_000, m)
            which = rng.choice(1000, size=e - s, p=weights)
            noise = rng.standard_normal((e - s, dim)).astype(np.float32)
            noise *= 0.9 / np.linalg.norm(noise, axis=1, keepdims=True)
            v = centres[which] + noise
            out[s:e] = v / np.linalg.norm(v, axis=1, keepdims=True)
        return out

    return draw(n), draw(n_queries)


def ground_truth(base: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Exact top-k ids by inner product (cosine on unit vectors), in chunks."""
    out = np.empty((len(queries), k), dtype=np.int64)
    for s in range(0, len(queries), 100):
        sims = queries[s : s + 100] @ base.T
        idx = np.argpartition(-sims, k, axis=1)[:, :k]
        rows = np.arange(len(idx))[:, None]
        out[s : s + 100] = idx[rows, np.argsort(-sims[rows, idx], axis=1)]
    return out
