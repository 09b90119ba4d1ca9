//! Many threads mixing every operation on one collection while the background optimizer seals,
//! indexes and merges, and snapshots are staged. Each writer owns a range of ids and keeps the
//! model of it; at the end the store must hold exactly the union of the models, and again after
//! a reopen. Readers must never fail. Bounded by FERROVEC_STRESS_SECS (default 3).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrovec_core::{
    CollectionConfig, Distance, Durability, Filter, IndexKind, PayloadOp, PayloadSelector, PointId,
    SearchParams, Selector, StorageOptions, Store,
};

use crate::fixtures::{all_points, env_number, Points, Rng};

const DIM: usize = 8;

type Model = Points;

#[test]
fn threads_mixing_every_operation_with_the_optimizer_and_snapshots_agree_with_their_models() {
    let secs: u64 = env_number("FERROVEC_STRESS_SECS", 3);
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("s");
    let options = StorageOptions {
        durability: Durability::Off,
        checkpoint_log_bytes: 64 << 10,
        ..StorageOptions::default()
    };
    let mut config = CollectionConfig::new(DIM as u32, Distance::Euclid).expect("config");
    config.hnsw.full_scan_threshold = 100;
    config.hnsw.m = 8;
    config.hnsw.ef_construct = 32;
    config.optimizer.indexing_threshold = 200;
    config.optimizer.idle_ms = 1;
    let store = Store::open(&path, options).expect("open");
    let col = store.create_collection("c", config, false).expect("create");
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(secs);

    let writers: Vec<_> = (0..3u64)
        .map(|w| {
            let col = col.clone();
            std::thread::spawn(move || {
                let mut rng = Rng::new(w + 1);
                let mut model = Model::new();
                let base = w * 1_000_000;
                let mut step = 0u64;
                while Instant::now() < deadline {
                    step += 1;
                    let ids: Vec<u64> = (0..1 + rng.below(20))
                        .map(|_| base + rng.below(500) as u64)
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    let pids: Vec<PointId> = ids.iter().map(|&i| PointId::Num(i)).collect();
                    match rng.below(10) {
                        0..=5 => {
                            let vectors = rng.vectors(ids.len(), DIM);
                            let payloads: Vec<_> = ids
                                .iter()
                                .map(|&i| serde_json::json!({"w": w, "i": i, "s": step}))
                                .collect();
                            let maps: Vec<_> =
                                payloads.iter().map(|p| p.as_object().cloned()).collect();
                            col.upsert(&pids, &vectors, Some(&maps)).expect("upsert");
                            for (k, &i) in ids.iter().enumerate() {
                                model.insert(
                                    i,
                                    (
                                        vectors[k * DIM..(k + 1) * DIM].to_vec(),
                                        payloads[k].clone(),
                                    ),
                                );
                            }
                        }
                        6 | 7 => {
                            col.delete(&pids).expect("delete");
                            for i in &ids {
                                model.remove(i);
                            }
                        }
                        _ => {
                            let set = serde_json::json!({"seen": step});
                            col.update_payload(
                                Selector::Ids(&pids),
                                &PayloadOp::Set(set.as_object().cloned().unwrap_or_default()),
                            )
                            .expect("set payload");
                            for i in &ids {
                                if let Some((_, p)) = model.get_mut(i) {
                                    p["seen"] = serde_json::json!(step);
                                }
                            }
                        }
                    }
                }
                model
            })
        })
        .collect();

    let readers: Vec<_> = (0..2u64)
        .map(|r| {
            let (col, stop) = (col.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::new(100 + r);
                let filter = Filter::parse(
                    &serde_json::json!({"must": [{"key": "w", "match": {"value": 1}}]}),
                )
                .expect("filter");
                let mut calls = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let q = rng.vectors(1, DIM);
                    let params = SearchParams {
                        k: 10,
                        ..SearchParams::default()
                    };
                    col.search(&q, &params).expect("search");
                    col.search(
                        &q,
                        &SearchParams {
                            filter: Some(filter.clone()),
                            ..params
                        },
                    )
                    .expect("filtered search");
                    col.count_filtered(&filter).expect("count");
                    col.get(
                        &[PointId::Num(1_000_000 + rng.below(500) as u64)],
                        &PayloadSelector::All,
                        true,
                    )
                    .expect("get");
                    calls += 1;
                }
                calls
            })
        })
        .collect();

    let structure = {
        let (col, stop) = (col.clone(), stop.clone());
        let stage = tmp.path().join("stage");
        std::thread::spawn(move || {
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match k % 4 {
                    0 => col.flush().expect("flush"),
                    1 => col
                        .optimize(&ferrovec_core::cancel::NEVER)
                        .expect("optimize"),
                    2 => col
                        .create_payload_index("w", IndexKind::Integer)
                        .expect("index"),
                    _ => {
                        let dir = stage.join(k.to_string());
                        col.stage_snapshot(&dir).expect("snapshot");
                        let _ = std::fs::remove_dir_all(&dir);
                        col.drop_payload_index("w").expect("drop index");
                    }
                }
                k += 1;
            }
            k
        })
    };

    let mut model = Model::new();
    for w in writers {
        model.extend(w.join().expect("writer"));
    }
    stop.store(true, Ordering::Relaxed);
    let calls: u64 = readers.into_iter().map(|r| r.join().expect("reader")).sum();
    let changes = structure.join().expect("structure");
    assert!(calls > 0 && changes > 0);
    assert_eq!(
        all_points(&col),
        model,
        "the store disagrees with the writers' models"
    );
    col.verify().expect("checksums");
    drop(col);
    drop(store);
    let store = Store::open(&path, options).expect("reopen");
    let col = store.collection("c").expect("c");
    assert_eq!(all_points(&col), model, "after reopening");
    eprintln!(
        "stress: {} points, {calls} reader rounds, {changes} structural changes in {secs} s",
        model.len()
    );
}
