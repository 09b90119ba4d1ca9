//! Distance kernels. simsimd provides the SIMD dot product and squared L2 (with runtime CPU
//! dispatch); L1 is a plain loop written so the compiler vectorises it.

use simsimd::SpatialSimilarity;

#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // simsimd returns None only when the lengths differ, which callers rule out.
    <f32 as SpatialSimilarity>::dot(a, b).map_or(f32::NAN, |d| d as f32)
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
        assert!((l2sq(&a, &b) - l2).abs() < 1e-4);
        assert!((l1(&a, &b) - m).abs() < 1e-4);
        let mut out = Vec::new();
        normalize_into(&a, &mut out);
        assert!((norm(&out) - 1.0).abs() < 1e-6);
    }
}
