//! Fusion of ranked lists, as Qdrant computes it. Ties keep the order in which points were
//! first seen (lists in order, each best first), which is what a stable sort of Qdrant's
//! insertion-ordered map gives.

use std::collections::HashMap;
use std::hash::Hash;

use super::universal::Fusion;

/// Fuse `lists` (each best first) into the best `limit` (point, score), best first.
pub fn fuse<K: Copy + Eq + Hash>(
    how: &Fusion,
    lists: &[Vec<(K, f32)>],
    limit: usize,
) -> Vec<(K, f32)> {
    let mut order: Vec<K> = Vec::new();
    let mut scores: HashMap<K, f64> = HashMap::new();
    let mut add = |key: K, s: f64| match scores.get_mut(&key) {
        Some(x) => *x += s,
        None => {
            order.push(key);
            scores.insert(key, s);
        }
    };
    match how {
        Fusion::Rrf { k, weights } => {
            let k = *k as f64;
            for (i, list) in lists.iter().enumerate() {
                let w = weights
                    .as_ref()
                    .and_then(|w| w.get(i))
                    .copied()
                    .unwrap_or(1.0);
                for (pos, &(key, _)) in list.iter().enumerate() {
                    let s = if w <= 0.0 {
                        0.0
                    } else {
                        1.0 / ((pos as f64 + 1.0) / w + k - 1.0)
                    };
                    add(key, s);
                }
            }
        }
        Fusion::Dbsf => {
            for list in lists.iter().filter(|l| !l.is_empty()) {
                for (key, s) in normalized(list) {
                    add(key, s);
                }
            }
        }
    }
    let mut fused: Vec<(K, f64)> = order.into_iter().map(|key| (key, scores[&key])).collect();
    // Stable: equal scores stay in first-seen order.
    fused.sort_by(|a, b| b.1.total_cmp(&a.1));
    fused.truncate(limit);
    fused.into_iter().map(|(key, s)| (key, s as f32)).collect()
}

/// A list's scores mapped so that mean − 3σ is 0 and mean + 3σ is 1 (σ from the sample
/// variance); one point, or all equal, are 0.5.
fn normalized<K: Copy>(list: &[(K, f32)]) -> Vec<(K, f64)> {
    let n = list.len() as f64;
    if list.len() == 1 {
        return vec![(list[0].0, 0.5)];
    }
    let mean = list.iter().map(|x| f64::from(x.1)).sum::<f64>() / n;
    let var = list
        .iter()
        .map(|x| (f64::from(x.1) - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0);
    if var == 0.0 {
        return list.iter().map(|x| (x.0, 0.5)).collect();
    }
    let sd = var.sqrt();
    let (low, high) = (mean - 3.0 * sd, mean + 3.0 * sd);
    list.iter()
        .map(|x| (x.0, (f64::from(x.1) - low) / (high - low)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrf_uses_qdrant_constant_and_first_seen_ties() {
        let a = vec![(1, 0.9), (2, 0.8)];
        let b = vec![(3, 5.0), (1, 4.0)];
        let f = fuse(
            &Fusion::Rrf {
                k: 2,
                weights: None,
            },
            &[a, b],
            10,
        );
        // 1: 1/2 + 1/3; 2: 1/3; 3: 1/2.
        assert_eq!(f.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 3, 2]);
        assert!((f[0].1 - (0.5 + 1.0 / 3.0) as f32).abs() < 1e-6);
        // Equal scores: the point seen first (list a) comes first.
        let f = fuse(
            &Fusion::Rrf {
                k: 2,
                weights: None,
            },
            &[vec![(7, 1.0)], vec![(8, 1.0)]],
            10,
        );
        assert_eq!(f.iter().map(|x| x.0).collect::<Vec<_>>(), vec![7, 8]);
        let w = fuse(
            &Fusion::Rrf {
                k: 2,
                weights: Some(vec![0.0, 2.0]),
            },
            &[vec![(7, 1.0)], vec![(8, 1.0)]],
            10,
        );
        assert_eq!(w[0], (8, (1.0 / (0.5 + 1.0)) as f32));
        assert_eq!(w[1], (7, 0.0));
    }

    #[test]
    fn dbsf_normalises_each_list() {
        let f = fuse(
            &Fusion::Dbsf,
            &[vec![(1, 3.0), (2, 1.0)], vec![(2, 10.0)]],
            10,
        );
        // List one: mean 2, sd √2: 1 → (1 − (2 − 3√2)) / 6√2.
        let sd = 2f64.sqrt();
        let lo = 2.0 - 3.0 * sd;
        let one = ((3.0 - lo) / (6.0 * sd)) as f32;
        let two = ((1.0 - lo) / (6.0 * sd) + 0.5) as f32;
        assert_eq!(f, vec![(2, two), (1, one)]);
    }
}
