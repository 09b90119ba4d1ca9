//! Binary codes: one bit per value, whether it lies above the segment's mean (a 32nd of the
//! bytes of f32), and per row a factor `f = ‖d‖² / ‖d‖₁` (d = x − mean), so that
//! `⟨q, x⟩ ≈ ⟨q, mean⟩ + f · ⟨q − mean, s⟩` with `s = sign(d)` in {−1, 1}^dim: RaBitQ's
//! estimator, exact when the query is the row itself (`⟨d, s⟩ = ‖d‖₁`), where the
//! least-squares factor `‖d‖₁ / dim` would shrink every estimate (by 2/π on Gaussian values).
//! The query is not reduced to bits (Qdrant's asymmetric binary does the same): it is centred,
//! coded in 4 bits per value and split into four bit planes, so its product with a row's bits
//! is four AND-and-popcount passes over the row's words.

use super::{Estimator, Params};

/// Bits per word of a row.
const WORD: usize = 64;
/// Bits per value of the query's codes.
const QUERY_BITS: usize = 4;

fn words(dim: usize) -> usize {
    dim.div_ceil(WORD)
}

/// Rows: the bits in little-endian u64 words, then the factor `f` (f32) and four zero bytes.
pub fn row_bytes(dim: usize) -> usize {
    8 * words(dim) + 8
}

/// Append the codes of `values` (rows of `dim`) centred on `mean` to `out`.
pub fn encode_rows(values: &[f32], dim: usize, mean: &[f32], out: &mut Vec<u8>) {
    let mut bits = vec![0u64; words(dim)];
    for row in values.chunks_exact(dim) {
        bits.fill(0);
        let (mut l1, mut l2) = (0f32, 0f32);
        for (i, (&x, &m)) in row.iter().zip(mean).enumerate() {
            if x > m {
                bits[i / WORD] |= 1 << (i % WORD);
            }
            l1 += (x - m).abs();
            l2 += (x - m) * (x - m);
        }
        out.extend(bits.iter().flat_map(|w| w.to_le_bytes()));
        let factor = if l1 > 0.0 { l2 / l1 } else { 0.0 };
        out.extend(factor.to_le_bytes());
        out.extend([0u8; 4]);
    }
}

/// A query against binary rows.
pub struct Query {
    /// Bit plane `j` of the query's 4-bit codes: `planes[j * words + w]`.
    planes: Vec<u64>,
    words: usize,
    /// The centred query is `low + step · code`, per value.
    low: f32,
    step: f32,
    /// Σ of the centred query's values.
    sum: f32,
    /// The query's dot product with the mean.
    at_mean: f32,
}

impl Estimator for Query {
    fn new(params: &Params<'_>, q: &[f32]) -> Self {
        let centred: Vec<f32> = q
            .iter()
            .zip(params.mean.iter().chain(std::iter::repeat(&0.0)))
            .map(|(x, m)| x - m)
            .collect();
        let (low, high) = centred
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &x| {
                (l.min(x), h.max(x))
            });
        let levels = ((1 << QUERY_BITS) - 1) as f32;
        let step = if high > low {
            (high - low) / levels
        } else {
            1.0
        };
        let low = if low.is_finite() { low } else { 0.0 };
        let n = words(q.len());
        let mut planes = vec![0u64; QUERY_BITS * n];
        for (i, &x) in centred.iter().enumerate() {
            let code = ((x - low) / step).round().clamp(0.0, levels) as u32;
            for (j, plane) in planes.chunks_exact_mut(n).enumerate() {
                if code >> j & 1 == 1 {
                    plane[i / WORD] |= 1 << (i % WORD);
                }
            }
        }
        Query {
            planes,
            words: n,
            low,
            step,
            sum: centred.iter().sum(),
            at_mean: q.iter().zip(params.mean).map(|(a, b)| a * b).sum(),
        }
    }

    #[inline]
    fn dot(&self, row: &[u8]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if matches!(
            *crate::distance::x86::LEVEL,
            crate::distance::x86::Level::Avx2 | crate::distance::x86::Level::Avx512
        ) {
            // SAFETY: every CPU with AVX2 has POPCNT, which is all `dot_popcnt` enables.
            return unsafe { self.dot_popcnt(row) };
        }
        self.dot_portable(row)
    }
}

impl Query {
    /// `dot_portable` compiled with the POPCNT instruction (a portable build counts bits with
    /// a dozen instructions each).
    ///
    /// # Safety
    /// The CPU must support POPCNT.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    unsafe fn dot_popcnt(&self, row: &[u8]) -> f32 {
        self.dot_portable(row)
    }

    #[inline(always)]
    fn dot_portable(&self, row: &[u8]) -> f32 {
        let n = self.words;
        let word = |w: usize| {
            let b = &row[8 * w..8 * w + 8];
            u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        };
        let (mut ones, mut weighted) = (0u32, 0u32);
        for w in 0..n {
            let bits = word(w);
            ones += bits.count_ones();
            for j in 0..QUERY_BITS {
                weighted += (self.planes[j * n + w] & bits).count_ones() << j;
            }
        }
        let f = &row[8 * n..8 * n + 4];
        let factor = f32::from_le_bytes([f[0], f[1], f[2], f[3]]);
        // Σ over the row's set bits of the centred query, then against the signs (±1).
        let on_set = self.low * ones as f32 + self.step * weighted as f32;
        self.at_mean + factor * (2.0 * on_set - self.sum)
    }
}
