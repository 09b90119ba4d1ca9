//! Sparse vectors and the universal query: sparse search (with IDF, filters, deletes) against a
//! brute-force model, and hybrid RRF fusion, the same through the unsealed rows, sealed
//! segments with their inverted index, and a reopen.

use std::collections::HashMap;

use ferrovec_core::cancel::NEVER;
use ferrovec_core::query::universal::QueryRequest;
use ferrovec_core::{
    Collection, CollectionConfig, Distance, Filter, Lookups, Matrix, Modifier, Payload, PointId,
    SearchParams, SparseInput, SparseSpec, SparseVector, StorageOptions, Store, VectorData,
    VectorSpec, Vectors,
};
use serde_json::json;

use crate::fixtures::{ids, Rng};

const DIM: usize = 8;
const N: u64 = 2000;
const VOCAB: u32 = 300;

fn config() -> CollectionConfig {
    let mut c = CollectionConfig::with_all(
        vec![VectorSpec {
            name: String::new(),
            dim: DIM as u32,
            distance: Distance::Cosine,
        }],
        vec![SparseSpec::new("text", Modifier::Idf)],
    )
    .expect("config");
    c.hnsw.full_scan_threshold = 100;
    c
}

fn options() -> StorageOptions {
    StorageOptions {
        background_optimizer: false,
        ..StorageOptions::default()
    }
}

/// Point → (sparse vector, or none; its payload's `group`).
type Model = HashMap<u64, (Option<SparseVector>, i64)>;

fn random_sparse(rng: &mut Rng) -> SparseVector {
    let nnz = 1 + rng.below(12);
    let mut idx: Vec<u32> = (0..nnz).map(|_| rng.below(VOCAB as usize) as u32).collect();
    idx.sort_unstable();
    idx.dedup();
    let values = idx.iter().map(|_| rng.f32() + 0.01).collect();
    SparseVector {
        indices: idx,
        values,
    }
}

fn write(col: &Collection, rng: &mut Rng, range: std::ops::Range<u64>, model: &mut Model) {
    let n = (range.end - range.start) as usize;
    let dense = rng.vectors(n, DIM);
    let mut sparse = Vec::new();
    let mut payloads = Vec::new();
    for (i, id) in range.clone().enumerate() {
        // Every seventh point lacks the sparse vector.
        let v = (id % 7 != 3).then(|| random_sparse(rng));
        let group = (id % 5) as i64;
        sparse.push(v.clone().map(SparseInput::Vector));
        let mut p = Payload::new();
        p.insert("group".into(), json!(group));
        payloads.push(Some(p));
        model.insert(id, (v, group));
        let _ = i;
    }
    let vectors = Vectors::Named(vec![
        (
            String::new(),
            VectorData::Dense(Matrix::new(&dense, n, DIM).expect("matrix")),
        ),
        ("text".into(), VectorData::Sparse(sparse)),
    ]);
    col.upsert_batch(&ids(range), &vectors, Some(&payloads), false, &NEVER)
        .expect("upsert");
}

/// Top `k` by IDF-weighted dot product over the model, among points of `group` (if given).
fn reference(model: &Model, q: &SparseVector, k: usize, group: Option<i64>) -> Vec<(u64, f32)> {
    let have: Vec<&SparseVector> = model.values().filter_map(|(v, _)| v.as_ref()).collect();
    let n = have.len() as f64;
    let weights: Vec<f32> = q
        .indices
        .iter()
        .zip(&q.values)
        .map(|(d, w)| {
            let df = have.iter().filter(|v| v.indices.contains(d)).count() as f64;
            (f64::from(*w) * ((n - df + 0.5) / (df + 0.5) + 1.0).ln()) as f32
        })
        .collect();
    let wq = SparseVector {
        indices: q.indices.clone(),
        values: weights,
    };
    let mut hits: Vec<(u64, f32)> = model
        .iter()
        .filter(|(_, (_, g))| group.is_none_or(|x| x == *g))
        .filter_map(|(id, (v, _))| v.as_ref()?.dot(&wq).map(|s| (*id, s)))
        .collect();
    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    hits.truncate(k);
    hits
}

fn check(col: &Collection, model: &Model, rng: &mut Rng, when: &str) {
    for round in 0..20 {
        let q = random_sparse(rng);
        let group = (round % 2 == 0).then_some((round % 5) as i64);
        let params = SearchParams {
            k: 10,
            using: Some("text".into()),
            filter: group.map(|g| {
                Filter::parse(&json!({"must": [{"key": "group", "match": {"value": g}}]}))
                    .expect("filter")
            }),
            ..SearchParams::default()
        };
        let got = col.search_sparse(&q, &params).expect("search");
        let want = reference(model, &q, 10, group);
        assert_eq!(got.len(), want.len(), "{when}: {q:?}");
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g.score - w.1).abs() <= 1e-4 * w.1.abs().max(1.0),
                "{when}: {g:?} vs {w:?}"
            );
        }
        let got_ids: Vec<u64> = got
            .iter()
            .map(|h| match h.id {
                PointId::Num(n) => n,
                PointId::Str(_) => u64::MAX,
            })
            .collect();
        let want_ids: Vec<u64> = want.iter().map(|w| w.0).collect();
        assert_eq!(got_ids, want_ids, "{when}");
    }
}

#[test]
fn sparse_search_matches_the_model_through_seal_delete_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng::new(7);
    let mut model = Model::new();
    {
        let store = Store::open(dir.path(), options()).expect("open");
        let col = store
            .create_collection("c", config(), false)
            .expect("create");
        write(&col, &mut rng, 0..N / 2, &mut model);
        check(&col, &model, &mut rng, "unsealed");
        col.optimize(&NEVER).expect("optimize");
        check(&col, &model, &mut rng, "sealed");
        // Overwrites (some losing their sparse vector) and deletes, in memory over segments.
        write(&col, &mut rng, N / 4..N, &mut model);
        let gone: Vec<u64> = (0..N).filter(|i| i % 11 == 0).collect();
        col.delete(&gone.iter().map(|&i| PointId::Num(i)).collect::<Vec<_>>())
            .expect("delete");
        for i in gone {
            model.remove(&i);
        }
        check(&col, &model, &mut rng, "mixed");
        col.optimize(&NEVER).expect("optimize");
        check(&col, &model, &mut rng, "merged");
    }
    let store = Store::open(dir.path(), options()).expect("reopen");
    let col = store.collection("c").expect("collection");
    check(&col, &model, &mut rng, "reopened");
}

#[test]
fn hybrid_rrf_fuses_dense_and_sparse_candidates() {
    let store = Store::in_memory(options());
    let col = store
        .create_collection("c", config(), false)
        .expect("create");
    let mut rng = Rng::new(11);
    let mut model = Model::new();
    write(&col, &mut rng, 0..500, &mut model);
    let q = random_sparse(&mut rng);
    let dense: Vec<f32> = rng.vectors(1, DIM);
    let lookups = Lookups::new();
    let req = QueryRequest::parse(
        &json!({
            "prefetch": [
                {"query": dense, "limit": 20, "params": {"exact": true}},
                {"query": {"indices": q.indices, "values": q.values}, "using": "text", "limit": 20}
            ],
            "query": {"fusion": "rrf"},
            "limit": 10,
        }),
        true,
    )
    .expect("parse");
    let fused = col.query(&req, &lookups).expect("query");
    // The reference: both lists, fused by hand (k = 2).
    let d = col
        .search(
            &dense,
            &SearchParams {
                k: 20,
                exact: true,
                ..SearchParams::default()
            },
        )
        .expect("dense");
    let s = col
        .search_sparse(
            &q,
            &SearchParams {
                k: 20,
                using: Some("text".into()),
                ..SearchParams::default()
            },
        )
        .expect("sparse");
    let mut score: Vec<(PointId, f64)> = Vec::new();
    for list in [&d, &s] {
        for (pos, h) in list.iter().enumerate() {
            let add = 1.0 / (pos as f64 + 2.0);
            match score.iter_mut().find(|(id, _)| *id == h.id) {
                Some(e) => e.1 += add,
                None => score.push((h.id.clone(), add)),
            }
        }
    }
    score.sort_by(|a, b| b.1.total_cmp(&a.1));
    score.truncate(10);
    let got: Vec<(PointId, f32)> = fused.iter().map(|h| (h.id.clone(), h.score)).collect();
    let want: Vec<(PointId, f32)> = score.into_iter().map(|(id, s)| (id, s as f32)).collect();
    assert_eq!(got, want);
    assert!(
        fused[0].payload.is_some(),
        "payloads are read for the results"
    );
}
