//! Exact search equals a brute-force reference computed here in f64, for every distance, across
//! sealed segments, in-memory rows, replaced and deleted points; batches equal single queries.

use std::sync::Arc;

use ferrovec_core::{
    CollectionConfig, Distance, Matrix, PayloadSelector, PointId, SearchParams, StorageOptions,
    Store,
};

use crate::fixtures::{ids, top_k, Rng};

const DIM: usize = 24;

pub fn reference(
    metric: Distance,
    q: &[f32],
    points: &[(u64, Vec<f32>)],
    k: usize,
) -> Vec<(u64, f64)> {
    let norm = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let mut scored: Vec<(u64, f64)> = points
        .iter()
        .map(|(id, v)| {
            let s = match metric {
                Distance::Cosine => {
                    let d: f64 = q
                        .iter()
                        .zip(v)
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum();
                    d / (norm(q) * norm(v))
                }
                Distance::Dot => q
                    .iter()
                    .zip(v)
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum(),
                Distance::Euclid => q
                    .iter()
                    .zip(v)
                    .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                    .sum::<f64>()
                    .sqrt(),
                Distance::Manhattan => q
                    .iter()
                    .zip(v)
                    .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
                    .sum(),
            };
            (*id, s)
        })
        .collect();
    if metric.higher_is_better() {
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    } else {
        scored.sort_by(|a, b| a.1.total_cmp(&b.1));
    }
    scored.truncate(k);
    scored
}

type Model = Vec<(u64, Vec<f32>)>;

fn build(metric: Distance) -> (Arc<Store>, Arc<ferrovec_core::Collection>, Model) {
    let store = Store::in_memory(StorageOptions::default());
    let col = store
        .create_collection(
            "c",
            CollectionConfig::new(DIM as u32, metric).expect("config"),
            false,
        )
        .expect("create");
    let mut rng = Rng::new(metric as u64 + 1);
    let n = 3000u64;
    let vectors = rng.vectors(n as usize, DIM);
    col.upsert(&ids(0..n), &vectors, None).expect("upsert");
    // Replace some, delete some.
    let replaced = rng.vectors(100, DIM);
    col.upsert(&ids(500..600), &replaced, None)
        .expect("replace");
    col.delete(&ids(1000..1200)).expect("delete");
    let mut model: Vec<(u64, Vec<f32>)> = Vec::new();
    for i in 0..n {
        if (1000..1200).contains(&i) {
            continue;
        }
        let v = if (500..600).contains(&i) {
            replaced[(i as usize - 500) * DIM..(i as usize - 499) * DIM].to_vec()
        } else {
            vectors[i as usize * DIM..(i as usize + 1) * DIM].to_vec()
        };
        model.push((i, v));
    }
    (store, col, model)
}

#[test]
fn exact_search_matches_brute_force_for_every_distance() {
    for metric in [
        Distance::Cosine,
        Distance::Dot,
        Distance::Euclid,
        Distance::Manhattan,
    ] {
        let (_store, col, model) = build(metric);
        let mut rng = Rng::new(77);
        let queries = rng.vectors(20, DIM);
        let params = SearchParams {
            k: 10,
            with_payload: PayloadSelector::None,
            ..SearchParams::default()
        };
        let batch = col
            .search_batch(Matrix::new(&queries, 20, DIM).expect("matrix"), &params)
            .expect("batch");
        for (qi, q) in queries.chunks_exact(DIM).enumerate() {
            let want = reference(metric, q, &model, 10);
            let got = col.search(q, &params).expect("search");
            let got_ids: Vec<PointId> = got.iter().map(|h| h.id.clone()).collect();
            let want_ids: Vec<PointId> = want.iter().map(|w| PointId::Num(w.0)).collect();
            assert_eq!(got_ids, want_ids, "{metric:?} query {qi}");
            for (h, w) in got.iter().zip(&want) {
                assert!(
                    (f64::from(h.score) - w.1).abs() < 1e-5 * w.1.abs().max(1.0),
                    "{metric:?}"
                );
            }
            let batch_ids: Vec<PointId> = batch[qi].iter().map(|h| h.id.clone()).collect();
            assert_eq!(batch_ids, want_ids, "{metric:?} batch query {qi}");
        }
    }
}

#[test]
fn threshold_and_offset() {
    let (_store, col, model) = build(Distance::Dot);
    let q = vec![0.3f32; DIM];
    let all = reference(Distance::Dot, &q, &model, 50);
    let t = all[20].1 as f32;
    let params = SearchParams {
        k: 50,
        score_threshold: Some(t),
        with_payload: PayloadSelector::None,
        ..SearchParams::default()
    };
    let got = col.search(&q, &params).expect("search");
    assert!(got.iter().all(|h| h.score >= t));
    assert_eq!(got.len(), 21);
    let paged = col
        .search(
            &q,
            &SearchParams {
                k: 5,
                offset: 10,
                with_payload: PayloadSelector::None,
                ..SearchParams::default()
            },
        )
        .expect("search");
    let want: Vec<PointId> = all[10..15].iter().map(|w| PointId::Num(w.0)).collect();
    assert_eq!(paged.iter().map(|h| h.id.clone()).collect::<Vec<_>>(), want);

    // Euclid: the threshold is a maximum distance.
    let (_s, col, model) = build(Distance::Euclid);
    let all = reference(Distance::Euclid, &q, &model, 30);
    let t = all[9].1 as f32 + 1e-4;
    let got = col
        .search(
            &q,
            &SearchParams {
                k: 30,
                score_threshold: Some(t),
                ..SearchParams::default()
            },
        )
        .expect("search");
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|h| h.score <= t));
}

#[test]
fn large_parallel_scan_matches_serial_reference() {
    // Enough rows to take the parallel path for single queries.
    let store = Store::in_memory(StorageOptions::default());
    let col = store
        .create_collection(
            "c",
            CollectionConfig::new(16, Distance::Dot).expect("config"),
            false,
        )
        .expect("create");
    let mut rng = Rng::new(5);
    let n = 70_000u64;
    let v = rng.vectors(n as usize, 16);
    col.upsert(&ids(0..n), &v, None).expect("upsert");
    let model: Vec<(u64, Vec<f32>)> = (0..n)
        .map(|i| (i, v[i as usize * 16..(i as usize + 1) * 16].to_vec()))
        .collect();
    let q = rng.vectors(1, 16);
    let got: Vec<PointId> = top_k(&col, &q, 25).into_iter().map(|h| h.id).collect();
    let want: Vec<PointId> = reference(Distance::Dot, &q, &model, 25)
        .into_iter()
        .map(|w| PointId::Num(w.0))
        .collect();
    assert_eq!(got, want);
}
