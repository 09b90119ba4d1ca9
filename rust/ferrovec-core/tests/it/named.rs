//! Named vectors: a point holds several vectors, each with its own dimension and distance;
//! searches pick one with `using`. Exact and graph search per vector against a brute-force
//! reference, partial vector updates, and everything again after a checkpoint and a reopen.

use std::sync::Arc;

use ferrovec_core::{
    Collection, CollectionConfig, Distance, Matrix, PayloadSelector, PointId, SearchParams,
    StorageOptions, Store, VectorData, VectorSpec, Vectors,
};

use crate::fixtures::{ids, Rng};
use crate::search::reference;

const TEXT: usize = 12;
const IMAGE: usize = 6;
const N: u64 = 3000;

fn config() -> CollectionConfig {
    let mut c = CollectionConfig::with_vectors(vec![
        VectorSpec {
            name: "text".into(),
            dim: TEXT as u32,
            distance: Distance::Cosine,
        },
        VectorSpec {
            name: "image".into(),
            dim: IMAGE as u32,
            distance: Distance::Euclid,
        },
    ])
    .expect("config");
    c.hnsw.full_scan_threshold = 500;
    c
}

fn options() -> StorageOptions {
    StorageOptions {
        background_optimizer: false,
        ..StorageOptions::default()
    }
}

type Model = Vec<(u64, Vec<f32>, Vec<f32>)>;

fn fill(col: &Collection) -> Model {
    let mut rng = Rng::new(31);
    let text = rng.vectors(N as usize, TEXT);
    let image = rng.vectors(N as usize, IMAGE);
    let mut rows = Vec::new();
    let mut model = Vec::new();
    for i in 0..N as usize {
        let t = &text[i * TEXT..(i + 1) * TEXT];
        let im = &image[i * IMAGE..(i + 1) * IMAGE];
        rows.extend_from_slice(t);
        rows.extend_from_slice(im);
        model.push((i as u64, t.to_vec(), im.to_vec()));
    }
    col.upsert(&ids(0..N), &rows, None).expect("upsert");
    model
}

fn search(col: &Collection, using: &str, q: &[f32], exact: bool) -> Vec<(PointId, f32)> {
    col.search(
        q,
        &SearchParams {
            k: 10,
            exact,
            using: Some(using.into()),
            with_payload: PayloadSelector::None,
            ..SearchParams::default()
        },
    )
    .expect("search")
    .into_iter()
    .map(|h| (h.id, h.score))
    .collect()
}

/// Exact results equal the reference; graph results find most of it.
fn check(col: &Collection, model: &Model, graphs: bool) {
    let mut rng = Rng::new(9);
    let mut found = 0;
    let mut total = 0;
    for (name, dim, metric) in [
        ("text", TEXT, Distance::Cosine),
        ("image", IMAGE, Distance::Euclid),
    ] {
        let points: Vec<(u64, Vec<f32>)> = model
            .iter()
            .map(|(id, t, im)| {
                (
                    *id,
                    if name == "text" {
                        t.clone()
                    } else {
                        im.clone()
                    },
                )
            })
            .collect();
        for _ in 0..20 {
            let q = rng.vectors(1, dim);
            let want = reference(metric, &q, &points, 10);
            let exact = search(col, name, &q, true);
            assert_eq!(exact.len(), 10);
            for ((id, score), (wid, wscore)) in exact.iter().zip(&want) {
                assert_eq!(id, &PointId::Num(*wid), "{name}");
                assert!((f64::from(*score) - wscore).abs() < 1e-4, "{name}");
            }
            let approx = search(col, name, &q, false);
            total += 10;
            found += approx
                .iter()
                .filter(|(id, _)| want.iter().any(|w| PointId::Num(w.0) == *id))
                .count();
        }
    }
    let recall = found as f64 / total as f64;
    assert!(recall >= 0.9, "recall {recall} (graphs: {graphs})");
}

/// A new store at `path` with the collection "docs" filled by `fill`.
fn open_filled(path: &std::path::Path) -> (Arc<Store>, Arc<Collection>, Model) {
    let store = Store::open(path, options()).expect("open");
    let col = store
        .create_collection("docs", config(), false)
        .expect("create");
    let model = fill(&col);
    (store, col, model)
}

#[test]
fn named_vectors_search_update_and_survive_reopen() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("db");
    let (store, col, mut model) = open_filled(&path);
    check(&col, &model, false);

    // Which vector: required, known, of its own dimension.
    let q = vec![0.5f32; TEXT];
    let none = col.search(&q, &SearchParams::default());
    assert!(none.is_err_and(|e| e.to_string().contains("say which one")));
    let unknown = col.search(
        &q,
        &SearchParams {
            using: Some("audio".into()),
            ..SearchParams::default()
        },
    );
    assert!(unknown.is_err_and(|e| e.to_string().contains("no vector named \"audio\"")));
    let wrong_dim = col.search(
        &q,
        &SearchParams {
            using: Some("image".into()),
            ..SearchParams::default()
        },
    );
    assert!(wrong_dim.is_err_and(|e| e.to_string().contains("vector \"image\" has dimension 6")));

    // A zero text vector is refused under cosine (the batch whole); a zero image is fine.
    let mut rows = vec![0.0f32; TEXT + IMAGE];
    let before = col.count().expect("count");
    assert!(col.upsert(&ids(N..N + 1), &rows, None).is_err());
    assert_eq!(col.count().expect("count"), before);
    rows[0] = 1.0;
    col.upsert(&ids(N..N + 1), &rows, None).expect("zero image");
    col.delete(&ids(N..N + 1)).expect("delete");

    // Replace only the image of ten points: their text stays.
    let mut rng = Rng::new(4);
    let new_images = rng.vectors(10, IMAGE);
    let found = col
        .update_vectors(
            &ids(0..10),
            &Vectors::Named(vec![(
                "image".to_string(),
                VectorData::Dense(Matrix::new(&new_images, 10, IMAGE).expect("matrix")),
            )]),
            false,
        )
        .expect("update");
    assert_eq!(found.len(), 10);
    for (i, row) in model.iter_mut().take(10).enumerate() {
        row.2 = new_images[i * IMAGE..(i + 1) * IMAGE].to_vec();
    }
    let got = col
        .get(&ids(0..10), &PayloadSelector::None, true)
        .expect("get");
    for (rec, (_, t, im)) in got.iter().zip(&model) {
        let v = rec.vector.as_ref().expect("vector");
        let norm = t.iter().map(|x| x * x).sum::<f32>().sqrt();
        for (a, b) in v[..TEXT].iter().zip(t) {
            assert!((a - b / norm).abs() < 1e-5, "text kept, unit-normalised");
        }
        assert_eq!(&v[TEXT..], &im[..], "image replaced");
    }
    assert!(col
        .update_vectors(
            &ids(0..1),
            &Vectors::Named(vec![(
                "nope".to_string(),
                VectorData::Dense(Matrix::new(&[0.0; 3], 1, 3).expect("matrix")),
            )]),
            false
        )
        .is_err());

    // Sealed, merged and indexed: one graph per vector.
    col.optimize(&ferrovec_core::cancel::NEVER)
        .expect("optimize");
    let info = col.info().expect("info");
    assert_eq!(info.indexed_points, N as usize);
    let seg_dir = path.join("collections").join("docs").join("segments");
    let names: Vec<String> = std::fs::read_dir(&seg_dir)
        .expect("segments")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.ends_with(".1.hnsw")), "{names:?}");
    assert!(names
        .iter()
        .any(|n| n.ends_with(".hnsw") && !n.ends_with(".1.hnsw")));
    check(&col, &model, true);

    store.close().expect("close");
    drop(col);
    drop(store);
    let store: Arc<Store> = Store::open(&path, options()).expect("reopen");
    let col = store.collection("docs").expect("collection");
    assert_eq!(col.config(), &config());
    check(&col, &model, true);
}

/// Points may lack named vectors (left out, or removed by `delete_vectors`): a search of a
/// vector never returns a point without it — exactly, through a graph, filtered, in a batch —
/// and the rest of the point is kept; across a checkpoint, an index build and a reopen.
#[test]
fn absent_vectors_are_never_found() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("db");
    let (store, col, mut model) = open_filled(&path);
    // Every third point has no image; points 0..300 lose their text afterwards.
    let mut rows = Vec::new();
    let lacking: Vec<u64> = (0..N).filter(|i| i.is_multiple_of(3)).collect();
    for &i in &lacking {
        rows.extend_from_slice(&model[i as usize].1);
        rows.extend_from_slice(&[f32::NAN; IMAGE]);
    }
    let ids_lacking: Vec<PointId> = lacking.iter().map(|&i| PointId::Num(i)).collect();
    col.upsert(&ids_lacking, &rows, None)
        .expect("upsert without image");
    let removed = col
        .delete_vectors(
            ferrovec_core::Selector::Ids(&ids(0..300)),
            &["text".to_string()],
        )
        .expect("delete text");
    assert_eq!(removed, 300);
    // A vector of all NaN is absent; one NaN among numbers is refused.
    let mut bad = vec![0.5f32; TEXT + IMAGE];
    bad[TEXT + 1] = f32::NAN;
    assert!(col.upsert(&ids(N..N + 1), &bad, None).is_err());

    let has_image = |id: u64| !id.is_multiple_of(3);
    let has_text = |id: u64| id >= 300;
    let check = |col: &Collection| {
        let mut rng = Rng::new(12);
        for (name, dim, has) in [
            ("text", TEXT, &has_text as &dyn Fn(u64) -> bool),
            ("image", IMAGE, &has_image),
        ] {
            for exact in [true, false] {
                for _ in 0..10 {
                    let q = rng.vectors(1, dim);
                    let got = search(col, name, &q, exact);
                    assert_eq!(got.len(), 10);
                    for (id, score) in &got {
                        let PointId::Num(n) = id else { panic!("id") };
                        assert!(has(*n), "{name} found point {n} without it");
                        assert!(score.is_finite());
                    }
                    let filtered = col
                        .search(
                            &q,
                            &SearchParams {
                                k: 5,
                                exact,
                                using: Some(name.into()),
                                filter: Some(
                                    ferrovec_core::Filter::parse(&serde_json::json!({
                                        "must": [{"has_id": (0..600).collect::<Vec<u64>>()}]
                                    }))
                                    .expect("filter"),
                                ),
                                ..SearchParams::default()
                            },
                        )
                        .expect("filtered search");
                    assert_eq!(filtered.len(), 5);
                    for h in filtered {
                        let PointId::Num(n) = h.id else { panic!("id") };
                        assert!(n < 600 && has(n), "{name} (filtered) found point {n}");
                    }
                }
                let batch = col
                    .search_batch(
                        Matrix::new(&rng.vectors(5, dim), 5, dim).expect("matrix"),
                        &SearchParams {
                            k: 10,
                            exact,
                            using: Some(name.into()),
                            ..SearchParams::default()
                        },
                    )
                    .expect("batch");
                for hits in batch {
                    assert_eq!(hits.len(), 10);
                    for h in hits {
                        let PointId::Num(n) = h.id else { panic!("id") };
                        assert!(has(n), "{name} (batch) found point {n}");
                    }
                }
            }
        }
        // The rest of each point is kept: point 3 has neither vector now, but is there; point
        // 301 has both.
        let got = col
            .get(
                &[PointId::Num(3), PointId::Num(301)],
                &PayloadSelector::None,
                true,
            )
            .expect("get");
        let v3 = got[0].vector.as_ref().expect("vector");
        assert!(v3.iter().all(|x| x.is_nan()));
        let v4 = got[1].vector.as_ref().expect("vector");
        assert!(v4.iter().all(|x| x.is_finite()));
        assert_eq!(col.count().expect("count"), N as usize);
    };
    check(&col);
    for row in model.iter_mut().filter(|r| !has_image(r.0)) {
        row.2 = vec![f32::NAN; IMAGE];
    }
    col.optimize(&ferrovec_core::cancel::NEVER)
        .expect("optimize");
    assert_eq!(col.info().expect("info").indexed_points, N as usize);
    check(&col);
    store.close().expect("close");
    drop(col);
    drop(store);
    let store = Store::open(&path, options()).expect("reopen");
    let col = store.collection("docs").expect("collection");
    check(&col);
    // The unnamed vector can be removed too (Qdrant allows it): the point stays, unfound.
    let plain = store
        .create_collection(
            "plain",
            CollectionConfig::new(4, Distance::Dot).expect("config"),
            false,
        )
        .expect("create");
    plain
        .upsert(&ids(0..2), &[1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0], None)
        .expect("upsert");
    let removed = plain
        .delete_vectors(ferrovec_core::Selector::Ids(&ids(0..1)), &[String::new()])
        .expect("delete the vector");
    assert_eq!(removed, 1);
    let hits = plain
        .search(&[1.0, 0.0, 0.0, 0.0], &SearchParams::default())
        .expect("search");
    assert_eq!(
        hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>(),
        ids(1..2)
    );
    assert_eq!(plain.count().expect("count"), 2);
    // NaN as input is refused where it could only be data.
    assert!(plain.upsert(&ids(2..3), &[f32::NAN; 4], None).is_err());
}
