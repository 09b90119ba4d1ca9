//! Several handles on one store, each through its own descriptors: exactly what separate
//! processes see (the coordination locks belong to a descriptor, not to a process), so the
//! sharing protocol can be checked here step by step. `tests/multiprocess/` runs real processes.

use std::path::Path;
use std::sync::Arc;

use ferrovec_core::io::{FileSystem, OsFs};
use ferrovec_core::{
    CollectionConfig, Distance, Durability, Error, PayloadSelector, PointId, SearchParams,
    StorageOptions, Store,
};

use crate::fixtures::{ids, top_k, RecordingFs, Rng};

const DIM: usize = 8;

fn options() -> StorageOptions {
    StorageOptions {
        durability: Durability::Off,
        background_optimizer: false,
        ..StorageOptions::default()
    }
}

/// A handle of its own, as another process would have.
fn handle(path: &Path, options: StorageOptions) -> Arc<Store> {
    Store::open_with_fs(Arc::new(OsFs) as Arc<dyn FileSystem>, path, options).expect("open")
}

fn config() -> CollectionConfig {
    let mut c = CollectionConfig::new(DIM as u32, Distance::Cosine).expect("config");
    c.hnsw.full_scan_threshold = 50;
    c
}

/// The exact top 5: the same whichever segments hold the points (a graph search of a merged
/// segment may differ from the exact scan of its inputs, and that is not what is tested), and
/// read from every row of every segment the handle uses.
fn top_ids(c: &ferrovec_core::Collection, q: &[f32]) -> Vec<PointId> {
    let params = SearchParams {
        k: 5,
        exact: true,
        ..SearchParams::default()
    };
    c.search(q, &params)
        .expect("search")
        .into_iter()
        .map(|p| p.id)
        .collect()
}

fn segment_files(path: &Path) -> Vec<String> {
    let dir = path.join("collections").join("c").join("segments");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("segments")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn each_handle_sees_the_others_writes_and_manifests_at_its_next_call() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("s");
    let a = handle(&path, options());
    let b = handle(&path, options());
    let ca = a.create_collection("c", config(), false).expect("create");
    let cb = b.collection("c").expect("created by the other handle");
    let mut rng = Rng::new(7);
    ca.upsert(&ids(0..100), &rng.vectors(100, DIM), None)
        .expect("upsert");
    assert_eq!(cb.count().expect("count"), 100);
    cb.delete(&ids(0..10)).expect("delete");
    assert_eq!(ca.count().expect("count"), 90);
    // A checkpoint by one: the other switches to its manifest, same answers.
    ca.flush().expect("flush");
    let q = rng.vectors(1, DIM);
    assert_eq!(top_k(&ca, &q, 10), top_k(&cb, &q, 10));
    cb.upsert(&ids(100..300), &rng.vectors(200, DIM), None)
        .expect("upsert after the other's checkpoint");
    ca.delete(&ids(100..110))
        .expect("delete the other's points");
    // An optimization by one (merge, graph): the other searches the new segment.
    ca.optimize(&ferrovec_core::cancel::NEVER)
        .expect("optimize");
    assert_eq!(cb.count().expect("count"), 280);
    let info_b = cb.info().expect("info");
    assert_eq!(info_b.segments.len(), 1, "{:?}", info_b.segments);
    assert!(info_b.segments[0].indexed);
    assert_eq!(top_k(&ca, &q, 10), top_k(&cb, &q, 10));
    let got = cb
        .get(&ids(95..105), &PayloadSelector::None, false)
        .expect("get");
    assert_eq!(got.len(), 5, "10..100 and 110..300 live");
    drop((ca, cb, a, b));
    let again = handle(&path, options());
    assert_eq!(
        again.collection("c").expect("c").count().expect("count"),
        280
    );
}

#[test]
fn files_a_handle_may_still_use_are_removed_only_after_it_moved_on() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("s");
    let a = handle(&path, options());
    let b = handle(&path, options());
    let ca = a.create_collection("c", config(), false).expect("create");
    let mut rng = Rng::new(8);
    for k in 0..3u64 {
        ca.upsert(&ids(k * 100..k * 100 + 100), &rng.vectors(100, DIM), None)
            .expect("upsert");
        ca.flush().expect("flush");
    }
    let cb = b.collection("c").expect("c");
    let q = rng.vectors(1, DIM);
    let before = top_ids(&cb, &q); // b now uses the three segments
    let old = segment_files(&path);
    ca.optimize(&ferrovec_core::cancel::NEVER)
        .expect("merge into one");
    // b has not made a call since: its files stay.
    for f in &old {
        assert!(segment_files(&path).contains(f), "{f} removed under b");
    }
    assert_eq!(top_ids(&cb, &q), before, "b switched at its call");
    // b moved on; the next lease holder's pass removes what no one uses.
    ca.flush().expect("flush");
    let now = segment_files(&path);
    assert!(old.iter().any(|f| !now.contains(f)), "nothing was removed");
    assert_eq!(top_ids(&cb, &q), before);
}

#[test]
fn a_dropped_collection_is_gone_for_every_handle_and_can_be_created_again() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("s");
    let a = handle(&path, options());
    let b = handle(&path, options());
    let ca = a.create_collection("c", config(), false).expect("create");
    ca.upsert(&ids(0..5), &Rng::new(1).vectors(5, DIM), None)
        .expect("upsert");
    let cb = b.collection("c").expect("c");
    assert_eq!(cb.count().expect("count"), 5);
    a.drop_collection("c").expect("drop");
    assert!(matches!(cb.count(), Err(Error::CollectionNotFound(_))));
    assert!(matches!(
        cb.upsert(&ids(9..10), &[0.5; DIM], None),
        Err(Error::CollectionNotFound(_))
    ));
    assert!(b.list_collections().expect("list").is_empty());
    let ca = a.create_collection("c", config(), false).expect("again");
    ca.upsert(&ids(0..2), &Rng::new(2).vectors(2, DIM), None)
        .expect("upsert");
    assert_eq!(b.collection("c").expect("new c").count().expect("count"), 2);
    // Created by both at once: one creates it, the other gets it with exist_ok.
    assert!(matches!(
        b.create_collection("c", config(), false),
        Err(Error::CollectionExists(_))
    ));
    assert!(b.create_collection("c", config(), true).is_ok());
}

#[test]
fn a_read_only_handle_reads_everything_and_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("s");
    assert!(matches!(
        Store::open(
            &path,
            StorageOptions {
                read_only: true,
                ..options()
            }
        ),
        Err(Error::InvalidInput(_))
    ));
    let a = handle(&path, options());
    let ca = a.create_collection("c", config(), false).expect("create");
    let ro = handle(
        &path,
        StorageOptions {
            read_only: true,
            ..options()
        },
    );
    let cr = ro.collection("c").expect("c");
    ca.upsert(&ids(0..3), &Rng::new(3).vectors(3, DIM), None)
        .expect("upsert");
    assert_eq!(cr.count().expect("count"), 3);
    let refused = [
        cr.upsert(&ids(5..6), &[0.5; DIM], None).err(),
        cr.delete(&ids(0..1)).err(),
        cr.flush().err(),
        cr.create_payload_index("k", ferrovec_core::IndexKind::Keyword)
            .err(),
        ro.create_collection("d", config(), false).err(),
        ro.drop_collection("c").err(),
    ];
    for r in refused {
        assert!(matches!(r, Some(Error::ReadOnly(_))), "{r:?}");
    }
    assert_eq!(ca.count().expect("count"), 3);
    assert_eq!(cr.count().expect("count"), 3);
}

#[test]
fn concurrent_writers_through_separate_handles_lose_and_duplicate_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("s");
    let opts = StorageOptions {
        wal_file_bytes: 16 << 10, // many log files
        checkpoint_log_bytes: 64 << 10,
        background_optimizer: true,
        ..options()
    };
    handle(&path, opts)
        .create_collection("c", config(), false)
        .expect("create");
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || {
                let store = handle(&path, opts);
                let c = store.collection("c").expect("c");
                let mut rng = Rng::new(w);
                for b in 0..50u64 {
                    let start = w * 10_000 + b * 10;
                    c.upsert(&ids(start..start + 10), &rng.vectors(10, DIM), None)
                        .expect("upsert");
                    if b % 10 == 9 {
                        c.delete(&ids(start..start + 2)).expect("delete");
                    }
                }
                store
            })
        })
        .collect();
    let stores: Vec<Arc<Store>> = writers
        .into_iter()
        .map(|h| h.join().expect("writer"))
        .collect();
    for store in &stores {
        let c = store.collection("c").expect("c");
        assert_eq!(c.count().expect("count"), 4 * (500 - 5 * 2));
        let want: Vec<PointId> = (0..4u64)
            .flat_map(|w| (0..50u64).map(move |b| PointId::Num(w * 10_000 + b * 10 + 5)))
            .collect();
        assert_eq!(
            c.get(&want, &PayloadSelector::None, false)
                .expect("get")
                .len(),
            200
        );
    }
    drop(stores);
    let store = handle(&path, options());
    let c = store.collection("c").expect("c");
    assert_eq!(c.count().expect("count"), 1960);
    c.verify().expect("checksums");
}

#[test]
fn a_store_on_a_network_file_system_is_refused_with_the_way_out() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("s");
    let nfs = RecordingFs {
        fs_type: Some(0x6969), // NFS_SUPER_MAGIC
        ..RecordingFs::default()
    };
    match Store::open_with_fs(Arc::new(nfs), &path, options()) {
        Err(Error::InvalidInput(msg)) => {
            assert!(msg.contains("NFS"), "{msg}");
            assert!(
                msg.contains(ferrovec_core::store::ALLOW_NETWORK_FS),
                "{msg}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The local file system this test runs on is not refused.
    let here = OsFs.fs_type(tmp.path()).expect("statfs");
    assert_eq!(ferrovec_core::io::unshareable_file_system(here), None);
}
