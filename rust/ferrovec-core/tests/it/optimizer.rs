//! Segments, graphs and the optimizer: recall of the indexed collection, results stable across
//! optimize and reopen, and concurrent writes while the background optimizer seals and merges.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferrovec_core::io::{FileSystem, OsFs};
use ferrovec_core::{Collection, StorageOptions};
use ferrovec_core::{
    CollectionConfig, Distance, Durability, HnswConfig, OptimizerConfig, PayloadSelector, PointId,
    SearchParams,
};

use crate::fixtures::{ids, Rng};

const DIM: usize = 32;
const CENTRE_SEED: u64 = 77;

/// Clustered unit vectors: the 40 centres of `CENTRE_SEED` plus noise.
fn clustered(rng: &mut Rng, n: usize) -> Vec<f32> {
    let centres = Rng::new(CENTRE_SEED).vectors(40, DIM);
    let mut out = Vec::with_capacity(n * DIM);
    for _ in 0..n {
        let c = rng.below(40);
        let v: Vec<f32> = (0..DIM)
            .map(|j| centres[c * DIM + j] + 0.35 * rng.f32())
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        out.extend(v.iter().map(|x| x / norm));
    }
    out
}

fn config(full_scan_threshold: usize, indexing_threshold: usize) -> CollectionConfig {
    let mut c = CollectionConfig::new(DIM as u32, Distance::Cosine).expect("config");
    c.hnsw = HnswConfig {
        m: 16,
        ef_construct: 100,
        full_scan_threshold,
    };
    c.optimizer = OptimizerConfig {
        indexing_threshold,
        max_segment_points: 1_000_000,
        idle_ms: 50,
    };
    c
}

fn open(dir: &Path, cfg: &CollectionConfig, background: bool) -> Arc<Collection> {
    if !dir.exists() {
        Collection::create_files(&OsFs, dir, cfg).expect("create");
    }
    let options = StorageOptions {
        durability: Durability::Off,
        background_optimizer: background,
        ..StorageOptions::default()
    };
    Collection::open(Arc::new(OsFs) as Arc<dyn FileSystem>, dir, "c", options).expect("open")
}

fn top_ids(col: &Collection, q: &[f32], k: usize, exact: bool) -> Vec<PointId> {
    let p = SearchParams {
        k,
        exact,
        with_payload: PayloadSelector::None,
        ..SearchParams::default()
    };
    col.search(q, &p)
        .expect("search")
        .into_iter()
        .map(|h| h.id)
        .collect()
}

/// Poll until the background optimizer is idle with `done` true of the collection (a slow
/// build may take a while).
fn wait_for_optimizer(col: &Collection, done: impl Fn(&ferrovec_core::CollectionInfo) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let info = col.info().expect("info");
        if info.optimizer_status == "idle" && done(&info) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the background optimizer did not index: {info:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn optimize_builds_one_indexed_segment_with_high_recall() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("c");
    let cfg = config(1000, 1_000_000);
    let col = open(&dir, &cfg, false);
    let mut rng = Rng::new(21);
    let n = 8000u64;
    let data = clustered(&mut rng, n as usize);
    for b in 0..8u64 {
        let s = (b * 1000) as usize;
        col.upsert(
            &ids(b * 1000..(b + 1) * 1000),
            &data[s * DIM..(s + 1000) * DIM],
            None,
        )
        .expect("upsert");
        if b % 3 == 2 {
            col.flush().expect("checkpoint makes several segments");
        }
    }
    col.delete(&ids(0..100)).expect("delete");
    let queries = clustered(&mut rng, 50);
    let exact_before: Vec<Vec<PointId>> = queries
        .chunks_exact(DIM)
        .map(|q| top_ids(&col, q, 10, true))
        .collect();

    col.optimize(&ferrovec_core::cancel::NEVER)
        .expect("optimize");
    let info = col.info().expect("info");
    assert_eq!(info.segments.len(), 1, "{:?}", info.segments);
    assert!(info.segments[0].indexed);
    assert_eq!(info.indexed_points, 7900);
    assert_eq!(info.unindexed_points, 0);
    let recall = info.segments[0].self_check_recall.expect("self-check ran");
    assert!(recall >= 0.9, "self-check {recall}");

    let mut hits = 0;
    for (q, want) in queries.chunks_exact(DIM).zip(&exact_before) {
        // Exact results are identical before and after optimize.
        assert_eq!(&top_ids(&col, q, 10, true), want);
        let got = top_ids(&col, q, 10, false);
        assert!(
            got.iter()
                .all(|id| !matches!(id, PointId::Num(i) if *i < 100)),
            "deleted point returned"
        );
        hits += got.iter().filter(|g| want.contains(g)).count();
    }
    let recall = hits as f64 / (10.0 * 50.0);
    assert!(recall >= 0.95, "recall@10 {recall}");

    // Identical after close and reopen.
    let approx_before: Vec<Vec<PointId>> = queries
        .chunks_exact(DIM)
        .map(|q| top_ids(&col, q, 10, false))
        .collect();
    col.close().expect("close");
    drop(col);
    let col = open(&dir, &cfg, false);
    for (q, want) in queries.chunks_exact(DIM).zip(&approx_before) {
        assert_eq!(&top_ids(&col, q, 10, false), want);
    }
    col.verify()
        .expect("checksums of the graph and segment files");

    // Cosine graphs are walked on an int8 code file; bit rot in it is found by verify.
    col.close().expect("close");
    drop(col);
    let codes: Vec<std::path::PathBuf> = std::fs::read_dir(dir.join("segments"))
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "q8"))
        .collect();
    assert_eq!(codes.len(), 1, "one code file beside the one graph");
    let mut b = std::fs::read(&codes[0]).expect("read");
    let last = b.len() - 1;
    b[last] ^= 0x10;
    std::fs::write(&codes[0], &b).expect("write");
    let col = open(&dir, &cfg, false);
    assert!(matches!(
        col.verify(),
        Err(ferrovec_core::Error::Corruption { .. })
    ));
}

#[test]
fn writes_racing_the_background_optimizer_lose_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("c");
    // Tiny thresholds so the optimizer seals, indexes and merges many times during the test.
    let cfg = config(300, 400);
    let col = open(&dir, &cfg, true);
    let mut model: BTreeMap<u64, Vec<f32>> = BTreeMap::new();
    let mut rng = Rng::new(5);
    let stop = std::sync::atomic::AtomicBool::new(false);
    // Ids whose delete() has returned; a search that starts later must never return them.
    let deleted = parking_lot::RwLock::new(std::collections::HashSet::<u64>::new());
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let col = col.clone();
            let stop = &stop;
            let deleted = &deleted;
            s.spawn(move || {
                let mut rng = Rng::new(100 + t);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let q = clustered(&mut rng, 1);
                    let gone = deleted.read().clone();
                    let hits = col
                        .search(
                            &q,
                            &SearchParams {
                                k: 10,
                                ..SearchParams::default()
                            },
                        )
                        .expect("search during optimization");
                    let mut seen: Vec<&PointId> = hits.iter().map(|h| &h.id).collect();
                    seen.sort();
                    seen.dedup();
                    assert_eq!(seen.len(), hits.len(), "duplicate point in results");
                    for h in &hits {
                        if let PointId::Num(i) = h.id {
                            assert!(!gone.contains(&i), "deleted point {i} returned");
                        }
                    }
                }
            });
        }
        for round in 0..30u64 {
            let base = round * 150;
            let v = clustered(&mut rng, 150);
            col.upsert(&ids(base..base + 150), &v, None)
                .expect("upsert");
            for (i, row) in v.chunks_exact(DIM).enumerate() {
                model.insert(base + i as u64, row.to_vec());
            }
            // Replace some older points, delete others.
            if round > 2 {
                let old = (round - 2) * 150;
                let v = clustered(&mut rng, 20);
                col.upsert(&ids(old..old + 20), &v, None).expect("replace");
                for (i, row) in v.chunks_exact(DIM).enumerate() {
                    model.insert(old + i as u64, row.to_vec());
                }
                let dead: Vec<PointId> = (old..old + 150)
                    .filter(|i| i % 7 == 0 && i % 2 == 1)
                    .map(PointId::Num)
                    .collect();
                col.delete(&dead).expect("delete");
                for d in &dead {
                    if let PointId::Num(i) = d {
                        model.remove(i);
                        deleted.write().insert(*i);
                    }
                }
            }
            if round % 5 == 4 {
                std::thread::sleep(Duration::from_millis(120)); // let the optimizer go idle-indexing
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let check = |col: &Collection| {
        assert_eq!(col.count().expect("count"), model.len());
        let (recs, next) = col
            .scroll(100_000, None, &PayloadSelector::None, true, None)
            .expect("scroll");
        assert!(next.is_none());
        let got: Vec<u64> = recs
            .iter()
            .map(|r| match r.id {
                PointId::Num(i) => i,
                PointId::Str(_) => u64::MAX,
            })
            .collect();
        let want: Vec<u64> = model.keys().copied().collect();
        assert_eq!(got, want, "lost or duplicated points");
        for r in &recs {
            let PointId::Num(i) = r.id else { continue };
            let v = r.vector.as_ref().expect("vector");
            let m = &model[&i];
            assert!(
                v.iter().zip(m).all(|(a, b)| (a - b).abs() < 1e-5),
                "stale vector for {i}"
            );
        }
    };
    check(&col);
    // Idle now: the background optimizer indexes what is left, down to fewer points than its
    // indexing threshold (it leaves those to the next writes, as documented), and goes idle.
    let threshold = cfg.optimizer.indexing_threshold;
    wait_for_optimizer(&col, |info| {
        info.unindexed_points < threshold && info.segments.iter().any(|s| s.indexed)
    });
    check(&col);
    // Crash (no close) and reopen: the log and manifests agree.
    drop(col);
    let col = open(&dir, &cfg, false);
    check(&col);
    col.optimize(&ferrovec_core::cancel::NEVER)
        .expect("optimize");
    check(&col);
    assert_eq!(col.info().expect("info").segments.len(), 1);
}

/// Writes racing a long build of the background optimizer (it holds the collection's
/// structure lock for the whole build): the log, and so the rows held in memory, stays within
/// four checkpoints plus one batch, because a write that finds it that long seals it itself
/// once the build is done. Before, writes went on filling memory for as long as the build ran
/// (6.9M rows, 13 GB, while ingesting 10M points).
#[test]
fn writes_during_a_long_build_keep_the_log_bounded() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("c");
    let cfg = config(1000, 1_000_000);
    Collection::create_files(&OsFs, &dir, &cfg).expect("create");
    let checkpoint = 64u64 << 10;
    let options = StorageOptions {
        durability: Durability::Off,
        checkpoint_log_bytes: checkpoint,
        ..StorageOptions::default()
    };
    let col =
        Collection::open(Arc::new(OsFs) as Arc<dyn FileSystem>, &dir, "c", options).expect("open");
    let mut rng = Rng::new(5);
    let n = 30_000u64;
    let data = clustered(&mut rng, n as usize);
    col.upsert(&ids(0..n), &data, None).expect("upsert");
    // A full optimization in the background: one long graph build.
    col.optimize_in_background().expect("request");
    let started = std::time::Instant::now();
    while col.stats().expect("stats")["optimizer"]["progress"].is_null() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the build never began"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let batch = 50u64;
    let more = clustered(&mut rng, (100 * batch) as usize);
    let batch_bytes = batch * (DIM as u64 * 4 + 64);
    let mut most = 0;
    for b in 0..100u64 {
        let s = (b * batch) as usize;
        let first = n + b * batch;
        col.upsert(
            &ids(first..first + batch),
            &more[s * DIM..(s + batch as usize) * DIM],
            None,
        )
        .expect("upsert");
        let log = col.info().expect("info").log_bytes;
        most = most.max(log);
        assert!(
            log <= 4 * checkpoint + batch_bytes,
            "log of {log} bytes after batch {b} (checkpoints of {checkpoint})"
        );
    }
    assert!(
        most > checkpoint,
        "the writes outgrew a checkpoint ({most} bytes)"
    );
    let stats = col.stats().expect("stats");
    let stalls = stats["optimizer"]["write_stalls"].as_u64().expect("stalls");
    assert!(stalls >= 1, "no write sealed the log itself: {stats}");
    assert_eq!(col.count().expect("count"), (n + 100 * batch) as usize);
    col.close().expect("close");
}

/// Points indexed piece by piece fill one segment up to `max_segment_points` before starting
/// the next: each piece is inserted into the growing segment's graph, once. Before, a segment
/// twice the size of the piece stopped absorbing, and every later piece became a segment of
/// its own for `optimize()` to insert again.
#[test]
fn pieces_indexed_in_turn_fill_one_segment_before_the_next() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("c");
    let mut cfg = config(50, 100);
    cfg.optimizer.max_segment_points = 1_000;
    let col = open(&dir, &cfg, true);
    let mut rng = Rng::new(5);
    let indexed_rows = |col: &Collection| -> Vec<usize> {
        let info = col.info().expect("info");
        info.segments
            .iter()
            .filter(|s| s.indexed)
            .map(|s| s.rows)
            .collect()
    };
    for piece in 0..6u64 {
        let data = clustered(&mut rng, 200);
        col.upsert(&ids(piece * 200..(piece + 1) * 200), &data, None)
            .expect("upsert");
        wait_for_optimizer(&col, |info| info.unindexed_points == 0);
        let mut rows = indexed_rows(&col);
        rows.sort_unstable();
        let want = if piece < 5 {
            vec![(piece as usize + 1) * 200]
        } else {
            vec![200, 1_000]
        };
        assert_eq!(rows, want, "after piece {piece}");
    }
}
