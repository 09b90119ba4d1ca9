//! Reopening after a crash: the log is replayed after the last checkpoint; a torn tail is cut;
//! damage before the tail, damaged segment files and foreign files are `Corruption`, never a
//! panic or a silent misread.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferrovec_core::io::{FileSystem, OsFs};
use ferrovec_core::{Collection, StorageOptions};
use ferrovec_core::{CollectionConfig, Distance, Durability, Error, PayloadSelector, PointId};

use crate::fixtures::{ids, top_k, Rng};

const DIM: usize = 8;

fn options(wal_file_bytes: u64) -> StorageOptions {
    StorageOptions {
        durability: Durability::Off,
        wal_file_bytes,
        checkpoint_log_bytes: u64::MAX,
        background_optimizer: false,
        read_only: false,
        max_collections: 10_000,
        ..StorageOptions::default()
    }
}

fn create(dir: &Path) {
    let config = CollectionConfig::new(DIM as u32, Distance::Euclid).expect("config");
    Collection::create_files(&OsFs, dir, &config).expect("create");
}

fn open_with(dir: &Path, opts: StorageOptions) -> ferrovec_core::Result<Arc<Collection>> {
    Collection::open(Arc::new(OsFs) as Arc<dyn FileSystem>, dir, "c", opts)
}

fn open(dir: &Path) -> ferrovec_core::Result<Arc<Collection>> {
    open_with(dir, options(64 << 20))
}

/// Upsert `batches` batches of 10 points each (ids batch*10 ..); dropping the handle without
/// `close` leaves everything in the log, as a crash would.
fn write_batches(dir: &Path, batches: u64) {
    let col = open(dir).expect("open");
    let mut rng = Rng::new(9);
    for b in 0..batches {
        let payloads: Vec<_> = (0..10)
            .map(|i| {
                let mut p = ferrovec_core::Payload::new();
                p.insert("batch".into(), b.into());
                p.insert("i".into(), i.into());
                Some(p)
            })
            .collect();
        col.upsert(
            &ids(b * 10..b * 10 + 10),
            &rng.vectors(10, DIM),
            Some(&payloads),
        )
        .expect("upsert");
    }
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .expect("wal dir")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

/// Byte offsets where each record of a single-file log starts, and the file's length.
/// Records in the log files of the collection in `dir` (a checkpoint leaves at most one file,
/// holding only a header, for the next writer to append to).
fn log_records(dir: &Path) -> usize {
    log_files(dir)
        .iter()
        .map(|f| record_offsets(f).0.len())
        .sum()
}

fn record_offsets(file: &Path) -> (Vec<usize>, usize) {
    let bytes = std::fs::read(file).expect("read");
    let mut offsets = Vec::new();
    let mut pos = 64;
    while pos < bytes.len() {
        offsets.push(pos);
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        pos += 16 + len;
    }
    (offsets, bytes.len())
}

/// Every batch present is whole, and the batches present are exactly 0..n.
fn whole_batches(col: &Collection) -> u64 {
    let count = col.count().expect("count") as u64;
    assert_eq!(count % 10, 0, "a batch was half applied: {count} points");
    let batches = count / 10;
    let got = col
        .get(&ids(0..batches * 10), &PayloadSelector::All, false)
        .expect("get");
    assert_eq!(
        got.len() as u64,
        count,
        "points missing from a prefix of batches"
    );
    batches
}

#[test]
fn replay_restores_unflushed_writes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("c");
    create(&dir);
    write_batches(&dir, 5);
    let col = open(&dir).expect("reopen");
    assert_eq!(whole_batches(&col), 5);
    let r = col
        .get(&[PointId::Num(42)], &PayloadSelector::All, true)
        .expect("get");
    assert_eq!(r[0].payload.as_ref().expect("payload")["batch"], 4);
    assert_eq!(r[0].vector.as_ref().expect("vector").len(), DIM);
}

#[test]
fn truncation_anywhere_keeps_the_intact_prefix() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    create(&src);
    write_batches(&src, 6);
    let file = log_files(&src).pop().expect("one log file");
    let (offsets, len) = record_offsets(&file);
    assert_eq!(offsets.len(), 6);
    let original = std::fs::read(&file).expect("read");
    let mut rng = Rng::new(5);
    let mut cuts: Vec<usize> = (0..40).map(|_| 64 + rng.below(len - 64)).collect();
    cuts.extend(offsets.iter().copied());
    cuts.push(len);
    for cut in cuts {
        let dir = tmp.path().join(format!("cut-{cut}"));
        copy_dir(&src, &dir);
        let f = dir.join("wal").join(file.file_name().expect("name"));
        std::fs::write(&f, &original[..cut]).expect("truncate");
        let col = open(&dir).expect("reopen after truncation");
        let ends = offsets[1..].iter().copied().chain([len]);
        let intact = ends.filter(|&e| e <= cut).count() as u64;
        assert_eq!(whole_batches(&col), intact, "cut at {cut}");
        drop(col);
        // The repaired log accepts new writes and replays them after them.
        let col = open(&dir).expect("reopen");
        col.upsert(&[PointId::Num(9999)], &[0.5; DIM], None)
            .expect("write after repair");
        drop(col);
        assert_eq!(
            open(&dir).expect("reopen").count().expect("count") as u64,
            intact * 10 + 1
        );
    }
}

#[test]
fn damaged_last_record_is_cut_but_damage_before_it_is_an_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    create(&src);
    write_batches(&src, 4);
    let file = log_files(&src).pop().expect("log");
    let name = file.file_name().expect("name").to_owned();
    let (offsets, len) = record_offsets(&file);
    let original = std::fs::read(&file).expect("read");

    // Any byte of the last record flipped: that record is dropped, the rest kept.
    let last = offsets[3];
    let mut rng = Rng::new(11);
    for k in 0..10 {
        let at = last + rng.below(len - last);
        let dir = tmp.path().join(format!("tail-{k}"));
        copy_dir(&src, &dir);
        let mut bytes = original.clone();
        bytes[at] ^= 0x40;
        std::fs::write(dir.join("wal").join(&name), &bytes).expect("write");
        let col = open(&dir).expect("reopen with damaged tail");
        assert_eq!(whole_batches(&col), 3, "flip at {at}");
    }

    // A byte of an earlier record flipped: intact records follow, so refuse to guess.
    for (k, &start) in offsets[..3].iter().enumerate() {
        let at = start + 20 + k;
        let dir = tmp.path().join(format!("mid-{k}"));
        copy_dir(&src, &dir);
        let mut bytes = original.clone();
        bytes[at] ^= 0x01;
        std::fs::write(dir.join("wal").join(&name), &bytes).expect("write");
        match open(&dir) {
            Err(Error::Corruption { detail, .. }) => {
                assert!(detail.contains("intact records follow"), "{detail}")
            }
            other => panic!("expected Corruption, got {other:?}"),
        }
    }
}

#[test]
fn checkpoint_then_crash_replays_only_newer_records() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("c");
    create(&dir);
    let mut rng = Rng::new(3);
    let col = open(&dir).expect("open");
    col.upsert(&ids(0..100), &rng.vectors(100, DIM), None)
        .expect("upsert");
    col.delete(&ids(0..10)).expect("delete");
    col.flush().expect("checkpoint");
    assert_eq!(log_records(&dir), 0, "checkpoint empties the log");
    col.upsert(&ids(100..150), &rng.vectors(50, DIM), None)
        .expect("upsert");
    col.delete(&ids(10..20)).expect("delete sealed points");
    col.upsert(&ids(20..25), &rng.vectors(5, DIM), None)
        .expect("replace sealed points");
    let before = top_k(&col, &[0.1; DIM], 20);
    drop(col);

    let col = open(&dir).expect("reopen");
    assert_eq!(col.count().expect("count"), 130);
    let after = top_k(&col, &[0.1; DIM], 20);
    assert_eq!(before, after);
    assert!(col
        .get(&ids(0..20), &PayloadSelector::None, false)
        .expect("get")
        .is_empty());
    // A second checkpoint writes the deletions of the sealed segment as a new bitmap.
    col.flush().expect("checkpoint");
    drop(col);
    let col = open(&dir).expect("reopen");
    assert_eq!(col.count().expect("count"), 130);
    col.verify().expect("checksums");
}

#[test]
fn a_log_file_with_only_a_header_is_reused_then_checkpointed() {
    // A crash between starting a log file and writing its first record.
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("c");
    create(&dir);
    write_batches(&dir, 2);
    open(&dir).expect("open").flush().expect("checkpoint");
    write_batches(&dir, 1); // starts a new log file
    let file = log_files(&dir).pop().expect("log");
    let bytes = std::fs::read(&file).expect("read");
    std::fs::write(&file, &bytes[..64]).expect("cut to the header");
    let col = open(&dir).expect("reopen");
    let mut rng = Rng::new(1);
    col.upsert(&ids(500..510), &rng.vectors(10, DIM), None)
        .expect("upsert");
    col.flush().expect("checkpoint after reusing the file");
    assert_eq!(log_records(&dir), 0);
    assert_eq!(col.count().expect("count"), 30);
}

#[test]
fn log_rotates_and_replays_across_files() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("c");
    create(&dir);
    let opts = options(4096);
    let col = open_with(&dir, opts).expect("open");
    let mut rng = Rng::new(4);
    for b in 0..40u64 {
        col.upsert(&ids(b * 10..b * 10 + 10), &rng.vectors(10, DIM), None)
            .expect("upsert");
    }
    drop(col);
    assert!(log_files(&dir).len() > 3, "the log rotated");
    let col = open_with(&dir, opts).expect("reopen");
    assert_eq!(col.count().expect("count"), 400);
    col.flush().expect("checkpoint");
    assert_eq!(log_records(&dir), 0);
}

#[test]
fn leftovers_of_an_interrupted_checkpoint_are_removed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("c");
    create(&dir);
    write_batches(&dir, 2);
    std::fs::write(
        dir.join("segments").join("0000000000000099.vec"),
        b"partial",
    )
    .expect("junk");
    std::fs::write(dir.join("MANIFEST.tmp"), b"partial").expect("junk");
    let col = open(&dir).expect("reopen");
    assert_eq!(col.count().expect("count"), 20);
    assert!(!dir.join("segments").join("0000000000000099.vec").exists());
    assert!(!dir.join("MANIFEST.tmp").exists());
}

#[test]
fn damaged_or_foreign_files_are_corruption_errors() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    create(&src);
    write_batches(&src, 3);
    open(&src).expect("open").flush().expect("checkpoint");
    let seg = src.join("segments");
    let vec_file = std::fs::read_dir(&seg)
        .expect("segments")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "vec"))
        .expect("a vector file");
    let vec_name = vec_file.file_name().expect("name").to_owned();

    type Damage = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Damage)> = vec![
        (
            "truncated vectors",
            Box::new(move |d: &Path| {
                let f = d.join("segments").join(&vec_name);
                let b = std::fs::read(&f).expect("read");
                std::fs::write(&f, &b[..b.len() - 7]).expect("write");
            }),
        ),
        (
            "foreign manifest",
            Box::new(|d: &Path| {
                std::fs::write(d.join("MANIFEST"), b"{\"not\": \"ours\"}").expect("write");
            }),
        ),
        (
            "empty id map",
            Box::new(|d: &Path| {
                for e in std::fs::read_dir(d.join("segments")).expect("dir") {
                    let p = e.expect("entry").path();
                    if p.extension().is_some_and(|x| x == "ids") {
                        std::fs::write(&p, b"").expect("write");
                    }
                }
            }),
        ),
    ];
    for (what, damage) in cases {
        let dir = tmp.path().join(what.replace(' ', "-"));
        copy_dir(&src, &dir);
        damage(&dir);
        match open(&dir) {
            Err(Error::Corruption { .. }) => {}
            other => panic!("{what}: expected Corruption, got {other:?}"),
        }
    }

    // A file of another format version is not damage: it says which version it is.
    let dir = tmp.path().join("newer-manifest-version");
    copy_dir(&src, &dir);
    let f = dir.join("MANIFEST");
    let mut b = std::fs::read(&f).expect("read");
    b[8] = 99;
    let crc = crc32c(&b[0..60]);
    b[60..64].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&f, &b).expect("write");
    match open(&dir) {
        Err(e @ Error::UnsupportedVersion { found: 99, .. }) => {
            assert!(e.to_string().contains("upgrade ferrovec"), "{e}");
        }
        other => panic!("newer manifest version: expected UnsupportedVersion, got {other:?}"),
    }

    // A flipped byte inside a segment body is found by verify (not on the open path).
    let dir = tmp.path().join("bitrot");
    copy_dir(&src, &dir);
    let f = dir
        .join("segments")
        .join(vec_file.file_name().expect("name"));
    let mut b = std::fs::read(&f).expect("read");
    b[100] ^= 0x08;
    std::fs::write(&f, &b).expect("write");
    let col = open(&dir).expect("open does not read bodies");
    assert!(matches!(col.verify(), Err(Error::Corruption { .. })));
}

fn crc32c(bytes: &[u8]) -> u32 {
    // CRC-32C (Castagnoli), bitwise: independent of the implementation under test.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).expect("copy");
        }
    }
}
