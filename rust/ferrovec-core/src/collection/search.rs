//! Exact (brute-force) top-k search over blocks of rows, in parallel with rayon.
//!
//! Scores are turned into a *key* where larger is always better (similarity as is, distances
//! negated), so one heap serves every metric. Batches under cosine or dot product go through a
//! blocked matrix product (matrixmultiply's sgemm), which is what makes a 1,000-query batch
//! competitive with numpy's BLAS; single queries are memory-bound and use simsimd per row.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use rayon::prelude::*;

use crate::config::{check_oversampling, CollectionConfig, Distance, Space};
use crate::distance;
use crate::error::Result;
use crate::index::hnsw::{rescore_count, Graph, Item, Rows};
use crate::index::quant::Codes;
use crate::query::QuantizationParams;
use crate::segment::{Bitmap, Segment};

/// Rows scanned by one parallel task.
const CHUNK_ROWS: usize = 8 * 1024;
/// Below this many rows, one query is scanned on the calling thread.
pub const PARALLEL_MIN_ROWS: usize = 8 * 1024;
/// Queries handled together by one matrix product.
const GEMM_QUERY_CHUNK: usize = 64;
/// Rows per matrix product (the score tile is GEMM_QUERY_CHUNK × this).
const GEMM_ROW_TILE: usize = 1024;

/// A contiguous run of rows of one source (a sealed segment, or the in-memory rows). Rows hold
/// all of a point's vectors (`Space::stride` values); searches read one of them.
#[derive(Clone, Copy)]
pub struct Block<'a> {
    pub source: u32,
    /// Row number (within the source) of the first row in `vectors`.
    pub first_row: usize,
    pub vectors: &'a [f32],
    pub deleted: Option<&'a Bitmap>,
}

impl Block<'_> {
    fn rows(&self, stride: usize) -> usize {
        self.vectors.len() / stride
    }

    fn split(self, stride: usize, rows_per_piece: usize) -> impl Iterator<Item = Self> {
        let rows = self.rows(stride);
        (0..rows).step_by(rows_per_piece.max(1)).map(move |start| {
            let end = (start + rows_per_piece).min(rows);
            Block {
                source: self.source,
                first_row: self.first_row + start,
                vectors: &self.vectors[start * stride..end * stride],
                deleted: self.deleted,
            }
        })
    }
}

/// A candidate: its key and where it lives.
#[derive(Clone, Copy, Debug)]
pub struct Cand {
    pub key: f32,
    pub source: u32,
    pub row: u32,
}

impl PartialEq for Cand {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Cand {
    /// Greater is better: higher key, then (for ties) the earlier location.
    fn cmp(&self, other: &Self) -> Ordering {
        self.key
            .total_cmp(&other.key)
            .then_with(|| (other.source, other.row).cmp(&(self.source, self.row)))
    }
}

/// Run `one_query` for each query of `queries` (whole vectors): a single query on the calling
/// thread (no hand-off, no parallel overhead), a batch spread over the pool.
pub fn each_query<F>(queries: &[f32], dim: usize, one_query: F) -> Result<Vec<Vec<Cand>>>
where
    F: Fn(&[f32]) -> Result<Vec<Cand>> + Sync + Send,
{
    if queries.len() == dim {
        Ok(vec![one_query(queries)?])
    } else {
        crate::pool::install(|| queries.par_chunks(dim).map(one_query).collect())
    }
}

/// What a dense search takes from the collection's settings and its caller's: the graph
/// walk's defaults, and how it uses the codes.
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    pub ef_construct: usize,
    pub full_scan_threshold: usize,
    /// Walk the codes (where a segment has them) rather than the f32 rows.
    pub use_codes: bool,
    /// Candidates rescored on f32 per result wanted.
    pub oversampling: f32,
    /// Rescore on f32; without, the codes' estimates are the scores.
    pub rescore: bool,
}

impl Tuning {
    /// A search of vector `sp` of a collection of `config`, as `asked` overrides its
    /// quantization (an invalid oversampling is refused).
    pub fn of(
        config: &CollectionConfig,
        sp: Space,
        asked: Option<&QuantizationParams>,
    ) -> Result<Self> {
        let asked = asked.copied().unwrap_or_default();
        if let Some(x) = asked.oversampling {
            check_oversampling(x)?;
        }
        let (oversampling, rescore) = match config.codes_for(sp) {
            Some(kind) => config.rescoring(kind),
            None => (1.0, true),
        };
        Ok(Tuning {
            ef_construct: config.hnsw.ef_construct,
            full_scan_threshold: config.hnsw.full_scan_threshold,
            use_codes: !asked.ignore,
            oversampling: asked.oversampling.unwrap_or(oversampling),
            rescore: asked.rescore.unwrap_or(rescore),
        })
    }

    /// How many candidates of a walk on codes for `n` results are rescored (`None`: none).
    pub fn rescored(&self, n: usize) -> Option<usize> {
        self.rescore.then(|| rescore_count(n, self.oversampling))
    }
}

/// One graph search of a source: walked on its segment's codes when `coded` holds them (the
/// candidates rescored by the segment, as `tuning` says), else on vector `sp` of the source's
/// f32 rows.
#[allow(clippy::too_many_arguments)]
pub fn graph_search<F: Fn(u32) -> bool>(
    g: &Graph,
    coded: Option<(&Segment, Codes<'_>)>,
    tuning: &Tuning,
    vectors: &[f32],
    sp: Space,
    q: &[f32],
    n: usize,
    ef: usize,
    accept: &F,
    rejecting: bool,
) -> Result<Vec<Item>> {
    match coded.filter(|_| tuning.use_codes) {
        Some((seg, codes)) => g.search_coded(
            codes,
            &mut seg.rescorer(sp, q),
            q,
            n,
            ef,
            tuning.rescored(n),
            accept,
            rejecting,
        ),
        None => Ok(g.search(
            Rows::of(vectors, sp),
            sp.distance,
            q,
            n,
            ef,
            accept,
            rejecting,
        )),
    }
}

/// The best `n` candidates seen so far, with a floor below which nothing is kept.
pub struct TopK {
    n: usize,
    min_key: f32,
    heap: BinaryHeap<Reverse<Cand>>,
    /// A key below this cannot enter (the worst kept, once full): most candidates of a long
    /// scan stop at this one comparison.
    bar: f32,
}

impl TopK {
    pub fn new(n: usize, min_key: f32) -> Self {
        TopK {
            n,
            min_key,
            heap: BinaryHeap::with_capacity(n + 1),
            bar: min_key,
        }
    }

    /// Candidates kept.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The key a new candidate must reach to enter (equal keys enter by location).
    #[inline]
    pub fn floor(&self) -> f32 {
        if self.heap.len() < self.n {
            self.min_key
        } else {
            self.heap.peek().map_or(f32::INFINITY, |w| w.0.key)
        }
    }

    #[inline]
    pub fn push(&mut self, c: Cand) {
        if c.key.is_nan() || c.key < self.bar || self.n == 0 {
            return;
        }
        if self.heap.len() < self.n {
            self.heap.push(Reverse(c));
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if c > worst.0 {
                *worst = Reverse(c);
            }
        }
        if self.heap.len() == self.n {
            if let Some(w) = self.heap.peek() {
                self.bar = w.0.key;
            }
        }
    }

    pub fn merge(mut self, other: TopK) -> TopK {
        for Reverse(c) in other.heap {
            self.push(c);
        }
        self
    }

    /// Best first.
    pub fn into_sorted(self) -> Vec<Cand> {
        let mut v: Vec<Cand> = self.heap.into_iter().map(|r| r.0).collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v
    }
}

/// Map a score to its key (larger is better).
#[inline]
pub fn key_of(metric: Distance, q: &[f32], v: &[f32]) -> f32 {
    match metric {
        Distance::Cosine | Distance::Dot => distance::dot(q, v),
        Distance::Euclid => -distance::l2sq(q, v),
        Distance::Manhattan => -distance::l1(q, v),
    }
}

/// Turn a key back into the score the user sees.
pub fn score_of(metric: Distance, key: f32) -> f32 {
    match metric {
        Distance::Cosine | Distance::Dot => key,
        Distance::Euclid => (-key).max(0.0).sqrt(),
        Distance::Manhattan => -key,
    }
}

/// The lowest key a `score_threshold` admits (scores at least the threshold for similarities,
/// at most it for distances).
pub fn min_key_for(metric: Distance, threshold: Option<f32>) -> f32 {
    match (metric, threshold) {
        (_, None) => f32::NEG_INFINITY,
        (Distance::Cosine | Distance::Dot, Some(t)) => t,
        (Distance::Euclid, Some(t)) if t < 0.0 => f32::INFINITY,
        (Distance::Euclid, Some(t)) => -(t * t),
        (Distance::Manhattan, Some(t)) => -t,
    }
}

fn scan(sp: Space, q: &[f32], block: Block<'_>, top: &mut TopK) {
    for (i, row_values) in block.vectors.chunks_exact(sp.stride).enumerate() {
        let row = block.first_row + i;
        if block.deleted.is_some_and(|d| d.get(row)) {
            continue;
        }
        let key = key_of(sp.distance, q, &row_values[sp.offset..sp.offset + sp.dim]);
        if key >= top.floor() {
            top.push(Cand {
                key,
                source: block.source,
                row: row as u32,
            });
        }
    }
}

/// Top `n` rows for one query.
pub fn search_one(sp: Space, q: &[f32], blocks: &[Block<'_>], n: usize, min_key: f32) -> Vec<Cand> {
    let total: usize = blocks.iter().map(|b| b.rows(sp.stride)).sum();
    if total < PARALLEL_MIN_ROWS || crate::pool::num_threads() == 1 {
        let mut top = TopK::new(n, min_key);
        for b in blocks {
            scan(sp, q, *b, &mut top);
        }
        return top.into_sorted();
    }
    let pieces: Vec<Block<'_>> = blocks
        .iter()
        .flat_map(|b| b.split(sp.stride, CHUNK_ROWS))
        .collect();
    crate::pool::install(|| {
        pieces
            .par_iter()
            .map(|b| {
                let mut top = TopK::new(n, min_key);
                scan(sp, q, *b, &mut top);
                top
            })
            .reduce(|| TopK::new(n, min_key), TopK::merge)
            .into_sorted()
    })
}

/// Top `n` rows for each of `queries.len() / sp.dim` queries.
pub fn search_many(
    sp: Space,
    queries: &[f32],
    blocks: &[Block<'_>],
    n: usize,
    min_key: f32,
) -> Vec<Vec<Cand>> {
    let dim = sp.dim;
    let nq = queries.len() / dim;
    crate::pool::install(|| {
        if matches!(sp.distance, Distance::Cosine | Distance::Dot) && nq >= 4 {
            return queries
                .par_chunks(GEMM_QUERY_CHUNK * dim)
                .flat_map_iter(|qs| gemm_chunk(qs, sp, blocks, n, min_key))
                .collect();
        }
        queries
            .par_chunks(dim)
            .map(|q| {
                let mut top = TopK::new(n, min_key);
                for b in blocks {
                    scan(sp, q, *b, &mut top);
                }
                top.into_sorted()
            })
            .collect()
    })
}

/// Dot-product top-k of a few queries against all blocks, tile by tile.
fn gemm_chunk(
    qs: &[f32],
    sp: Space,
    blocks: &[Block<'_>],
    n: usize,
    min_key: f32,
) -> Vec<Vec<Cand>> {
    let nq = qs.len() / sp.dim;
    let mut tops: Vec<TopK> = (0..nq).map(|_| TopK::new(n, min_key)).collect();
    let mut scores = vec![0.0f32; nq * GEMM_ROW_TILE];
    for block in blocks {
        for tile in block.split(sp.stride, GEMM_ROW_TILE) {
            let rows = tile.rows(sp.stride);
            dot_tile(qs, tile.vectors, sp, &mut scores[..nq * rows]);
            for (qi, top) in tops.iter_mut().enumerate() {
                let row_scores = &scores[qi * rows..(qi + 1) * rows];
                for (j, &key) in row_scores.iter().enumerate() {
                    if key < top.floor() {
                        continue;
                    }
                    let row = tile.first_row + j;
                    if tile.deleted.is_some_and(|d| d.get(row)) {
                        continue;
                    }
                    top.push(Cand {
                        key,
                        source: tile.source,
                        row: row as u32,
                    });
                }
            }
        }
    }
    tops.into_iter().map(TopK::into_sorted).collect()
}

/// `out[i * rows + j] = dot(queries[i], vector sp of row j)` by one matrix product.
pub fn dot_tile(queries: &[f32], vectors: &[f32], sp: Space, out: &mut [f32]) {
    let (dim, stride) = (sp.dim, sp.stride);
    let nq = queries.len() / dim;
    let rows = vectors.len() / stride;
    assert!(
        queries.len() == nq * dim
            && vectors.len() == rows * stride
            && sp.offset + dim <= stride
            && out.len() == nq * rows,
        "dot_tile: shapes do not agree"
    );
    if nq == 0 || rows == 0 {
        return;
    }
    // SAFETY: the assert above proves every index sgemm touches is in bounds: A = queries is
    // nq × dim with row stride dim; B = (vector sp of each row)ᵀ is dim × rows, element (k, j)
    // at offset + j*stride + k ≤ (rows-1)*stride + stride - 1 < vectors.len(); C = out is
    // nq × rows with row stride rows. The slices do not overlap (out is &mut).
    unsafe {
        matrixmultiply::sgemm(
            nq,
            dim,
            rows,
            1.0,
            queries.as_ptr(),
            dim as isize,
            1,
            vectors.as_ptr().add(sp.offset),
            1,
            stride as isize,
            0.0,
            out.as_mut_ptr(),
            rows as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_tile_matches_per_pair_dot() {
        // One vector of 13 values at offset 4 in rows of 24 (a point with named vectors), and
        // the dense case.
        for (offset, stride) in [(4usize, 24usize), (0, 13)] {
            let dim = 13;
            let sp = Space {
                index: 0,
                offset,
                dim,
                stride,
                distance: Distance::Dot,
            };
            let q: Vec<f32> = (0..3 * dim).map(|i| (i as f32 * 0.7).sin()).collect();
            let v: Vec<f32> = (0..5 * stride).map(|i| (i as f32 * 0.3).cos()).collect();
            let mut out = vec![0.0; 15];
            dot_tile(&q, &v, sp, &mut out);
            for i in 0..3 {
                for j in 0..5 {
                    let row = &v[j * stride + offset..j * stride + offset + dim];
                    let d = distance::dot(&q[i * dim..(i + 1) * dim], row);
                    assert!((out[i * 5 + j] - d).abs() < 1e-4);
                }
            }
        }
    }

    #[test]
    fn topk_keeps_best_and_respects_floor() {
        let mut t = TopK::new(3, 0.5);
        for (i, k) in [0.1f32, 0.9, 0.6, 0.7, 0.95, 0.4].iter().enumerate() {
            t.push(Cand {
                key: *k,
                source: 0,
                row: i as u32,
            });
        }
        let keys: Vec<f32> = t.into_sorted().iter().map(|c| c.key).collect();
        assert_eq!(keys, vec![0.95, 0.9, 0.7]);
    }
}
