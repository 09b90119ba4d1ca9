//! Damaged files never crash the process: a store's files (manifest, log, segment vectors, ids,
//! payloads, graph, codes, deletion bitmap, payload index) are mutated at random (bits flipped,
//! bytes overwritten with extreme values, cut short, extended) and the store is opened and
//! used. Every outcome must be a value or an `Error`: no panic, no abort, no hang. A mutation
//! harness, not coverage-guided fuzzing; FERROVEC_MUTATIONS sets the count (default 300).

use std::path::{Path, PathBuf};

use ferrovec_core::{
    CollectionConfig, Distance, Filter, IndexKind, PayloadSelector, PointId, SearchParams,
    StorageOptions, Store,
};

use crate::fixtures::{env_number, ids, Rng};

fn options() -> StorageOptions {
    StorageOptions {
        background_optimizer: false,
        ..StorageOptions::default()
    }
}

/// A store with every kind of file: an indexed segment with deletions and a payload index,
/// and log records after the checkpoint.
fn build(root: &Path) {
    let store = Store::open(root, options()).expect("open");
    let mut config = CollectionConfig::new(8, Distance::Cosine).expect("config");
    config.hnsw.full_scan_threshold = 50;
    let col = store.create_collection("c", config, false).expect("create");
    let mut rng = Rng::new(3);
    let payloads: Vec<_> = (0..200)
        .map(|i| {
            serde_json::json!({"k": format!("v{}", i % 5), "n": i})
                .as_object()
                .cloned()
        })
        .collect();
    col.upsert(&ids(0..200), &rng.vectors(200, 8), Some(&payloads))
        .expect("upsert");
    col.create_payload_index("k", IndexKind::Keyword)
        .expect("index");
    col.optimize().expect("optimize");
    col.delete(&ids(0..10)).expect("delete");
    col.flush().expect("flush");
    col.upsert(&ids(300..320), &rng.vectors(20, 8), None)
        .expect("upsert after checkpoint");
    std::mem::forget(col);
    std::mem::forget(store); // leave the log records unflushed
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("list") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if !matches!(
                p.file_name().and_then(|n| n.to_str()),
                Some("LOCK" | "SHARED")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Copy a store's files (not its lock and coordination files, which belong to processes).
fn copy_store(from: &Path, to: &Path) {
    for f in files(from) {
        let dest = to.join(f.strip_prefix(from).expect("under"));
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&f, &dest).expect("copy");
    }
    for dir in ["segments", "wal"] {
        std::fs::create_dir_all(to.join("collections/c").join(dir)).expect("mkdir");
    }
}

fn mutate(bytes: &mut Vec<u8>, rng: &mut Rng) {
    match rng.below(5) {
        0 => {
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len().max(1));
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
            }
        }
        1 => {
            // An extreme value where a length or count may be (u32/u64 fields).
            let at = rng.below(bytes.len().max(1)) & !3;
            let v: [u8; 8] = match rng.below(3) {
                0 => [0xff; 8],
                1 => [0; 8],
                _ => (u64::MAX / 3).to_le_bytes(),
            };
            for (k, b) in v.iter().enumerate() {
                if let Some(x) = bytes.get_mut(at + k) {
                    *x = *b;
                }
            }
        }
        2 => {
            let keep = rng.below(bytes.len() + 1);
            bytes.truncate(keep);
        }
        3 => bytes.extend((0..1 + rng.below(300)).map(|_| rng.next_u64() as u8)),
        _ => {
            // Rewrite a header-sized prefix at random.
            for b in bytes.iter_mut().take(64) {
                if rng.below(4) == 0 {
                    *b = rng.next_u64() as u8;
                }
            }
        }
    }
}

/// Open and use the store; any `Err` is fine, a panic is not (the test harness reports it).
fn exercise(root: &Path) {
    let Ok(store) = Store::open(root, options()) else {
        return;
    };
    let Ok(col) = store.collection("c") else {
        return;
    };
    let q = [0.3f32; 8];
    let _ = col.count();
    let _ = col.search(&q, &SearchParams::default());
    let _ = col.search(
        &q,
        &SearchParams {
            exact: true,
            ..SearchParams::default()
        },
    );
    if let Ok(f) =
        Filter::parse(&serde_json::json!({"must": [{"key": "k", "match": {"value": "v1"}}]}))
    {
        let _ = col.count_filtered(&f);
    }
    let _ = col.get(
        &[PointId::Num(42), PointId::Num(305)],
        &PayloadSelector::All,
        true,
    );
    let _ = col.scroll(1000, None, &PayloadSelector::All, true, None);
    let _ = col.verify();
    let _ = col.upsert(&[PointId::Num(999)], &[0.5; 8], None);
}

#[test]
fn mutated_files_give_errors_never_panics() {
    let count: usize = env_number("FERROVEC_MUTATIONS", 300);
    let tmp = tempfile::tempdir().expect("tmp");
    let pristine = tmp.path().join("pristine");
    build(&pristine);
    let targets = files(&pristine);
    assert!(targets.len() >= 9, "{targets:?}");
    let mut rng = Rng::new(2026);
    for k in 0..count {
        let root = tmp.path().join(format!("m{k}"));
        copy_store(&pristine, &root);
        let victim = &targets[rng.below(targets.len())];
        let path = root.join(victim.strip_prefix(&pristine).expect("under"));
        let mut bytes = std::fs::read(&path).expect("read");
        mutate(&mut bytes, &mut rng);
        std::fs::write(&path, &bytes).expect("write");
        exercise(&root);
        let _ = std::fs::remove_dir_all(&root);
    }
    eprintln!("mutations: {count} over {} files, no panic", targets.len());
}
