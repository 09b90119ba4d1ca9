//! Each durability mode keeps exactly its promise at the file-system boundary: with `Fsync` an
//! acknowledged write's log bytes were fsynced before the call returned; with `Off` the log is
//! never fsynced on the write path; with `Interval` a background fsync follows within the
//! interval. Concurrent writers share fsyncs (group commit).

use std::sync::Arc;
use std::time::Duration;

use ferrovec_core::io::FileSystem;
use ferrovec_core::{Collection, StorageOptions};
use ferrovec_core::{CollectionConfig, Distance, Durability};

use crate::fixtures::{ids, Event, RecordingFs, Rng};

fn open(fs: Arc<RecordingFs>, dir: &std::path::Path, durability: Durability) -> Arc<Collection> {
    let config = CollectionConfig::new(4, Distance::Dot).expect("config");
    if !dir.exists() {
        Collection::create_files(fs.as_ref(), dir, &config).expect("create");
    }
    let options = StorageOptions {
        durability,
        ..StorageOptions::default()
    };
    Collection::open(fs as Arc<dyn FileSystem>, dir, "c", options).expect("open")
}

/// Is every log write followed (eventually) by an fsync of the same file?
fn last_write_is_synced(events: &[Event]) -> bool {
    let Some(last_write) = events.iter().rposition(|e| matches!(e, Event::Write(_))) else {
        return true;
    };
    let Event::Write(p) = &events[last_write] else {
        unreachable!()
    };
    events[last_write..].contains(&Event::Sync(p.clone()))
}

#[test]
fn fsync_mode_syncs_before_acknowledging() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fs = Arc::new(RecordingFs::default());
    let col = open(fs.clone(), &tmp.path().join("c"), Durability::Fsync);
    let mut rng = Rng::new(1);
    for i in 0..20u64 {
        col.upsert(&ids(i * 10..i * 10 + 10), &rng.vectors(10, 4), None)
            .expect("upsert");
        assert!(
            last_write_is_synced(&fs.log_events()),
            "upsert {i} returned before its log record was fsynced"
        );
    }
    col.delete(&ids(0..5)).expect("delete");
    assert!(last_write_is_synced(&fs.log_events()));
}

#[test]
fn off_mode_never_fsyncs_the_log_on_writes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fs = Arc::new(RecordingFs::default());
    let col = open(fs.clone(), &tmp.path().join("c"), Durability::Off);
    let mut rng = Rng::new(2);
    for i in 0..20u64 {
        col.upsert(&ids(i * 10..i * 10 + 10), &rng.vectors(10, 4), None)
            .expect("upsert");
    }
    let events = fs.log_events();
    let writes = events
        .iter()
        .filter(|e| matches!(e, Event::Write(_)))
        .count();
    let syncs = events
        .iter()
        .filter(|e| matches!(e, Event::Sync(_)))
        .count();
    assert_eq!(writes, 21, "one header write and one write per upsert");
    assert_eq!(syncs, 1, "only the new file's header is synced");
}

#[test]
fn interval_mode_syncs_in_the_background() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fs = Arc::new(RecordingFs::default());
    let col = open(
        fs.clone(),
        &tmp.path().join("c"),
        Durability::Interval(Duration::from_millis(20)),
    );
    let mut rng = Rng::new(3);
    col.upsert(&ids(0..10), &rng.vectors(10, 4), None)
        .expect("upsert");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !last_write_is_synced(&fs.log_events()) {
        assert!(
            std::time::Instant::now() < deadline,
            "no background fsync within 10 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn concurrent_writers_share_fsyncs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fs = Arc::new(RecordingFs {
        sync_delay: Duration::from_millis(5),
        ..RecordingFs::default()
    });
    let col = open(fs.clone(), &tmp.path().join("c"), Durability::Fsync);
    let threads = 8;
    let per_thread = 25u64;
    std::thread::scope(|s| {
        for t in 0..threads {
            let col = col.clone();
            s.spawn(move || {
                let mut rng = Rng::new(100 + t);
                for i in 0..per_thread {
                    let base = t * 1000 + i;
                    col.upsert(&ids(base..base + 1), &rng.vectors(1, 4), None)
                        .expect("upsert");
                }
            });
        }
    });
    let events = fs.log_events();
    let syncs = events
        .iter()
        .filter(|e| matches!(e, Event::Sync(_)))
        .count();
    let upserts = (threads * per_thread) as usize;
    assert_eq!(col.count().expect("count"), upserts);
    assert!(last_write_is_synced(&events));
    assert!(
        syncs < upserts / 2,
        "{syncs} fsyncs for {upserts} concurrent upserts: no group commit"
    );
}
