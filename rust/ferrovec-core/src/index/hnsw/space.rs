//! What a graph is built on: the f32 rows (`RowSpace`), or int8 codes of them (`CodeSpace`).
//! A merge builds on codes: a quarter of the bytes per distance, and the f32 rows stay in their
//! files instead of in memory, so a segment's build needs about `dim` bytes a point plus its
//! graph, whatever the size of the f32 rows. The walk that serves queries runs on the same
//! codes, and rescores its best candidates on f32.

use super::search::Distances;
use super::{dist, prefetch_ptr, Rows};
use crate::config::Distance;
use crate::index::quant::dot_i8;

/// Distances between the nodes of a graph being built: lower is closer.
pub trait BuildSpace: Sync {
    /// Nodes.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The distance between nodes `a` and `b`.
    fn between(&self, a: u32, b: u32) -> f32;
    /// Start loading node `i`'s data.
    fn prefetch(&self, i: u32);
}

/// Distances on the f32 rows, exact.
pub struct RowSpace<'a> {
    rows: Rows<'a>,
    metric: Distance,
}

impl<'a> RowSpace<'a> {
    pub fn new(rows: Rows<'a>, metric: Distance) -> Self {
        RowSpace { rows, metric }
    }
}

impl BuildSpace for RowSpace<'_> {
    fn len(&self) -> usize {
        self.rows.len()
    }

    #[inline]
    fn between(&self, a: u32, b: u32) -> f32 {
        dist(self.metric, self.rows.get(a), self.rows.get(b))
    }

    #[inline]
    fn prefetch(&self, i: u32) {
        self.rows.prefetch(i);
    }
}

/// Distances on int8 codes under one scale (`index/quant/int8.rs`), in the units of the f32
/// distance: the negated dot product for cosine and dot, the squared distance for Euclid, the
/// L1 distance for Manhattan.
pub struct CodeSpace<'a> {
    codes: &'a [i8],
    dim: usize,
    metric: Distance,
    /// The value of one code step.
    step: f32,
    /// Euclid only: each row's squared norm in code units.
    norms: Vec<i32>,
}

impl<'a> CodeSpace<'a> {
    /// `codes`: rows of `dim` int8 codes (a code file's rows, without its prefix), coded under
    /// `scale`.
    pub fn new(codes: &'a [u8], dim: usize, metric: Distance, scale: f32) -> Self {
        let codes: &[i8] = bytemuck::cast_slice(codes);
        let norms = match metric {
            Distance::Euclid => codes
                .chunks_exact(dim.max(1))
                .map(|r| dot_i8(r, r))
                .collect(),
            _ => Vec::new(),
        };
        CodeSpace {
            codes,
            dim,
            metric,
            step: scale / 127.0,
            norms,
        }
    }

    #[inline]
    fn row(&self, i: u32) -> &[i8] {
        let s = i as usize * self.dim;
        &self.codes[s..s + self.dim]
    }
}

impl BuildSpace for CodeSpace<'_> {
    fn len(&self) -> usize {
        self.codes.len() / self.dim.max(1)
    }

    #[inline]
    fn between(&self, a: u32, b: u32) -> f32 {
        let (x, y) = (self.row(a), self.row(b));
        match self.metric {
            Distance::Cosine | Distance::Dot => -(dot_i8(x, y) as f32) * self.step * self.step,
            Distance::Euclid => {
                let sq = self.norms[a as usize] + self.norms[b as usize] - 2 * dot_i8(x, y);
                sq as f32 * self.step * self.step
            }
            Distance::Manhattan => {
                let l1: i32 = x
                    .iter()
                    .zip(y)
                    .map(|(&p, &q)| (i32::from(p) - i32::from(q)).abs())
                    .sum();
                l1 as f32 * self.step
            }
        }
    }

    #[inline]
    fn prefetch(&self, i: u32) {
        let s = i as usize * self.dim;
        if let Some(row) = self.codes.get(s..s + self.dim) {
            for line in row.chunks(64) {
                prefetch_ptr(&line[0]);
            }
        }
    }
}

/// Distances from node `q` of `space` to the others: what an insertion searches with.
pub(super) struct FromNode<'s, S> {
    pub(super) space: &'s S,
    pub(super) q: u32,
}

impl<S: BuildSpace> Distances for FromNode<'_, S> {
    fn nodes(&self) -> usize {
        self.space.len()
    }

    #[inline]
    fn prefetch(&self, i: u32) {
        self.space.prefetch(i);
    }

    #[inline]
    fn dist(&self, i: u32) -> f32 {
        self.space.between(self.q, i)
    }
}
