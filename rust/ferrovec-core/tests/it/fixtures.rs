//! Shared helpers: a file system that records what reaches the disk, and data generators.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferrovec_core::io::{FileSystem, LockOutcome, Mapped, OsFs, ReadAt, WriteFile};
use ferrovec_core::{Collection, PointId, Result, ScoredPoint, SearchParams};
use parking_lot::Mutex;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Write(PathBuf),
    Sync(PathBuf),
}

/// The real file system, recording every write and fsync; fsync can be made slow so that
/// concurrent writers pile up behind it (group commit).
#[derive(Debug, Default)]
pub struct RecordingFs {
    pub events: Arc<Mutex<Vec<Event>>>,
    pub sync_delay: Duration,
    /// The file-system type to report instead of the real one (`statfs` magic number).
    pub fs_type: Option<i64>,
}

struct RecordingFile {
    inner: Box<dyn WriteFile>,
    events: Arc<Mutex<Vec<Event>>>,
    sync_delay: Duration,
}

impl WriteFile for RecordingFile {
    fn write_all(&self, buf: &[u8]) -> Result<()> {
        self.inner.write_all(buf)?;
        self.events
            .lock()
            .push(Event::Write(self.inner.path().to_path_buf()));
        Ok(())
    }
    fn sync_data(&self) -> Result<()> {
        std::thread::sleep(self.sync_delay);
        self.inner.sync_data()?;
        self.events
            .lock()
            .push(Event::Sync(self.inner.path().to_path_buf()));
        Ok(())
    }
    fn path(&self) -> &Path {
        self.inner.path()
    }
}

impl RecordingFs {
    pub fn log_events(&self) -> Vec<Event> {
        self.events
            .lock()
            .iter()
            .filter(|e| match e {
                Event::Write(p) | Event::Sync(p) => p.extension().is_some_and(|x| x == "wal"),
            })
            .cloned()
            .collect()
    }
}

impl FileSystem for RecordingFs {
    fn create_dir_all(&self, path: &Path) -> Result<()> {
        OsFs.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> Result<Vec<String>> {
        OsFs.list_dir(path)
    }
    fn exists(&self, path: &Path) -> Result<bool> {
        OsFs.exists(path)
    }
    fn is_dir(&self, path: &Path) -> Result<bool> {
        OsFs.is_dir(path)
    }
    fn file_len(&self, path: &Path) -> Result<u64> {
        OsFs.file_len(path)
    }
    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        OsFs.read(path)
    }
    fn create(&self, path: &Path) -> Result<Box<dyn WriteFile>> {
        Ok(Box::new(RecordingFile {
            inner: OsFs.create(path)?,
            events: self.events.clone(),
            sync_delay: self.sync_delay,
        }))
    }
    fn open_append(&self, path: &Path) -> Result<Box<dyn WriteFile>> {
        Ok(Box::new(RecordingFile {
            inner: OsFs.open_append(path)?,
            events: self.events.clone(),
            sync_delay: self.sync_delay,
        }))
    }
    fn read_from(&self, path: &Path, offset: u64) -> Result<Vec<u8>> {
        OsFs.read_from(path, offset)
    }
    fn map(&self, path: &Path) -> Result<Mapped> {
        OsFs.map(path)
    }
    fn open_read(&self, path: &Path) -> Result<Box<dyn ReadAt>> {
        OsFs.open_read(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        OsFs.rename(from, to)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> Result<()> {
        OsFs.hard_link(from, to)
    }
    fn exchange(&self, a: &Path, b: &Path) -> Result<()> {
        OsFs.exchange(a, b)
    }
    fn remove_file(&self, path: &Path) -> Result<()> {
        OsFs.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> Result<()> {
        OsFs.remove_dir_all(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> Result<()> {
        OsFs.truncate(path, len)
    }
    fn sync_dir(&self, path: &Path) -> Result<()> {
        OsFs.sync_dir(path)
    }
    fn try_lock(&self, path: &Path, holder: &str, exclusive: bool) -> Result<LockOutcome> {
        OsFs.try_lock(path, holder, exclusive)
    }
    fn fs_type(&self, path: &Path) -> Result<i64> {
        self.fs_type.map_or_else(|| OsFs.fs_type(path), Ok)
    }
}

/// A deterministic pseudo-random generator (xorshift), so tests need no extra crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    pub fn vectors(&mut self, n: usize, dim: usize) -> Vec<f32> {
        (0..n * dim).map(|_| self.f32()).collect()
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

pub fn ids(range: std::ops::Range<u64>) -> Vec<PointId> {
    range.map(PointId::Num).collect()
}

/// The `k` best points for `q` with default search parameters.
pub fn top_k(col: &Collection, q: &[f32], k: usize) -> Vec<ScoredPoint> {
    col.search(
        q,
        &SearchParams {
            k,
            ..SearchParams::default()
        },
    )
    .expect("search")
}

/// Every point of a collection of numeric ids: id -> (vector, payload).
pub type Points = std::collections::BTreeMap<u64, (Vec<f32>, serde_json::Value)>;

/// All points of `col`, read with one scroll.
pub fn all_points(col: &Collection) -> Points {
    let (recs, next) = col
        .scroll(
            10_000_000,
            None,
            &ferrovec_core::PayloadSelector::All,
            true,
            None,
        )
        .expect("scroll");
    assert!(next.is_none());
    recs.into_iter()
        .map(|r| {
            let PointId::Num(id) = r.id else {
                panic!("unexpected id {:?}", r.id)
            };
            let payload = serde_json::Value::Object(r.payload.unwrap_or_default());
            (id, (r.vector.unwrap_or_default(), payload))
        })
        .collect()
}

/// A number from the environment (the long tiers' knobs), or `default`.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
