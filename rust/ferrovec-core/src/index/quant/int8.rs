//! int8 codes: each component becomes `round(x / scale · 127)`, clipped, with one scale per
//! segment: a quarter of the bytes of f32, so four times fewer cache lines per visited node.
//! The query is coded the same way under its own scale; a code dot product times both scales
//! estimates the dot product.

use super::{Estimator, Params};

/// Components beyond this quantile of |x| are clipped: one outlier must not waste the range.
pub const CLIP_QUANTILE: f64 = 0.9999;
/// At most this many components are sampled to find the scale.
const SCALE_SAMPLE: usize = 1 << 20;

/// The scale is found on every `sample_step(len)`-th of `len` components.
pub fn sample_step(len: usize) -> usize {
    len.div_ceil(SCALE_SAMPLE).max(1)
}

/// The `quantile` quantile of `sample` (values of |x|), or 1 if that is not positive.
pub fn quantile_of(mut sample: Vec<f32>, quantile: f64) -> f32 {
    if sample.is_empty() {
        return 1.0;
    }
    let at = ((sample.len() - 1) as f64 * quantile) as usize;
    let (_, q, _) = sample.select_nth_unstable_by(at, f32::total_cmp);
    if *q > 0.0 && q.is_finite() {
        *q
    } else {
        1.0
    }
}

/// Append the codes of `v` under `scale` to `out`.
pub fn encode_into(v: &[f32], scale: f32, out: &mut Vec<i8>) {
    let k = 127.0 / scale;
    out.extend(
        v.iter()
            .map(|&x| (x * k).round().clamp(-127.0, 127.0) as i8),
    );
}

/// A query's codes under its own scale (its largest |x|, nothing clipped), and that scale.
pub fn encode_query(q: &[f32]) -> (Vec<i8>, f32) {
    let max = q.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max } else { 1.0 };
    let mut out = Vec::with_capacity(q.len());
    encode_into(q, scale, &mut out);
    (out, scale)
}

/// Rows: `dim` codes each.
pub fn row_bytes(dim: usize) -> usize {
    dim
}

/// Append the rows of `values` (rows of `dim`) coded under `scale` to `out`.
pub fn encode_rows(values: &[f32], scale: f32, out: &mut Vec<u8>) {
    let mut codes = Vec::with_capacity(values.len());
    encode_into(values, scale, &mut codes);
    out.extend(codes.iter().map(|&c| c as u8));
}

/// A query against int8 rows.
pub struct Query {
    q: Vec<i8>,
    /// Turns a code dot product into an estimated dot product.
    unit: f32,
}

impl Estimator for Query {
    fn new(params: &Params<'_>, q: &[f32]) -> Self {
        let (q, qscale) = encode_query(q);
        Query {
            q,
            unit: qscale / 127.0 * params.scale / 127.0,
        }
    }

    #[inline]
    fn dot(&self, row: &[u8]) -> f32 {
        dot_i8(&self.q, bytemuck::cast_slice(row)) as f32 * self.unit
    }
}

/// Σ a·b over int8 codes, in i32 (exact: |a·b| ≤ 127² and dim ≤ 65,536 keeps it in range).
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if a.len() == b.len() {
        match *x86::LEVEL {
            // SAFETY: LEVEL says the CPU supports AVX-512 F and BW; the lengths are equal.
            x86::Level::Avx512 => return unsafe { x86::dot_avx512(a, b) },
            // SAFETY: LEVEL says the CPU supports AVX2 (and FMA); the lengths are equal.
            x86::Level::Avx2 => return unsafe { x86::dot_avx2(a, b) },
            x86::Level::Baseline => {}
        }
    }
    dot_scalar(a, b)
}

fn dot_scalar(a: &[i8], b: &[i8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    pub use crate::distance::x86::{Level, LEVEL};

    /// # Safety
    /// The CPU must support AVX-512BW and `a.len() == b.len()`.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub unsafe fn dot_avx512(a: &[i8], b: &[i8]) -> i32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm512_setzero_si512(); 2];
        let mut i = 0;
        // SAFETY (all loads): every offset read is below `n`, the length of both slices.
        while i + 64 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                let x = unsafe { _mm256_loadu_si256(pa.add(i + 32 * j).cast()) };
                let y = unsafe { _mm256_loadu_si256(pb.add(i + 32 * j).cast()) };
                let p = _mm512_madd_epi16(_mm512_cvtepi8_epi16(x), _mm512_cvtepi8_epi16(y));
                *acc = _mm512_add_epi32(*acc, p);
            }
            i += 64;
        }
        while i + 32 <= n {
            let x = unsafe { _mm256_loadu_si256(pa.add(i).cast()) };
            let y = unsafe { _mm256_loadu_si256(pb.add(i).cast()) };
            let p = _mm512_madd_epi16(_mm512_cvtepi8_epi16(x), _mm512_cvtepi8_epi16(y));
            acc[0] = _mm512_add_epi32(acc[0], p);
            i += 32;
        }
        let mut total = _mm512_reduce_add_epi32(_mm512_add_epi32(acc[0], acc[1]));
        while i < n {
            total += unsafe { i32::from(*pa.add(i)) * i32::from(*pb.add(i)) };
            i += 1;
        }
        total
    }

    /// # Safety
    /// The CPU must support AVX2 and `a.len() == b.len()`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn dot_avx2(a: &[i8], b: &[i8]) -> i32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = _mm256_setzero_si256();
        let mut i = 0;
        // SAFETY (all loads): every offset read is below `n`, the length of both slices.
        while i + 16 <= n {
            let x = unsafe { _mm_loadu_si128(pa.add(i).cast()) };
            let y = unsafe { _mm_loadu_si128(pb.add(i).cast()) };
            let p = _mm256_madd_epi16(_mm256_cvtepi8_epi16(x), _mm256_cvtepi8_epi16(y));
            acc = _mm256_add_epi32(acc, p);
            i += 16;
        }
        let hi = _mm256_extracti128_si256(acc, 1);
        let s4 = _mm_add_epi32(_mm256_castsi256_si128(acc), hi);
        let s2 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
        let s1 = _mm_add_epi32(s2, _mm_shuffle_epi32(s2, 1));
        let mut total = _mm_cvtsi128_si32(s1);
        while i < n {
            total += unsafe { i32::from(*pa.add(i)) * i32::from(*pb.add(i)) };
            i += 1;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_scalar_and_codes_keep_the_ranking() {
        for len in [0i32, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 384, 1000] {
            let a: Vec<i8> = (0..len).map(|i| (i * 37 % 255 - 127) as i8).collect();
            let b: Vec<i8> = (0..len).map(|i| (i * 91 % 255 - 127) as i8).collect();
            assert_eq!(dot_i8(&a, &b), dot_scalar(&a, &b), "len {len}");
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: feature checked; equal lengths.
                assert_eq!(unsafe { x86::dot_avx2(&a, &b) }, dot_scalar(&a, &b));
            }
        }
        // Extremes do not overflow.
        let big = vec![-127i8; 65_536];
        assert_eq!(dot_i8(&big, &big), 127 * 127 * 65_536);
        // A nearer vector keeps a larger code dot product.
        let q: Vec<f32> = (0..64).map(|i| (i as f32 * 0.3).sin()).collect();
        let near: Vec<f32> = q.iter().map(|x| x * 0.9 + 0.01).collect();
        let far: Vec<f32> = q.iter().rev().copied().collect();
        let both = [near.clone(), far.clone()].concat();
        let s = quantile_of(both.iter().map(|x| x.abs()).collect(), CLIP_QUANTILE);
        let (mut cn, mut cf) = (Vec::new(), Vec::new());
        encode_into(&near, s, &mut cn);
        encode_into(&far, s, &mut cf);
        let (cq, _) = encode_query(&q);
        assert!(dot_i8(&cq, &cn) > dot_i8(&cq, &cf));
    }
}
