//! Simulated power loss. `PowerFs` is the real file system plus a model of what a disk keeps
//! when the power fails: a file's bytes as of its last fsync, and a directory's entries as of
//! the last fsync of the directory (creates, renames and removals not yet synced are undone).
//! At the chosen operation the power fails: that operation and every later one fail. The disk
//! image is then rebuilt from the model, in one of several ways a real disk may leave it:
//!
//! - only what was fsynced;
//! - plus part of what was written but not synced, cut anywhere (also inside a page), file by
//!   file (so writes to different files land out of order);
//! - plus such a part followed by garbage (a page half written).
//!
//! The store is reopened from the image with the real file system and must hold exactly the
//! acknowledged writes, plus the one in flight either whole or not at all; exact search must
//! equal brute force over that reference.
//!
//! The workload covers upserts (replacing points too), deletes, payload updates, log rotation
//! (small log files), checkpoints, sealing, merging with graph builds, payload-index builds, and
//! snapshots: after the crash every acknowledged snapshot is listed, every listed one verifies,
//! and the last acknowledged one restores to exactly the writes acknowledged before it. A
//! restore of the first snapshot over the collection (the staged copy exchanged with it) is
//! one more operation, whole or not at all like any write.
//! `FERROVEC_CRASH_POINTS` sets how many crash points run (default: a stride over all of them
//! plus random ones, about 150; `all` runs every operation in each of the three ways).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferrovec_core::cancel::NEVER;
use ferrovec_core::io::{FileSystem, LockOutcome, Mapped, OsFs, ReadAt, WriteFile};
use ferrovec_core::snapshot::{restore, verify_archive, SnapshotInfo};
use ferrovec_core::{
    CollectionConfig, Distance, Durability, Error, IndexKind, Payload, PayloadOp, PointId, Result,
    SearchParams, Selector, StorageOptions, Store,
};
use parking_lot::Mutex;

use crate::fixtures::{all_points, Points, Rng};

const DIM: usize = 4;

#[derive(Default)]
struct Model {
    armed: bool,
    next_ino: u64,
    /// Files as the running process sees them: path -> inode.
    live: BTreeMap<PathBuf, u64>,
    /// Directory entries that survive a power loss.
    durable_names: BTreeMap<PathBuf, u64>,
    /// Each inode's bytes as of its last fsync.
    durable: HashMap<u64, Vec<u8>>,
    /// Mutating operations so far, and the one at which the power fails.
    ops: u64,
    fail_at: u64,
    /// Fault injection instead: the operation (mutating, or a map) that fails once, and how.
    fault: Option<(u64, Fault)>,
    /// Every operation a fault can hit, counted when injecting faults.
    sites: u64,
    /// Where the fault hit, once it did: the operation and the file.
    hit: Option<(&'static str, PathBuf)>,
    /// Directory renames and exchanges not yet durable (their parent not synced since).
    dir_moves: Vec<DirMove>,
}

/// A directory renamed (`a` to `b`) or exchanged (`a` with `b`); durable, whole, once `b`'s
/// directory `parent` is synced. (A rename is one journal transaction on the file systems
/// ferrovec runs on, ext4, XFS and btrfs: the sync of either directory commits both entries.)
struct DirMove {
    parent: PathBuf,
    a: PathBuf,
    b: PathBuf,
    exchange: bool,
}

/// Move every path under `from` to the same place under `to` (`swap`: and those under `to`
/// to `from`).
fn move_tree<V: Copy>(map: &mut BTreeMap<PathBuf, V>, from: &Path, to: &Path, swap: bool) {
    let under = |map: &BTreeMap<PathBuf, V>, root: &Path| -> Vec<(PathBuf, V)> {
        map.iter()
            .filter(|(p, _)| p.starts_with(root))
            .map(|(p, v)| (p.clone(), *v))
            .collect()
    };
    let a = under(map, from);
    let b = if swap { under(map, to) } else { Vec::new() };
    for (p, _) in a.iter().chain(&b) {
        map.remove(p);
    }
    for (p, v) in a {
        map.insert(to.join(p.strip_prefix(from).expect("under")), v);
    }
    for (p, v) in b {
        map.insert(from.join(p.strip_prefix(to).expect("under")), v);
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    NoSpace,
    Eio,
    /// Part of the bytes written, then ENOSPC.
    Short,
}

fn injected(path: &Path, f: Fault) -> Error {
    let code = match f {
        Fault::Eio => libc::EIO,
        Fault::NoSpace | Fault::Short => libc::ENOSPC,
    };
    Error::Io {
        op: "injected",
        path: path.to_path_buf(),
        source: std::io::Error::from_raw_os_error(code),
    }
}

impl Model {
    fn ino_of(&mut self, path: &Path) -> u64 {
        if let Some(&i) = self.live.get(path) {
            return i;
        }
        self.next_ino += 1;
        self.live.insert(path.to_path_buf(), self.next_ino);
        self.next_ino
    }

    /// Count a mutating operation; `Err` once the power has failed; the fault to inject, if
    /// this is the operation it hits.
    fn step(&mut self, path: &Path, what: &'static str) -> Result<Option<Fault>> {
        if !self.armed {
            return Ok(None);
        }
        self.ops += 1;
        if self.ops >= self.fail_at {
            return Err(Error::Io {
                op: "power",
                path: path.to_path_buf(),
                source: std::io::Error::other("simulated power loss"),
            });
        }
        Ok(self.site(path, what))
    }

    /// Count an operation a fault may hit; the fault, if it hits this one.
    fn site(&mut self, path: &Path, what: &'static str) -> Option<Fault> {
        let (at, f) = self.fault?;
        self.sites += 1;
        if self.sites != at {
            return None;
        }
        self.hit = Some((what, path.to_path_buf()));
        Some(f)
    }
}

#[derive(Debug, Default)]
struct PowerFs {
    model: Arc<Mutex<Model>>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Model({} ops)", self.ops)
    }
}

struct PowerFile {
    inner: Box<dyn WriteFile>,
    model: Arc<Mutex<Model>>,
    ino: u64,
}

impl WriteFile for PowerFile {
    fn write_all(&self, buf: &[u8]) -> Result<()> {
        let fault = self.model.lock().step(self.inner.path(), "write")?;
        match fault {
            None => self.inner.write_all(buf),
            Some(Fault::Short) => {
                self.inner.write_all(&buf[..buf.len() / 2])?;
                Err(injected(self.inner.path(), Fault::Short))
            }
            Some(f) => Err(injected(self.inner.path(), f)),
        }
    }
    fn sync_data(&self) -> Result<()> {
        let mut m = self.model.lock();
        if let Some(f) = m.step(self.inner.path(), "fsync")? {
            // The kernel may have dropped the dirty pages: nothing more becomes durable.
            return Err(injected(self.inner.path(), f));
        }
        self.inner.sync_data()?;
        // Whatever path the inode has now (it may have been renamed since it was opened).
        if let Some(path) = m
            .live
            .iter()
            .find(|(_, &i)| i == self.ino)
            .map(|(p, _)| p.clone())
        {
            let bytes = std::fs::read(&path).unwrap_or_default();
            m.durable.insert(self.ino, bytes);
        }
        Ok(())
    }
    fn path(&self) -> &Path {
        self.inner.path()
    }
}

impl PowerFs {
    /// Start the model: everything under `root` now is durable; the power fails at the
    /// `fail_at`-th mutating operation from here (`u64::MAX`: never).
    fn arm(&self, root: &Path, fail_at: u64) {
        let mut m = self.model.lock();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).expect("list") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.file_name().is_some_and(|n| n != "SHARED") {
                    let ino = m.ino_of(&p);
                    m.durable_names.insert(p.clone(), ino);
                    m.durable.insert(ino, std::fs::read(&p).expect("read"));
                }
            }
        }
        m.armed = true;
        m.fail_at = fail_at;
    }

    fn ops(&self) -> u64 {
        self.model.lock().ops
    }

    /// Inject `fault` at the `at`-th operation from now (counting maps too), once.
    fn inject(&self, root: &Path, at: u64, fault: Fault) {
        self.arm(root, u64::MAX);
        self.model.lock().fault = Some((at, fault));
    }

    fn sites(&self) -> u64 {
        self.model.lock().sites
    }

    fn hit(&self) -> Option<(&'static str, PathBuf)> {
        self.model.lock().hit.clone()
    }

    /// The disk after the power failed, written into `image` (a copy of `root`'s tree):
    /// `how` 0 keeps only what was fsynced, 1 adds a random part of each file's unsynced
    /// tail, 2 adds such a part and then garbage.
    fn image(&self, root: &Path, image: &Path, how: u32, rng: &mut Rng) {
        let m = self.model.lock();
        for (path, ino) in &m.durable_names {
            let rel = path.strip_prefix(root).expect("under root");
            let to = image.join(rel);
            std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
            let mut bytes = m.durable.get(ino).cloned().unwrap_or_default();
            if how > 0 {
                let now = m
                    .live
                    .iter()
                    .find(|(_, &i)| i == *ino)
                    .and_then(|(p, _)| std::fs::read(p).ok());
                if let Some(now) = now.filter(|n| n.starts_with(&bytes) && n.len() > bytes.len()) {
                    let extra = rng.below(now.len() - bytes.len() + 1);
                    bytes.extend_from_slice(&now[bytes.len()..bytes.len() + extra]);
                    if how == 2 && extra > 0 {
                        let garbage = rng.below(4096 - bytes.len() % 4096) + 1;
                        bytes.extend((0..garbage).map(|_| rng.next_u64() as u8));
                    }
                }
            }
            std::fs::write(&to, &bytes).expect("write image file");
        }
        // Directories survive (ferrovec creates them before it relies on them).
        for dir in ["segments", "wal"] {
            std::fs::create_dir_all(image.join("collections/c").join(dir)).expect("mkdir");
        }
    }
}

impl FileSystem for PowerFs {
    fn create_dir_all(&self, p: &Path) -> Result<()> {
        OsFs.create_dir_all(p)
    }
    fn list_dir(&self, p: &Path) -> Result<Vec<String>> {
        OsFs.list_dir(p)
    }
    fn exists(&self, p: &Path) -> Result<bool> {
        OsFs.exists(p)
    }
    fn is_dir(&self, p: &Path) -> Result<bool> {
        OsFs.is_dir(p)
    }
    fn file_len(&self, p: &Path) -> Result<u64> {
        OsFs.file_len(p)
    }
    fn read(&self, p: &Path) -> Result<Vec<u8>> {
        OsFs.read(p)
    }
    fn create(&self, p: &Path) -> Result<Box<dyn WriteFile>> {
        let ino = {
            let mut m = self.model.lock();
            if let Some(f) = m.step(p, "create")? {
                return Err(injected(p, f));
            }
            m.ino_of(p)
        };
        Ok(Box::new(PowerFile {
            inner: OsFs.create(p)?,
            model: self.model.clone(),
            ino,
        }))
    }
    fn open_append(&self, p: &Path) -> Result<Box<dyn WriteFile>> {
        let ino = self.model.lock().ino_of(p);
        Ok(Box::new(PowerFile {
            inner: OsFs.open_append(p)?,
            model: self.model.clone(),
            ino,
        }))
    }
    fn read_from(&self, p: &Path, offset: u64) -> Result<Vec<u8>> {
        OsFs.read_from(p, offset)
    }
    fn map(&self, p: &Path) -> Result<Mapped> {
        if let Some(f) = self.model.lock().site(p, "mmap") {
            return Err(injected(p, f));
        }
        OsFs.map(p)
    }
    fn open_read(&self, p: &Path) -> Result<Box<dyn ReadAt>> {
        OsFs.open_read(p)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let mut m = self.model.lock();
        if let Some(f) = m.step(from, "rename")? {
            return Err(injected(from, f));
        }
        if from.is_dir() {
            OsFs.rename(from, to)?;
            move_tree(&mut m.live, from, to, false);
            m.dir_moves.push(DirMove {
                parent: to.parent().expect("parent").to_path_buf(),
                a: from.to_path_buf(),
                b: to.to_path_buf(),
                exchange: false,
            });
            return Ok(());
        }
        OsFs.rename(from, to)?;
        if let Some(ino) = m.live.remove(from) {
            m.live.insert(to.to_path_buf(), ino);
        }
        Ok(())
    }
    fn hard_link(&self, from: &Path, to: &Path) -> Result<()> {
        let mut m = self.model.lock();
        if let Some(f) = m.step(to, "link")? {
            return Err(injected(to, f));
        }
        OsFs.hard_link(from, to)?;
        // A second name for the same bytes, durable once its directory is synced.
        let ino = m.ino_of(from);
        m.live.insert(to.to_path_buf(), ino);
        Ok(())
    }
    fn exchange(&self, a: &Path, b: &Path) -> Result<()> {
        let mut m = self.model.lock();
        if let Some(f) = m.step(a, "exchange")? {
            return Err(injected(a, f));
        }
        assert!(
            a.is_dir() && b.is_dir(),
            "only exchanges of directories are modelled"
        );
        OsFs.exchange(a, b)?;
        move_tree(&mut m.live, a, b, true);
        m.dir_moves.push(DirMove {
            parent: b.parent().expect("parent").to_path_buf(),
            a: a.to_path_buf(),
            b: b.to_path_buf(),
            exchange: true,
        });
        Ok(())
    }
    fn remove_file(&self, p: &Path) -> Result<()> {
        let mut m = self.model.lock();
        if let Some(f) = m.step(p, "remove")? {
            return Err(injected(p, f));
        }
        OsFs.remove_file(p)?;
        m.live.remove(p);
        Ok(())
    }
    fn remove_dir_all(&self, p: &Path) -> Result<()> {
        let mut m = self.model.lock();
        if let Some(f) = m.step(p, "remove directory")? {
            return Err(injected(p, f));
        }
        OsFs.remove_dir_all(p)?;
        // Gone for the process; the names under it stay durable until their directories are
        // synced, which nothing does for a removed directory: after a crash it may come back
        // (as a real one may), and whoever owns it must clean it up.
        m.live.retain(|q, _| !q.starts_with(p));
        Ok(())
    }
    fn truncate(&self, p: &Path, len: u64) -> Result<()> {
        let mut m = self.model.lock();
        if let Some(f) = m.step(p, "truncate")? {
            return Err(injected(p, f));
        }
        OsFs.truncate(p, len)?; // cuts and fsyncs
        let ino = m.ino_of(p);
        let bytes = std::fs::read(p).unwrap_or_default();
        m.durable.insert(ino, bytes);
        Ok(())
    }
    fn sync_dir(&self, dir: &Path) -> Result<()> {
        let mut m = self.model.lock();
        if let Some(f) = m.step(dir, "fsync directory")? {
            return Err(injected(dir, f));
        }
        // A directory inside one whose move is not yet durable would keep its entries under
        // whichever name the crash leaves it: that takes directories as inodes to model.
        assert!(
            m.dir_moves
                .iter()
                .all(|d| d.parent == dir || !(dir.starts_with(&d.a) || dir.starts_with(&d.b))),
            "syncing {} inside a directory moved but not yet synced is not modelled",
            dir.display()
        );
        OsFs.sync_dir(dir)?;
        let Model {
            live,
            durable_names,
            dir_moves,
            ..
        } = &mut *m;
        // The moves of directories inside `dir` are durable now.
        for d in dir_moves.iter().filter(|d| d.parent == dir) {
            move_tree(durable_names, &d.a, &d.b, d.exchange);
        }
        dir_moves.retain(|d| d.parent != dir);
        durable_names.retain(|p, _| p.parent() != Some(dir));
        for (p, &ino) in live.iter() {
            if p.parent() == Some(dir) {
                durable_names.insert(p.clone(), ino);
            }
        }
        Ok(())
    }
    fn try_lock(&self, p: &Path, holder: &str, exclusive: bool) -> Result<LockOutcome> {
        OsFs.try_lock(p, holder, exclusive)
    }
    fn fs_type(&self, p: &Path) -> Result<i64> {
        OsFs.fs_type(p)
    }
}

/// What the store must hold: id -> (vector, payload).
type Reference = Points;

fn options() -> StorageOptions {
    StorageOptions {
        durability: Durability::Fsync,
        wal_file_bytes: 2048, // rotation every few records
        checkpoint_log_bytes: u64::MAX,
        background_optimizer: false,
        read_only: false,
        max_collections: 10_000,
        ..StorageOptions::default()
    }
}

fn config() -> CollectionConfig {
    let mut c = CollectionConfig::new(DIM as u32, Distance::Euclid).expect("config");
    c.hnsw.full_scan_threshold = 40;
    c.hnsw.m = 8;
    c.hnsw.ef_construct = 32;
    c
}

/// Run the workload until it ends or an operation fails; returns the reference of every
/// acknowledged write and, if a call failed, the reference had it been applied, and its error.
/// `snapshots` gets each acknowledged snapshot and the reference it holds.
fn workload(
    store: &Store,
    seed: u64,
    snapshots: &mut Vec<(SnapshotInfo, Reference)>,
) -> (Reference, Option<(Reference, Error)>) {
    let mut col = store.collection("c").expect("c");
    let mut rng = Rng::new(seed);
    let mut acked = Reference::new();
    for step in 0..60u64 {
        let mut next = acked.clone();
        let result: Result<()> = match step % 10 {
            0..=4 => {
                let n = 1 + rng.below(8);
                let ids: Vec<u64> = (0..n).map(|_| rng.below(120) as u64).collect();
                let mut uniq = ids.clone();
                uniq.sort_unstable();
                uniq.dedup();
                let vectors = rng.vectors(uniq.len(), DIM);
                let payloads: Vec<Option<Payload>> = uniq
                    .iter()
                    .map(|&i| {
                        let v = serde_json::json!({"step": step, "id": i, "tag": format!("t{}", i % 3)});
                        v.as_object().cloned()
                    })
                    .collect();
                for (k, &i) in uniq.iter().enumerate() {
                    next.insert(
                        i,
                        (
                            vectors[k * DIM..(k + 1) * DIM].to_vec(),
                            serde_json::Value::Object(payloads[k].clone().unwrap_or_default()),
                        ),
                    );
                }
                let pids: Vec<PointId> = uniq.iter().map(|&i| PointId::Num(i)).collect();
                col.upsert(&pids, &vectors, Some(&payloads))
            }
            5 | 6 => {
                let ids: Vec<u64> = (0..3).map(|_| rng.below(120) as u64).collect();
                for i in &ids {
                    next.remove(i);
                }
                let pids: Vec<PointId> = ids.iter().map(|&i| PointId::Num(i)).collect();
                col.delete(&pids).map(|_| ())
            }
            7 => {
                let ids: Vec<u64> = acked.keys().copied().take(5).collect();
                for i in &ids {
                    if let Some((_, p)) = next.get_mut(i) {
                        p["seen"] = serde_json::json!(step);
                    }
                }
                let pids: Vec<PointId> = ids.iter().map(|&i| PointId::Num(i)).collect();
                let set = serde_json::json!({"seen": step});
                col.update_payload(
                    Selector::Ids(&pids),
                    &PayloadOp::Set(set.as_object().cloned().unwrap_or_default()),
                )
                .map(|_| ())
            }
            8 => col.flush(),
            _ if step == 19 => col.create_payload_index("tag", IndexKind::Keyword),
            _ if step == 39 || step == 59 => {
                store.create_snapshot(Some("c"), None, &NEVER).map(|info| {
                    snapshots.push((info, acked.clone()));
                })
            }
            _ if step == 49 => {
                // Back to the first snapshot: the staged copy is exchanged with the collection.
                let (info, reference) = snapshots.first().expect("the snapshot of step 39");
                next = reference.clone();
                restore(&info.path, store, Some("c"), true, &NEVER).map(|_| ())
            }
            _ => col.optimize(&NEVER),
        };
        match result {
            Ok(()) if step == 49 => {
                acked = next;
                // Opening the restored collection maps its files: a fault may hit there too.
                col = match store.collection("c") {
                    Ok(c) => c,
                    Err(e) => return (acked.clone(), Some((acked, e))),
                };
            }
            Ok(()) => acked = next,
            Err(e) => return (acked, Some((next, e))),
        }
    }
    (acked, None)
}

fn stored(store: &Store) -> Reference {
    all_points(&store.collection("c").expect("c"))
}

fn check_search(store: &Store, reference: &Reference, rng: &mut Rng) {
    let col = store.collection("c").expect("c");
    for _ in 0..3 {
        let q = rng.vectors(1, DIM);
        let got: Vec<u64> = col
            .search(
                &q,
                &SearchParams {
                    k: 5,
                    exact: true,
                    ..SearchParams::default()
                },
            )
            .expect("search")
            .into_iter()
            .map(|p| match p.id {
                PointId::Num(i) => i,
                other => panic!("{other:?}"),
            })
            .collect();
        let mut brute: Vec<(f32, u64)> = reference
            .iter()
            .map(|(&i, (v, _))| (v.iter().zip(&q).map(|(a, b)| (a - b) * (a - b)).sum(), i))
            .collect();
        brute.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let want: Vec<u64> = brute.iter().take(5).map(|x| x.1).collect();
        // Ties in distance may order differently; the distances must agree.
        let dist = |ids: &[u64]| -> Vec<f32> {
            ids.iter()
                .map(|i| {
                    reference[i]
                        .0
                        .iter()
                        .zip(&q)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum()
                })
                .collect()
        };
        assert_eq!(
            dist(&got),
            dist(&want),
            "exact search disagrees with brute force"
        );
    }
}

/// After a crash: every acknowledged snapshot is listed, every listed one (the one in flight
/// too, if it got that far) verifies, and the last acknowledged one restores to exactly the
/// writes acknowledged before it.
fn check_snapshots(store: &Store, acked: &[(SnapshotInfo, Reference)], image: &Path, what: &str) {
    let listed = store
        .list_snapshots(None)
        .unwrap_or_else(|e| panic!("{what}: list snapshots: {e}"));
    for s in &listed {
        verify_archive(&s.path)
            .unwrap_or_else(|e| panic!("{what}: snapshot {} is listed but broken: {e}", s.name));
    }
    for (info, _) in acked {
        assert!(
            listed.iter().any(|s| s.name == info.name),
            "{what}: acknowledged snapshot {} is gone",
            info.name
        );
    }
    if let Some((info, reference)) = acked.last() {
        let name = &info.name;
        let target = image.with_extension("restored");
        let fresh = Store::open(&target, options()).expect("open a fresh store");
        restore(&info.path, &fresh, None, false, &NEVER)
            .unwrap_or_else(|e| panic!("{what}: restore {name}: {e}"));
        assert_eq!(
            &stored(&fresh),
            reference,
            "{what}: snapshot {name} does not hold the writes acknowledged before it"
        );
        drop(fresh);
        let _ = std::fs::remove_dir_all(&target);
    }
}

/// Build a fresh store with the collection, fully durable.
fn fresh(root: &Path, fs: &Arc<PowerFs>) -> Arc<Store> {
    let store =
        Store::open_with_fs(fs.clone() as Arc<dyn FileSystem>, root, options()).expect("open");
    store
        .create_collection("c", config(), false)
        .expect("create");
    store
}

#[test]
fn power_loss_at_any_operation_keeps_every_acknowledged_write() {
    let tmp = tempfile::tempdir().expect("tmp");
    // A run without a failure counts the operations.
    let total = {
        let root = tmp.path().join("count");
        let fs = Arc::new(PowerFs::default());
        let store = fresh(&root, &fs);
        fs.arm(&root, u64::MAX);
        let mut snapshots = Vec::new();
        let (_, pending) = workload(&store, 1, &mut snapshots);
        assert!(pending.is_none());
        assert_eq!(snapshots.len(), 2, "the workload takes two snapshots");
        fs.ops()
    };
    assert!(total > 300, "the workload makes {total} file operations");
    let mut rng = Rng::new(99);
    let points: Vec<(u64, u32)> = match std::env::var("FERROVEC_CRASH_POINTS").as_deref() {
        Ok("all") => (1..=total)
            .flat_map(|p| (0..3).map(move |h| (p, h)))
            .collect(),
        Ok(n) => {
            let n: u64 = n.parse().expect("FERROVEC_CRASH_POINTS: a number or all");
            (0..n)
                .map(|_| (1 + rng.below(total as usize) as u64, rng.below(3) as u32))
                .collect()
        }
        Err(_) => {
            let mut v: Vec<(u64, u32)> = (1..=total)
                .step_by(9)
                .map(|p| (p, (p % 3) as u32))
                .collect();
            v.extend((0..40).map(|_| (1 + rng.below(total as usize) as u64, rng.below(3) as u32)));
            v
        }
    };
    let mut with_pending = 0;
    for (k, &(fail_at, how)) in points.iter().enumerate() {
        let root = tmp.path().join(format!("run-{k}"));
        let fs = Arc::new(PowerFs::default());
        let store = fresh(&root, &fs);
        fs.arm(&root, fail_at);
        let mut snapshots = Vec::new();
        let (acked, pending) = workload(&store, 1, &mut snapshots);
        let pending = pending.map(|p| p.0);
        std::mem::forget(store); // the process is gone: no close, no checkpoint
        let image = tmp.path().join(format!("image-{k}"));
        fs.image(&root, &image, how, &mut rng);
        let what = format!("power lost at operation {fail_at} of {total} (image kind {how})");
        let reopened =
            Store::open(&image, options()).unwrap_or_else(|e| panic!("{what}: open: {e}"));
        let got = stored(&reopened);
        if got != acked {
            let alt = pending
                .as_ref()
                .unwrap_or_else(|| panic!("{what}: lost or changed acknowledged writes"));
            assert!(
                &got == alt,
                "{what}: the write in flight is half applied, or acknowledged writes are lost"
            );
            with_pending += 1;
        }
        check_search(&reopened, &got, &mut rng);
        check_snapshots(&reopened, &snapshots, &image, &what);
        // Still usable: a write after recovery lands and survives a reopen.
        let col = reopened.collection("c").expect("c");
        col.upsert(&[PointId::Num(10_000)], &[0.5; DIM], None)
            .unwrap_or_else(|e| panic!("{what}: write after recovery: {e}"));
        drop(col);
        drop(reopened);
        let again = Store::open(&image, options()).expect("reopen");
        assert_eq!(stored(&again).len(), got.len() + 1, "{what}");
        drop(again);
        let _ = std::fs::remove_dir_all(&root);
        let _ = std::fs::remove_dir_all(&image);
    }
    eprintln!(
        "power loss: {} crash points over {total} operations; {with_pending} recovered the write in flight",
        points.len()
    );
}

#[test]
fn an_injected_io_error_fails_one_call_cleanly_and_loses_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sites = {
        let root = tmp.path().join("count");
        let fs = Arc::new(PowerFs::default());
        let store = fresh(&root, &fs);
        fs.inject(&root, u64::MAX, Fault::Eio);
        let (_, pending) = workload(&store, 2, &mut Vec::new());
        assert!(pending.is_none());
        fs.sites()
    };
    let mut rng = Rng::new(7);
    let runs: Vec<(u64, Fault)> = match std::env::var("FERROVEC_FAULT_POINTS").as_deref() {
        Ok("all") => (1..=sites)
            .flat_map(|s| [Fault::NoSpace, Fault::Eio, Fault::Short].map(|f| (s, f)))
            .collect(),
        _ => {
            let kinds = [Fault::NoSpace, Fault::Eio, Fault::Short];
            let mut v: Vec<(u64, Fault)> = (1..=sites)
                .step_by(7)
                .map(|s| (s, kinds[(s % 3) as usize]))
                .collect();
            v.extend((0..30).map(|_| (1 + rng.below(sites as usize) as u64, kinds[rng.below(3)])));
            v
        }
    };
    let mut log_failures = 0;
    for (k, &(at, fault)) in runs.iter().enumerate() {
        let root = tmp.path().join(format!("run-{k}"));
        let fs = Arc::new(PowerFs::default());
        let store = fresh(&root, &fs);
        fs.inject(&root, at, fault);
        let (mut acked, failed) = workload(&store, 2, &mut Vec::new());
        let Some((op, file)) = fs.hit() else {
            panic!("fault {at} of {sites} never hit");
        };
        let what = format!(
            "{fault:?} at {op} of {} (operation {at} of {sites})",
            file.display()
        );
        // The call fails with the I/O error, naming the file.
        let (pending, err) = failed.unwrap_or_else(|| panic!("{what}: no call failed"));
        match &err {
            Error::Io { path, .. } => assert_eq!(path, &file, "{what}"),
            Error::LogFailed { reason, .. } => {
                assert!(reason.contains("injected"), "{what}: {err}")
            }
            other => panic!("{what}: the call failed with {other:?}"),
        }
        let pending = Some(pending);
        let col = store
            .collection("c")
            .unwrap_or_else(|e| panic!("{what}: the collection after the fault: {e}"));
        // Reads go on; the state is the acknowledged writes, plus the failed one or not.
        let seen = stored(&store);
        assert!(
            seen == acked || Some(&seen) == pending.as_ref(),
            "{what}: reads after the fault show neither"
        );
        // A failed write or fsync of the log is fatal for that log: never retried as if safe.
        // (A log file that fails to be created kills the log too: what is on disk is unknown.
        // The log directory's fsync kills it when it was starting a file, not when it was
        // removing checkpointed ones.)
        let in_log = file.extension().is_some_and(|x| x == "wal") || file.ends_with("wal");
        let kills_log = in_log && matches!(op, "write" | "fsync" | "create");
        let may_kill = kills_log || in_log && op == "fsync directory";
        let after = col.upsert(&[PointId::Num(10_000)], &[0.25; DIM], None);
        match (&after, kills_log) {
            (Err(Error::LogFailed { .. }), _) if may_kill => log_failures += 1,
            (_, true) => panic!("{what}: a write after a failed log {op} gave {after:?}"),
            (Ok(()), false) => {
                acked.insert(10_000, (vec![0.25; DIM], serde_json::json!({})));
            }
            (Err(e), false) => panic!("{what}: the store refuses writes after the fault: {e}"),
        }
        drop(col);
        drop(store); // closes (its checkpoint may fail: the log may be dead)
        let reopened =
            Store::open(&root, options()).unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
        let got = stored(&reopened);
        let with_pending = pending.map(|mut p| {
            if acked.contains_key(&10_000) {
                p.insert(10_000, (vec![0.25; DIM], serde_json::json!({})));
            }
            p
        });
        assert!(
            got == acked || Some(&got) == with_pending.as_ref(),
            "{what}: after reopening, acknowledged writes are lost or the failed one is half there"
        );
        check_search(&reopened, &got, &mut rng);
        let col = reopened.collection("c").expect("c");
        col.upsert(&[PointId::Num(20_000)], &[0.75; DIM], None)
            .unwrap_or_else(|e| panic!("{what}: write once the fault cleared: {e}"));
        drop(col);
        drop(reopened);
        let _ = std::fs::remove_dir_all(&root);
    }
    eprintln!(
        "faults: {} injected over {sites} operations; {log_failures} killed the log, as they must",
        runs.len()
    );
}

#[test]
fn a_restore_failing_at_any_call_leaves_the_old_or_the_new_collection_usable() {
    let tmp = tempfile::tempdir().expect("tmp");
    // A store with a snapshot of "c", then more writes: the restore goes back to the snapshot.
    let setup = |root: &Path| {
        let fs = Arc::new(PowerFs::default());
        let store = fresh(root, &fs);
        let col = store.collection("c").expect("c");
        let mut rng = Rng::new(5);
        let ids: Vec<PointId> = (0..30).map(PointId::Num).collect();
        col.upsert(&ids[..20], &rng.vectors(20, DIM), None)
            .expect("upsert");
        col.optimize(&NEVER).expect("optimize");
        let info = store
            .create_snapshot(Some("c"), None, &NEVER)
            .expect("snapshot");
        let at_snapshot = stored(&store);
        col.upsert(&ids[20..], &rng.vectors(10, DIM), None)
            .expect("upsert");
        col.delete(&ids[..5]).expect("delete");
        let before = stored(&store);
        (fs, store, info, before, at_snapshot)
    };
    let sites = {
        let root = tmp.path().join("count");
        let (fs, store, info, _, at_snapshot) = setup(&root);
        fs.inject(&root, u64::MAX, Fault::Eio);
        restore(&info.path, &store, Some("c"), true, &NEVER).expect("restore");
        let sites = fs.sites();
        assert_eq!(stored(&store), at_snapshot);
        sites
    };
    assert!(sites > 10, "a restore makes {sites} file operations");
    let kinds = [Fault::NoSpace, Fault::Eio, Fault::Short];
    for at in 1..=sites {
        let fault = kinds[(at % 3) as usize];
        let root = tmp.path().join(format!("run-{at}"));
        let (fs, store, info, before, at_snapshot) = setup(&root);
        fs.inject(&root, at, fault);
        let result = restore(&info.path, &store, Some("c"), true, &NEVER);
        let (op, file) = fs.hit().expect("the fault hit");
        let what = format!("{fault:?} at {op} of {} ({at} of {sites})", file.display());
        match result {
            Err(Error::Io { path, .. }) => assert_eq!(path, file, "{what}"),
            other => panic!("{what}: the restore gave {other:?}"),
        }
        // Usable at once, holding the old collection or the restored one, whole.
        let col = store
            .collection("c")
            .unwrap_or_else(|e| panic!("{what}: the collection after the fault: {e}"));
        let got = stored(&store);
        assert!(
            got == before || got == at_snapshot,
            "{what}: neither collection"
        );
        col.upsert(&[PointId::Num(500)], &[0.5; DIM], None)
            .unwrap_or_else(|e| panic!("{what}: write after the failed restore: {e}"));
        drop(col);
        drop(store);
        let reopened = Store::open(&root, options()).expect("reopen");
        let after = stored(&reopened);
        assert_eq!(after.len(), got.len() + 1, "{what}: after a reopen");
        drop(reopened);
        let _ = std::fs::remove_dir_all(&root);
    }
    eprintln!("restore faults: {sites} call sites, each failed once; the collection stayed usable");
}
