//! Codes: compact forms of a segment's vectors that its graph is walked on. The walk reads a
//! node's codes instead of its f32 row (fewer bytes, so fewer cache lines and less memory to
//! keep resident), and the best candidates it ends with are rescored on the f32 rows.
//!
//! Three kinds (`CodeKind`), each estimating the dot product of a query with a row:
//! - `int8.rs`: a byte per value (a quarter of f32);
//! - `int4.rs`: half a byte per value (an eighth);
//! - `binary.rs`: a bit per value (a 32nd), scored asymmetrically against a 4-bit query.
//!
//! A code file's body is a prefix (the segment's parameters: a scale, or a mean vector) and then
//! the rows, `row_bytes(kind, dim)` bytes each. Its layout is in docs/FORMAT.md.

mod binary;
mod int4;
mod int8;

pub use int8::dot_i8;

use crate::config::CodeKind;

/// Bytes of the prefix that every kind has: the scale (f32, int8 and int4), the kind (u8),
/// reserved zeros. Binary codes follow it with their mean vector.
const PREFIX: usize = 16;
/// Byte of the prefix that names the kind (zero for int8, as in format 6's code files).
const KIND_AT: usize = 4;

fn kind_byte(kind: CodeKind) -> u8 {
    match kind {
        CodeKind::Int8 => 0,
        CodeKind::Int4 => 1,
        CodeKind::Binary => 2,
    }
}

/// Bytes of a code file's prefix.
pub fn prefix_len(kind: CodeKind, dim: usize) -> usize {
    match kind {
        CodeKind::Binary => PREFIX + 4 * dim,
        _ => PREFIX,
    }
}

/// Bytes of one row's codes.
pub fn row_bytes(kind: CodeKind, dim: usize) -> usize {
    match kind {
        CodeKind::Int8 => int8::row_bytes(dim),
        CodeKind::Int4 => int4::row_bytes(dim),
        CodeKind::Binary => binary::row_bytes(dim),
    }
}

/// The body of a code file of `kind` for `values` (rows of `dim` values, row-major).
pub fn encode(kind: CodeKind, values: &[f32], dim: usize) -> Vec<u8> {
    let mut survey = Survey::new(kind, dim, values.len() / dim.max(1));
    survey.add(values);
    let coder = survey.finish();
    let mut body = coder.prefix();
    coder.encode(values, &mut body);
    body
}

/// The first of two passes over rows that are coded as they stream by (a merge reads them from
/// its inputs' files, never holding them all): it gathers what the kind's parameters are made
/// of, a strided sample of |x| for the scale of int8 and int4, the sum of the rows for the mean
/// of binary codes. `finish` makes the `Coder` of the second pass.
pub struct Survey {
    kind: CodeKind,
    dim: usize,
    rows: usize,
    /// Every `step`-th value is sampled (by its index among all the rows' values).
    step: usize,
    /// Values seen so far.
    seen: usize,
    sample: Vec<f32>,
    /// Binary codes only: the rows' sum.
    sum: Vec<f64>,
}

impl Survey {
    /// A survey of `rows` rows of `dim` values, handed over in order, whole rows at a time.
    pub fn new(kind: CodeKind, dim: usize, rows: usize) -> Self {
        Survey {
            kind,
            dim,
            rows,
            step: int8::sample_step(rows * dim),
            seen: 0,
            sample: Vec::new(),
            sum: match kind {
                CodeKind::Binary => vec![0.0; dim],
                _ => Vec::new(),
            },
        }
    }

    /// The next whole rows.
    pub fn add(&mut self, values: &[f32]) {
        if self.kind == CodeKind::Binary {
            for row in values.chunks_exact(self.dim.max(1)) {
                for (m, &x) in self.sum.iter_mut().zip(row) {
                    *m += f64::from(x);
                }
            }
        } else {
            let first = self.seen.next_multiple_of(self.step) - self.seen;
            self.sample.extend(
                values
                    .iter()
                    .skip(first)
                    .step_by(self.step)
                    .map(|x| x.abs()),
            );
        }
        self.seen += values.len();
    }

    pub fn finish(self) -> Coder {
        let rows = self.rows;
        let scale = match self.kind {
            CodeKind::Int8 => int8::quantile_of(self.sample, int8::CLIP_QUANTILE),
            CodeKind::Int4 => int8::quantile_of(self.sample, int4::CLIP_QUANTILE),
            CodeKind::Binary => 0.0,
        };
        let mean = self
            .sum
            .iter()
            .map(|&m| {
                if rows > 0 {
                    (m / rows as f64) as f32
                } else {
                    0.0
                }
            })
            .collect();
        Coder {
            kind: self.kind,
            dim: self.dim,
            scale,
            mean,
        }
    }
}

/// Codes rows of one kind under parameters a `Survey` found.
pub struct Coder {
    kind: CodeKind,
    dim: usize,
    scale: f32,
    mean: Vec<f32>,
}

impl Coder {
    /// The code file's prefix: the parameters.
    pub fn prefix(&self) -> Vec<u8> {
        let mut prefix = vec![0u8; PREFIX];
        prefix[KIND_AT] = kind_byte(self.kind);
        if self.kind != CodeKind::Binary {
            prefix[..4].copy_from_slice(&self.scale.to_le_bytes());
        }
        prefix.extend(self.mean.iter().flat_map(|m| m.to_le_bytes()));
        prefix
    }

    /// The scale of int8 and int4 codes.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// Append the codes of `values` (whole rows) to `out`.
    pub fn encode(&self, values: &[f32], out: &mut Vec<u8>) {
        match self.kind {
            CodeKind::Int8 => int8::encode_rows(values, self.scale, out),
            CodeKind::Int4 => int4::encode_rows(values, self.dim, self.scale, out),
            CodeKind::Binary => binary::encode_rows(values, self.dim, &self.mean, out),
        }
    }
}

/// What a segment's rows were coded with.
#[derive(Clone, Copy)]
pub struct Params<'a> {
    /// The scale of int8 and int4 codes.
    pub scale: f32,
    /// The mean vector binary codes are centred on.
    pub mean: &'a [f32],
}

/// The codes of a segment's rows, as read from its code file.
#[derive(Clone, Copy)]
pub struct Codes<'a> {
    pub kind: CodeKind,
    pub dim: usize,
    pub params: Params<'a>,
    data: &'a [u8],
    row_bytes: usize,
}

impl<'a> Codes<'a> {
    /// Read a code file's `body` of `rows` rows of `dim` values, checking its kind and size.
    pub fn parse(
        kind: CodeKind,
        dim: usize,
        rows: usize,
        body: &'a [u8],
    ) -> std::result::Result<Self, String> {
        let (prefix, row_bytes) = (prefix_len(kind, dim), row_bytes(kind, dim));
        let want = prefix as u64 + rows as u64 * row_bytes as u64;
        if body.len() as u64 != want {
            return Err(format!(
                "{} bytes of {} codes, expected {want}",
                body.len(),
                kind.name()
            ));
        }
        if body[KIND_AT] != kind_byte(kind) {
            return Err(format!(
                "the file holds codes of kind {}, not {}",
                body[KIND_AT],
                kind.name()
            ));
        }
        let scale = f32::from_le_bytes([body[0], body[1], body[2], body[3]]);
        let mean: &[f32] = match kind {
            CodeKind::Binary => bytemuck::try_cast_slice(&body[PREFIX..prefix])
                .map_err(|_| String::from("misaligned mean vector"))?,
            _ => &[],
        };
        if !scale.is_finite() || mean.iter().any(|x| !x.is_finite()) {
            return Err(String::from("parameters are not finite"));
        }
        Ok(Codes {
            kind,
            dim,
            params: Params { scale, mean },
            data: &body[prefix..],
            row_bytes,
        })
    }

    /// Row `i`'s codes.
    #[inline]
    pub fn get(&self, i: u32) -> &'a [u8] {
        let s = i as usize * self.row_bytes;
        &self.data[s..s + self.row_bytes]
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.row_bytes.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Ask the CPU to start loading row `i`'s codes.
    #[inline]
    pub fn prefetch(&self, i: u32) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let start = i as usize * self.row_bytes;
            if let Some(row) = self.data.get(start..start + self.row_bytes) {
                for line in row.chunks(64) {
                    // SAFETY: SSE is part of the x86_64 baseline, and a prefetch is only a hint:
                    // it reads nothing architecturally and never faults. The pointer is in bounds
                    // anyway (a line of `row`). Covered by every quantised search test.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = i;
    }
}

/// One query, prepared against the codes of one segment: estimates its dot product with a row.
pub trait Estimator {
    fn new(params: &Params<'_>, q: &[f32]) -> Self;
    /// The estimated dot product of the query with the row whose codes are `row`.
    fn dot(&self, row: &[u8]) -> f32;
}

/// A query prepared for codes of any kind: one `match` per row, for scoring rows one by one
/// (the graph walk is generic over the kind instead).
pub enum AnyQuery {
    Int8(Int8Query),
    Int4(Int4Query),
    Binary(BinaryQuery),
}

impl AnyQuery {
    pub fn new(codes: &Codes<'_>, q: &[f32]) -> Self {
        match codes.kind {
            CodeKind::Int8 => AnyQuery::Int8(Int8Query::new(&codes.params, q)),
            CodeKind::Int4 => AnyQuery::Int4(Int4Query::new(&codes.params, q)),
            CodeKind::Binary => AnyQuery::Binary(BinaryQuery::new(&codes.params, q)),
        }
    }

    #[inline]
    pub fn dot(&self, row: &[u8]) -> f32 {
        match self {
            AnyQuery::Int8(e) => e.dot(row),
            AnyQuery::Int4(e) => e.dot(row),
            AnyQuery::Binary(e) => e.dot(row),
        }
    }
}

pub use binary::Query as BinaryQuery;

/// `body` in 4-byte aligned memory, as a code file's body lies in its mapping (after the
/// 64-byte header): the mean of binary codes is read in place as f32. For tests.
#[cfg(test)]
pub(crate) fn aligned(body: &[u8]) -> Vec<u32> {
    body.chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(w)
        })
        .collect()
}
pub use int4::Query as Int4Query;
pub use int8::Query as Int8Query;

#[cfg(test)]
mod tests {
    use super::*;

    /// Unit vectors around a few centres, as embeddings are.
    fn clustered(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f32 / (1u64 << 53) as f32 - 0.5
        };
        let centres: Vec<f32> = (0..8 * dim).map(|_| next()).collect();
        let mut out = Vec::with_capacity(n * dim);
        for i in 0..n {
            let c = &centres[(i % 8) * dim..(i % 8 + 1) * dim];
            let v: Vec<f32> = c.iter().map(|&c| c + 0.6 * next()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            out.extend(v.iter().map(|x| x / norm));
        }
        out
    }

    fn estimates<E: Estimator>(codes: &Codes<'_>, q: &[f32]) -> Vec<f32> {
        let e = E::new(&codes.params, q);
        (0..codes.len() as u32)
            .map(|i| e.dot(codes.get(i)))
            .collect()
    }

    /// Each kind's estimates track the true dot products, and their best 10·oversampling hold
    /// most of the true top 10.
    #[test]
    fn every_kind_estimates_dot_products() {
        for dim in [1usize, 31, 33, 100, 384] {
            let (n, data) = (2000, clustered(2000, dim, 7));
            let q = &clustered(2001, dim, 99)[2000 * dim..];
            let truth: Vec<f32> = data
                .chunks(dim)
                .map(|r| r.iter().zip(q).map(|(a, b)| a * b).sum())
                .collect();
            for kind in [CodeKind::Int8, CodeKind::Int4, CodeKind::Binary] {
                let body = encode(kind, &data, dim);
                let words = aligned(&body);
                let bytes = &bytemuck::cast_slice::<u32, u8>(&words)[..body.len()];
                let codes = Codes::parse(kind, dim, n, bytes).expect("parses");
                assert_eq!(codes.len(), n);
                let est = match kind {
                    CodeKind::Int8 => estimates::<Int8Query>(&codes, q),
                    CodeKind::Int4 => estimates::<Int4Query>(&codes, q),
                    CodeKind::Binary => estimates::<BinaryQuery>(&codes, q),
                };
                let err = est
                    .iter()
                    .zip(&truth)
                    .map(|(e, t)| (e - t).abs())
                    .fold(0.0f32, f32::max);
                let bound = match kind {
                    CodeKind::Int8 => 0.05,
                    CodeKind::Int4 => 0.1,
                    CodeKind::Binary => 0.5,
                };
                assert!(err < bound, "{kind:?} dim {dim}: max error {err}");
                if dim >= 100 {
                    let top = |v: &[f32], k: usize| {
                        let mut idx: Vec<usize> = (0..v.len()).collect();
                        idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
                        idx.truncate(k);
                        idx
                    };
                    let want = top(&truth, 10);
                    let got = top(&est, 10 * kind.default_oversampling() as usize);
                    let hit = want.iter().filter(|i| got.contains(i)).count();
                    // Binary codes only narrow the search (random would hold 0.4 of them).
                    let least = if kind == CodeKind::Binary { 6 } else { 9 };
                    assert!(hit >= least, "{kind:?} dim {dim}: {hit} of the top 10");
                }
            }
        }
    }

    #[test]
    fn a_file_of_another_kind_or_size_is_refused() {
        let data = clustered(10, 64, 1);
        let body = encode(CodeKind::Int4, &data, 64);
        assert!(Codes::parse(CodeKind::Int8, 64, 10, &body).is_err());
        assert!(Codes::parse(CodeKind::Int4, 64, 11, &body).is_err());
        assert!(Codes::parse(CodeKind::Int4, 64, 10, &body).is_ok());
    }

    /// Rows surveyed and coded a few at a time, as a merge streams them from its inputs, give
    /// the code file that coding them all at once gives (enough values that the scale's sample
    /// takes every second one, and pieces of an odd number of values).
    #[test]
    fn codes_made_piece_by_piece_equal_codes_made_at_once() {
        let (n, dim) = (40_000, 33);
        let data = clustered(n, dim, 5);
        for kind in [CodeKind::Int8, CodeKind::Int4, CodeKind::Binary] {
            let whole = encode(kind, &data, dim);
            let mut survey = Survey::new(kind, dim, n);
            for rows in data.chunks(7 * dim) {
                survey.add(rows);
            }
            let coder = survey.finish();
            let mut body = coder.prefix();
            for rows in data.chunks(13 * dim) {
                coder.encode(rows, &mut body);
            }
            assert_eq!(body, whole, "{kind:?}");
        }
    }
}
