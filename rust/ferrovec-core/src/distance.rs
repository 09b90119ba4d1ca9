//! Distance kernels. simsimd provides the SIMD dot product and squared L2 (with runtime CPU
//! dispatch); L1 is a plain loop written so the compiler vectorises it.

use simsimd::SpatialSimilarity;

#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // simsimd returns None only when the lengths differ, which callers rule out.
    <f32 as SpatialSimilarity>::dot(a, b).map_or(f32::NAN, |d| d as f32)
}

/// Dot product for the graph search, where one call's latency is the cost: simsimd's f32 kernels
/// carry a single accumulator chain (one FMA latency per 16 floats); four independent chains
/// let the FMAs overlap. Measured on the 100k x 384 benchmark: see the note of the ANN issue.
#[inline]
pub fn dot_fast(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if a.len() == b.len() {
        match *x86::LEVEL {
            // SAFETY: LEVEL says the CPU supports AVX-512F; the lengths are equal.
            x86::Level::Avx512 => return unsafe { x86::dot_avx512(a, b) },
            // SAFETY: LEVEL says the CPU supports AVX2 and FMA; the lengths are equal.
            x86::Level::Avx2 => return unsafe { x86::dot_avx2(a, b) },
            x86::Level::Baseline => {}
        }
    }
    dot(a, b)
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use std::arch::x86_64::*;
    use std::sync::LazyLock;

    /// The SIMD level the kernels here and in `index/quant.rs` dispatch on.
    pub enum Level {
        /// AVX-512 F and BW (every AVX-512 server CPU since Skylake-SP).
        Avx512,
        /// AVX2 and FMA.
        Avx2,
        Baseline,
    }

    /// The best kernel this CPU runs, detected once.
    pub static LEVEL: LazyLock<Level> = LazyLock::new(|| {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
        {
            Level::Avx512
        } else if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
        {
            Level::Avx2
        } else {
            Level::Baseline
        }
    });

    /// # Safety
    /// The CPU must support AVX-512F and `a.len() == b.len()`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY (all loads): every offset read is below `n`, the length of both slices.
        while i + 64 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                let x = unsafe { _mm512_loadu_ps(pa.add(i + 16 * j)) };
                let y = unsafe { _mm512_loadu_ps(pb.add(i + 16 * j)) };
                *acc = _mm512_fmadd_ps(x, y, *acc);
            }
            i += 64;
        }
        while i + 16 <= n {
            let x = unsafe { _mm512_loadu_ps(pa.add(i)) };
            let y = unsafe { _mm512_loadu_ps(pb.add(i)) };
            acc[0] = _mm512_fmadd_ps(x, y, acc[0]);
            i += 16;
        }
        let sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        let mut total = _mm512_reduce_add_ps(sum);
        while i < n {
            total += unsafe { *pa.add(i) * *pb.add(i) };
            i += 1;
        }
        total
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA, and `a.len() == b.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY (all loads): every offset read is below `n`, the length of both slices.
        while i + 32 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                let x = unsafe { _mm256_loadu_ps(pa.add(i + 8 * j)) };
                let y = unsafe { _mm256_loadu_ps(pb.add(i + 8 * j)) };
                *acc = _mm256_fmadd_ps(x, y, *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            let x = unsafe { _mm256_loadu_ps(pa.add(i)) };
            let y = unsafe { _mm256_loadu_ps(pb.add(i)) };
            acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
            i += 8;
        }
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let hi = _mm256_extractf128_ps(s, 1);
        let lo = _mm256_castps256_ps128(s);
        let s4 = _mm_add_ps(hi, lo);
        let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        let s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
        let mut total = _mm_cvtss_f32(s1);
        while i < n {
            total += unsafe { *pa.add(i) * *pb.add(i) };
            i += 1;
        }
        total
    }
}

#[inline]
pub fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    <f32 as SpatialSimilarity>::l2sq(a, b).map_or(f32::NAN, |d| d as f32)
}

#[inline]
pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, ra) = a.as_chunks::<8>();
    let (cb, rb) = b.as_chunks::<8>();
    for (x, y) in ca.iter().zip(cb) {
        for i in 0..8 {
            acc[i] += (x[i] - y[i]).abs();
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        sum += (x - y).abs();
    }
    sum
}

/// Euclidean norm, accumulated in f64 so that normalising is as exact as f32 allows.
pub fn norm(v: &[f32]) -> f64 {
    v.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
}

/// Scale `v` to unit length. The caller has checked the norm is not zero.
pub fn normalize_into(v: &[f32], out: &mut Vec<f32>) {
    let n = norm(v);
    out.extend(v.iter().map(|&x| (f64::from(x) / n) as f32));
}

/// Scale `v` to unit length in place; a zero vector stays zero.
pub fn normalize_in_place(v: &mut [f32]) {
    let n = norm(v);
    if n > 0.0 {
        for x in v {
            *x = (f64::from(*x) / n) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_scalar_reference() {
        let a: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let d: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let l2: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        let m: f32 = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum();
        assert!((dot(&a, &b) - d).abs() < 1e-4);
        for len in [0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 384] {
            let x: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            let y: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos()).collect();
            let want: f32 = x.iter().zip(&y).map(|(p, q)| p * q).sum();
            assert!((dot_fast(&x, &y) - want).abs() < 1e-3, "len {len}");
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: features checked; equal lengths.
                let v = unsafe { x86::dot_avx2(&x, &y) };
                assert!((v - want).abs() < 1e-3, "avx2 len {len}");
            }
        }
        assert!((l2sq(&a, &b) - l2).abs() < 1e-4);
        assert!((l1(&a, &b) - m).abs() < 1e-4);
        let mut out = Vec::new();
        normalize_into(&a, &mut out);
        assert!((norm(&out) - 1.0).abs() < 1e-6);
    }
}
