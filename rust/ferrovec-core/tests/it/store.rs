//! Store lifecycle: the lock, the per-process registry, collections created, listed, dropped,
//! and refused inputs that leave everything as it was.

use std::sync::Arc;

use ferrovec_core::io::{FileSystem, OsFs};
use ferrovec_core::{
    CollectionConfig, Distance, Error, PayloadSelector, PointId, StorageOptions, Store,
};

use crate::fixtures::{ids, Rng};

fn config() -> CollectionConfig {
    CollectionConfig::new(4, Distance::Cosine).expect("config")
}

#[test]
fn the_registry_hands_back_the_open_store_and_an_exclusive_holder_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("s");
    let first = Store::open(&path, StorageOptions::default()).expect("open");
    // The registry hands the same store back within the process.
    let again = Store::open(&path, StorageOptions::default()).expect("reopen");
    assert!(Arc::ptr_eq(&first, &again));
    // ... but not with other options.
    let other = StorageOptions {
        durability: ferrovec_core::Durability::Off,
        ..StorageOptions::default()
    };
    assert!(matches!(
        Store::open(&path, other),
        Err(Error::InvalidInput(_))
    ));
    // Another descriptor (as another process would) shares it.
    Store::open_with_fs(
        Arc::new(OsFs) as Arc<dyn FileSystem>,
        &path,
        StorageOptions::default(),
    )
    .expect("shared open");
    drop(again);
    drop(first);
    // A process that holds the lock exclusively (as an older ferrovec does) cannot share.
    let lock = std::fs::File::options()
        .read(true)
        .write(true)
        .open(path.join("LOCK"))
        .expect("lock file");
    lock.lock().expect("exclusive");
    std::fs::write(path.join("LOCK"), b"4242").expect("holder");
    match Store::open(&path, StorageOptions::default()) {
        Err(Error::StoreLocked { pid, .. }) => assert_eq!(pid, "4242"),
        other => panic!("expected StoreLocked, got {other:?}"),
    }
    drop(lock);
    Store::open(&path, StorageOptions::default()).expect("free again");
}

#[test]
fn collections_lifecycle_and_persistence() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("s");
    {
        let store = Store::open(&path, StorageOptions::default()).expect("open");
        let a = store
            .create_collection("a", config(), false)
            .expect("create");
        store
            .create_collection("b-2_x", config(), false)
            .expect("create");
        assert!(matches!(
            store.create_collection("a", config(), false),
            Err(Error::CollectionExists(_))
        ));
        assert!(store.create_collection("a", config(), true).is_ok());
        let other = CollectionConfig::new(5, Distance::Cosine).expect("config");
        assert!(matches!(
            store.create_collection("a", other, true),
            Err(Error::InvalidInput(_))
        ));
        for bad in ["", "a b", "../x", "é", ".hidden"] {
            assert!(
                matches!(
                    store.create_collection(bad, config(), false),
                    Err(Error::InvalidInput(_))
                ),
                "{bad:?}"
            );
        }
        let mut rng = Rng::new(1);
        a.upsert(&ids(0..10), &rng.vectors(10, 4), None)
            .expect("upsert");
        assert_eq!(store.list_collections().expect("list"), vec!["a", "b-2_x"]);
        store.drop_collection("b-2_x").expect("drop");
        assert!(matches!(
            store.collection("b-2_x"),
            Err(Error::CollectionNotFound(_))
        ));
        assert!(matches!(
            store.drop_collection("zz"),
            Err(Error::CollectionNotFound(_))
        ));
        store.close().expect("close");
        assert!(matches!(a.count(), Err(Error::Closed(_))));
    }
    let store = Store::open(&path, StorageOptions::default()).expect("reopen");
    assert_eq!(store.list_collections().expect("list"), vec!["a"]);
    let a = store.collection("a").expect("a");
    assert_eq!(a.count().expect("count"), 10);
    assert!(a.info().expect("info").disk_bytes > 0);
}

#[test]
fn dropped_collection_handles_fail_cleanly() {
    let store = Store::in_memory(StorageOptions::default());
    let c = store
        .create_collection("c", config(), false)
        .expect("create");
    store.drop_collection("c").expect("drop");
    assert!(matches!(c.count(), Err(Error::CollectionNotFound(_))));
    assert!(matches!(
        c.upsert(&ids(0..1), &[1.0, 0.0, 0.0, 0.0], None),
        Err(Error::CollectionNotFound(_))
    ));
}

#[test]
fn a_foreign_directory_is_not_taken_over() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("notes.txt"), b"mine").expect("write");
    match Store::open(tmp.path(), StorageOptions::default()) {
        Err(Error::Corruption { detail, .. }) => assert!(detail.contains("not a ferrovec store")),
        other => panic!("expected refusal, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(tmp.path().join("notes.txt")).expect("read"),
        b"mine"
    );
}

#[test]
fn rejected_batches_change_nothing() {
    let store = Store::in_memory(StorageOptions::default());
    let c = store
        .create_collection("c", config(), false)
        .expect("create");
    let mut rng = Rng::new(2);
    c.upsert(&ids(0..5), &rng.vectors(5, 4), None)
        .expect("upsert");
    let before = c
        .scroll(100, None, &PayloadSelector::All, true, None)
        .expect("scroll");
    let mut nan = rng.vectors(3, 4);
    nan[9] = f32::NAN;
    let zero = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0];
    let bad: Vec<(Vec<PointId>, Vec<f32>)> = vec![
        (ids(3..6), nan),                                            // NaN in row 2
        (ids(3..5), zero.to_vec()),                                  // zero vector under cosine
        (ids(3..5), rng.vectors(3, 4)),                              // length mismatch
        (vec![PointId::Num(3), PointId::Num(3)], rng.vectors(2, 4)), // duplicate
        (
            vec![PointId::Num(3), PointId::Str(String::new())],
            rng.vectors(2, 4),
        ),
    ];
    for (i, v) in bad {
        assert!(matches!(
            c.upsert(&i, &v, None),
            Err(Error::InvalidInput(_))
        ));
    }
    let after = c
        .scroll(100, None, &PayloadSelector::All, true, None)
        .expect("scroll");
    assert_eq!(before, after);
}

#[test]
fn the_number_of_collections_is_limited() {
    let tmp = tempfile::tempdir().expect("tmp");
    let options = StorageOptions {
        max_collections: 3,
        ..StorageOptions::default()
    };
    let store = Store::open(&tmp.path().join("s"), options).expect("open");
    for name in ["a", "b", "c"] {
        store
            .create_collection(name, config(), false)
            .expect("create");
    }
    match store.create_collection("d", config(), false) {
        Err(Error::InvalidInput(msg)) => assert!(msg.contains("3 collections"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(store.list_collections().expect("list"), vec!["a", "b", "c"]);
    // An existing one is still handed back, and a drop makes room.
    assert!(store.create_collection("a", config(), true).is_ok());
    store.drop_collection("b").expect("drop");
    store
        .create_collection("d", config(), false)
        .expect("room again");
}
