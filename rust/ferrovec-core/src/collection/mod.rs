//! A collection: points in sealed segments plus recent writes held in memory and in the log.
//!
//! Write path: validate the whole batch (nothing changes if any row is bad) → append one log
//! record → apply it in memory → wait for the log's durability promise. Writers are serialised
//! by `writer`; readers only take `state` for reading, so searches run alongside each other.
//! A checkpoint turns the in-memory rows into a new sealed segment and starts the log afresh.

mod manifest;
pub mod search;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::distance;
use crate::error::{Error, Result};
use crate::io::FileSystem;
use crate::segment::{self, Bitmap, Segment, SegmentData};
use crate::types::{
    CollectionConfig, CollectionInfo, Distance, Durability, Payload, PayloadSelector, PointId,
    Record, ScoredPoint, SearchParams,
};
use crate::wal::record::{encode_frame, Op, OpRef};
use crate::wal::Wal;
pub use manifest::Manifest;
use manifest::SegmentMeta;
use search::{Block, Cand};

const SEGMENTS_DIR: &str = "segments";
const WAL_DIR: &str = "wal";

/// Source number of the in-memory rows in a [`Loc`].
const MEM: u32 = u32::MAX;

/// Tunables of the storage layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StorageOptions {
    pub durability: Durability,
    /// A log file is sealed and a new one started past this size.
    pub wal_file_bytes: u64,
    /// A checkpoint runs after a write once the log holds more than this.
    pub checkpoint_log_bytes: u64,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            durability: Durability::Fsync,
            wal_file_bytes: 64 << 20,
            checkpoint_log_bytes: 128 << 20,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Loc {
    source: u32,
    row: u32,
}

/// Rows written since the last checkpoint. Kept dense: a delete moves the last row into the hole.
#[derive(Default)]
struct MemRows {
    ids: Vec<PointId>,
    vectors: Vec<f32>,
    payloads: Vec<Option<Box<[u8]>>>,
}

struct Sealed {
    seg: Arc<Segment>,
    deleted: Bitmap,
    /// Deletes happened since the bitmap was last written.
    dirty: bool,
}

#[derive(Default)]
struct State {
    segments: Vec<Sealed>,
    mem: MemRows,
    /// Every live point, in scroll order.
    index: BTreeMap<PointId, Loc>,
}

const OPEN: u8 = 0;
const DROPPED: u8 = 1;
const CLOSED: u8 = 2;

pub struct Collection {
    name: String,
    config: CollectionConfig,
    /// `None` for an in-memory collection.
    dir: Option<PathBuf>,
    fs: Arc<dyn FileSystem>,
    wal: Option<Arc<Wal>>,
    options: StorageOptions,
    /// Serialises writes and checkpoints; holds the manifest as last written.
    writer: Mutex<Manifest>,
    state: RwLock<State>,
    status: AtomicU8,
}

impl std::fmt::Debug for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Check a collection name: 1 to 128 of letters, digits, `_` and `-`.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid collection name {name:?}: use 1 to 128 letters, digits, '_' and '-'"
        )))
    }
}

impl Collection {
    pub fn in_memory(name: &str, config: CollectionConfig, options: StorageOptions) -> Arc<Self> {
        Arc::new(Collection {
            name: name.to_string(),
            config: config.clone(),
            dir: None,
            fs: Arc::new(crate::io::OsFs),
            wal: None,
            options,
            writer: Mutex::new(Manifest::new(config)),
            state: RwLock::new(State::default()),
            status: AtomicU8::new(OPEN),
        })
    }

    /// Write the files of a new, empty collection into `dir` (which must not exist yet).
    pub fn create_files(fs: &dyn FileSystem, dir: &Path, config: &CollectionConfig) -> Result<()> {
        fs.create_dir_all(&dir.join(SEGMENTS_DIR))?;
        fs.create_dir_all(&dir.join(WAL_DIR))?;
        Manifest::new(config.clone()).write(fs, dir)
    }

    /// Open a collection directory: map its segments, then replay the log.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        name: &str,
        options: StorageOptions,
    ) -> Result<Arc<Self>> {
        let manifest = Manifest::read(fs.as_ref(), dir)?;
        let seg_dir = dir.join(SEGMENTS_DIR);
        fs.create_dir_all(&seg_dir)?;
        remove_unreferenced(fs.as_ref(), dir, &seg_dir, &manifest)?;

        let dim = manifest.config.dim;
        let mut state = State::default();
        let mut entries = Vec::new();
        for meta in &manifest.segments {
            let rows = usize::try_from(meta.rows)
                .map_err(|_| Error::corrupt(dir.join(manifest::MANIFEST), "row count too large"))?;
            let seg = Segment::open(fs.as_ref(), &seg_dir, meta.id, rows, dim)?;
            let deleted = match &meta.deleted {
                Some(name) => segment::read_deleted(fs.as_ref(), &seg_dir, name, rows)?,
                None => Bitmap::new(rows),
            };
            let source = state.segments.len() as u32;
            for (row, id) in seg.ids.iter().enumerate() {
                if !deleted.get(row) {
                    entries.push((
                        id.clone(),
                        Loc {
                            source,
                            row: row as u32,
                        },
                    ));
                }
            }
            state.segments.push(Sealed {
                seg,
                deleted,
                dirty: false,
            });
        }
        state.index = entries.into_iter().collect();

        let config = manifest.config.clone();
        let dim = config.dim as usize;
        let (wal, stats) = Wal::open(
            fs.clone(),
            &dir.join(WAL_DIR),
            options.durability,
            options.wal_file_bytes,
            manifest.checkpoint_seq,
            |seq, op| state.apply_logged(seq, op, dim, &dir.join(WAL_DIR)),
        )?;
        if stats.applied > 0 {
            log::info!(
                "collection {name}: replayed {} log records ({} bytes of torn tail cut)",
                stats.applied,
                stats.truncated_bytes
            );
        }
        Ok(Arc::new(Collection {
            name: name.to_string(),
            config,
            dir: Some(dir.to_path_buf()),
            fs,
            wal: Some(wal),
            options,
            writer: Mutex::new(manifest),
            state: RwLock::new(state),
            status: AtomicU8::new(OPEN),
        }))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &CollectionConfig {
        &self.config
    }

    fn check_open(&self) -> Result<()> {
        match self.status.load(Ordering::Acquire) {
            OPEN => Ok(()),
            DROPPED => Err(Error::CollectionNotFound(self.name.clone())),
            _ => Err(Error::Closed(format!(
                "collection {:?} belongs to a store that was closed",
                self.name
            ))),
        }
    }

    // ----- writes -------------------------------------------------------------------------

    /// Insert or replace points. `vectors` holds `ids.len()` rows of `dim` values, row-major.
    /// The batch is applied whole or, if any row is invalid, not at all.
    pub fn upsert(
        &self,
        ids: &[PointId],
        vectors: &[f32],
        payloads: Option<&[Option<Payload>]>,
    ) -> Result<()> {
        self.check_open()?;
        let n = ids.len();
        let dim = self.config.dim as usize;
        if vectors.len() != n * dim {
            return Err(Error::invalid(format!(
                "got {n} ids but {} vector values; expected {n} vectors of dimension {dim} ({} values)",
                vectors.len(),
                n * dim
            )));
        }
        if let Some(p) = payloads {
            if p.len() != n {
                return Err(Error::invalid(format!(
                    "got {n} ids but {} payloads",
                    p.len()
                )));
            }
        }
        validate_ids(ids, true)?;
        let vectors = self.prepare_vectors(vectors, "vectors")?;
        let payload_bytes: Vec<Option<Box<[u8]>>> = match payloads {
            None => vec![None; n],
            Some(p) => p
                .iter()
                .map(|p| {
                    p.as_ref()
                        .map(|p| serde_json::to_vec(p).map(Vec::into_boxed_slice))
                        .transpose()
                })
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| Error::invalid(format!("payload is not serialisable as JSON: {e}")))?,
        };
        if n == 0 {
            return Ok(());
        }

        let guard = self.writer.lock();
        self.check_open()?;
        let seq = match &self.wal {
            Some(wal) => {
                let refs: Vec<Option<&serde_bytes::Bytes>> = payload_bytes
                    .iter()
                    .map(|p| p.as_deref().map(serde_bytes::Bytes::new))
                    .collect();
                let frame = encode_frame(&OpRef::Upsert {
                    ids,
                    vectors: bytemuck::cast_slice(&vectors),
                    payloads: &refs,
                })
                .map_err(|e| Error::invalid(format!("batch does not encode: {e}")))?;
                if frame.len() - crate::wal::record::FRAME_HEADER_LEN
                    > crate::wal::record::MAX_BODY_LEN
                {
                    return Err(Error::invalid(
                        "batch is larger than 4 GiB once encoded; upsert it in smaller batches",
                    ));
                }
                Some(wal.append(frame)?)
            }
            None => None,
        };
        self.state
            .write()
            .apply_upsert(ids, &vectors, payload_bytes, dim);
        drop(guard);
        self.after_write(seq)
    }

    /// Delete points by id; returns how many of them existed.
    pub fn delete(&self, ids: &[PointId]) -> Result<usize> {
        self.check_open()?;
        validate_ids(ids, false)?;
        let guard = self.writer.lock();
        self.check_open()?;
        let existing: Vec<PointId> = {
            let st = self.state.read();
            let mut seen = std::collections::HashSet::new();
            ids.iter()
                .filter(|id| st.index.contains_key(*id) && seen.insert(*id))
                .cloned()
                .collect()
        };
        if existing.is_empty() {
            return Ok(0);
        }
        let seq = match &self.wal {
            Some(wal) => {
                let frame = encode_frame(&OpRef::Delete { ids: &existing })
                    .map_err(|e| Error::invalid(format!("batch does not encode: {e}")))?;
                Some(wal.append(frame)?)
            }
            None => None,
        };
        let removed = self
            .state
            .write()
            .apply_delete(&existing, self.config.dim as usize);
        drop(guard);
        self.after_write(seq)?;
        Ok(removed)
    }

    fn after_write(&self, seq: Option<u64>) -> Result<()> {
        let (Some(wal), Some(seq)) = (&self.wal, seq) else {
            return Ok(());
        };
        wal.commit(seq)?;
        if wal.bytes() > self.options.checkpoint_log_bytes {
            let mut m = self.writer.lock();
            if wal.bytes() > self.options.checkpoint_log_bytes {
                self.checkpoint_locked(&mut m)?;
            }
        }
        Ok(())
    }

    /// Check a batch of vectors; under cosine, return them unit-normalised.
    fn prepare_vectors<'a>(&self, vectors: &'a [f32], what: &str) -> Result<Cow<'a, [f32]>> {
        let dim = self.config.dim as usize;
        for (row, v) in vectors.chunks_exact(dim).enumerate() {
            if let Some(col) = v.iter().position(|x| !x.is_finite()) {
                return Err(Error::invalid(format!(
                    "{what} row {row}: component {col} is {} (only finite numbers are allowed)",
                    v[col]
                )));
            }
            if self.config.distance == Distance::Cosine && v.iter().all(|&x| x == 0.0) {
                return Err(Error::invalid(format!(
                    "{what} row {row} is a zero vector, which has no direction under cosine distance"
                )));
            }
        }
        if self.config.distance != Distance::Cosine {
            return Ok(Cow::Borrowed(vectors));
        }
        let mut out = Vec::with_capacity(vectors.len());
        for v in vectors.chunks_exact(dim) {
            distance::normalize_into(v, &mut out);
        }
        Ok(Cow::Owned(out))
    }

    // ----- reads --------------------------------------------------------------------------

    pub fn count(&self) -> Result<usize> {
        self.check_open()?;
        Ok(self.state.read().index.len())
    }

    /// Points by id, in the order asked; missing ids are left out.
    pub fn get(
        &self,
        ids: &[PointId],
        with_payload: &PayloadSelector,
        with_vector: bool,
    ) -> Result<Vec<Record>> {
        self.check_open()?;
        validate_ids(ids, false)?;
        let st = self.state.read();
        let mut out = Vec::new();
        for id in ids {
            if let Some(&loc) = st.index.get(id) {
                out.push(st.record(loc, with_payload, with_vector, self.config.dim as usize)?);
            }
        }
        Ok(out)
    }

    /// Up to `limit` points in id order, starting at `offset` (inclusive). Returns them and the
    /// id to pass as `offset` for the next page, if there is one.
    pub fn scroll(
        &self,
        limit: usize,
        offset: Option<&PointId>,
        with_payload: &PayloadSelector,
        with_vector: bool,
    ) -> Result<(Vec<Record>, Option<PointId>)> {
        self.check_open()?;
        let st = self.state.read();
        let mut iter: Box<dyn Iterator<Item = (&PointId, &Loc)>> = match offset {
            Some(o) => Box::new(st.index.range(o.clone()..)),
            None => Box::new(st.index.iter()),
        };
        let mut out = Vec::with_capacity(limit.min(st.index.len()));
        for (_, &loc) in iter.by_ref().take(limit) {
            out.push(st.record(loc, with_payload, with_vector, self.config.dim as usize)?);
        }
        let next = iter.next().map(|(id, _)| id.clone());
        Ok((out, next))
    }

    /// Exact top-k search for one query of `dim` values.
    pub fn search(&self, query: &[f32], params: &SearchParams) -> Result<Vec<ScoredPoint>> {
        self.check_open()?;
        let dim = self.config.dim as usize;
        if query.len() != dim {
            return Err(Error::invalid(format!(
                "query has dimension {}, the collection has dimension {dim}",
                query.len()
            )));
        }
        let q = self.prepare_vectors(query, "query")?;
        let metric = self.config.distance;
        let st = self.state.read();
        let blocks = st.blocks(dim);
        let cands = search::search_one(
            metric,
            &q,
            dim,
            &blocks,
            params.offset.saturating_add(params.k),
            search::min_key_for(metric, params.score_threshold),
        );
        st.scored(metric, &cands, params, dim)
    }

    /// Exact top-k search for several queries (`queries.len() / dim` of them).
    pub fn search_batch(
        &self,
        queries: &[f32],
        params: &SearchParams,
    ) -> Result<Vec<Vec<ScoredPoint>>> {
        self.check_open()?;
        let dim = self.config.dim as usize;
        if !queries.len().is_multiple_of(dim) {
            return Err(Error::invalid(format!(
                "queries hold {} values, not a whole number of vectors of dimension {dim}",
                queries.len()
            )));
        }
        let q = self.prepare_vectors(queries, "queries")?;
        let metric = self.config.distance;
        let st = self.state.read();
        let blocks = st.blocks(dim);
        let all = search::search_many(
            metric,
            &q,
            dim,
            &blocks,
            params.offset.saturating_add(params.k),
            search::min_key_for(metric, params.score_threshold),
        );
        all.iter()
            .map(|c| st.scored(metric, c, params, dim))
            .collect()
    }

    // ----- checkpoints --------------------------------------------------------------------

    /// Write everything logged so far into sealed segment files and empty the log.
    pub fn flush(&self) -> Result<()> {
        self.check_open()?;
        let mut m = self.writer.lock();
        self.checkpoint_locked(&mut m)
    }

    fn checkpoint_locked(&self, current: &mut Manifest) -> Result<()> {
        let (Some(dir), Some(wal)) = (&self.dir, &self.wal) else {
            return Ok(());
        };
        let seq = wal.last_seq();
        let seg_dir = dir.join(SEGMENTS_DIR);
        let dim = self.config.dim;
        let mut next = current.clone();
        next.generation += 1;
        next.checkpoint_seq = seq;

        // Write the new files while readers go on; writers wait on `writer`, which we hold.
        let new_segment = {
            let st = self.state.read();
            let any_dirty = st.segments.iter().any(|s| s.dirty);
            if seq == current.checkpoint_seq && !any_dirty && st.mem.ids.is_empty() {
                return Ok(());
            }
            let mut kept = Vec::new();
            for (s, meta) in st.segments.iter().zip(&current.segments) {
                let mut meta = meta.clone();
                if s.deleted.count_ones() == s.seg.rows {
                    continue; // every row deleted: the segment goes away
                }
                if s.dirty {
                    segment::write_deleted(
                        self.fs.as_ref(),
                        &seg_dir,
                        meta.id,
                        next.generation,
                        s.seg.rows,
                        &s.deleted,
                    )?;
                    meta.deleted = Some(segment::del_name(meta.id, next.generation));
                }
                kept.push(meta);
            }
            next.segments = kept;
            if st.mem.ids.is_empty() {
                None
            } else {
                let id = next.next_segment_id;
                next.next_segment_id += 1;
                segment::write_segment(
                    self.fs.as_ref(),
                    &seg_dir,
                    id,
                    dim,
                    &SegmentData {
                        ids: &st.mem.ids,
                        vectors: &st.mem.vectors,
                        payloads: &st.mem.payloads,
                    },
                )?;
                let rows = st.mem.ids.len();
                next.segments.push(SegmentMeta {
                    id,
                    rows: rows as u64,
                    deleted: None,
                });
                Some(Segment::open(self.fs.as_ref(), &seg_dir, id, rows, dim)?)
            }
        };
        // New files' names must be durable before the manifest that names them.
        self.fs.sync_dir(&seg_dir)?;
        next.write(self.fs.as_ref(), dir)?;

        {
            let mut st = self.state.write();
            st.seal(new_segment);
        }
        let obsolete: Vec<String> = {
            let live = next.live_segment_files();
            current
                .live_segment_files()
                .into_iter()
                .filter(|f| !live.contains(f))
                .collect()
        };
        *current = next;
        for name in &obsolete {
            self.fs.remove_file(&seg_dir.join(name))?;
        }
        if !obsolete.is_empty() {
            self.fs.sync_dir(&seg_dir)?;
        }
        wal.remove_through(seq)
    }

    /// Checkpoint and stop the log. Later calls on this collection fail with `Closed`.
    pub fn close(&self) -> Result<()> {
        let mut m = self.writer.lock();
        if self.status.load(Ordering::Acquire) != OPEN {
            return Ok(());
        }
        let result = self.checkpoint_locked(&mut m);
        self.status.store(CLOSED, Ordering::Release);
        let closed = self.wal.as_ref().map_or(Ok(()), |w| w.close());
        result.and(closed)
    }

    /// Mark the collection dropped: every later call on a handle fails with `CollectionNotFound`.
    pub fn mark_dropped(&self) {
        let _m = self.writer.lock();
        self.status.store(DROPPED, Ordering::Release);
        if let Some(w) = &self.wal {
            // The files are about to be removed; nothing of the log needs to be kept.
            let _ = w.close();
        }
    }

    pub fn info(&self) -> Result<CollectionInfo> {
        self.check_open()?;
        let (points, segments, unflushed) = {
            let st = self.state.read();
            (st.index.len(), st.segments.len(), st.mem.ids.len())
        };
        let (mut disk_bytes, mut log_bytes) = (0, 0);
        if let Some(dir) = &self.dir {
            let _m = self.writer.lock(); // no checkpoint removes files while we count
            disk_bytes += self.fs.file_len(&dir.join(manifest::MANIFEST))?;
            let seg_dir = dir.join(SEGMENTS_DIR);
            for name in self.fs.list_dir(&seg_dir)? {
                disk_bytes += self.fs.file_len(&seg_dir.join(name))?;
            }
            log_bytes = self.wal.as_ref().map_or(0, |w| w.bytes());
        }
        Ok(CollectionInfo {
            name: self.name.clone(),
            dim: self.config.dim,
            distance: self.config.distance,
            points,
            segments,
            unflushed_points: unflushed,
            disk_bytes,
            log_bytes,
        })
    }

    /// Check every checksum of every sealed file (reads all of them).
    pub fn verify(&self) -> Result<()> {
        self.check_open()?;
        let Some(dir) = &self.dir else { return Ok(()) };
        let m = self.writer.lock();
        let seg_dir = dir.join(SEGMENTS_DIR);
        Manifest::read(self.fs.as_ref(), dir)?;
        for s in &m.segments {
            Segment::verify(self.fs.as_ref(), &seg_dir, s.id, s.deleted.as_deref())?;
        }
        Ok(())
    }
}

/// Remove files a crash left behind: segment files no manifest names, a half-written manifest.
fn remove_unreferenced(
    fs: &dyn FileSystem,
    dir: &Path,
    seg_dir: &Path,
    m: &Manifest,
) -> Result<()> {
    let tmp = dir.join(manifest::MANIFEST_TMP);
    if fs.exists(&tmp)? {
        fs.remove_file(&tmp)?;
    }
    let live = m.live_segment_files();
    let mut removed = false;
    for name in fs.list_dir(seg_dir)? {
        if !live.contains(&name) {
            log::info!("removing unreferenced file {name} (left by an interrupted checkpoint)");
            fs.remove_file(&seg_dir.join(&name))?;
            removed = true;
        }
    }
    if removed {
        fs.sync_dir(seg_dir)?;
    }
    Ok(())
}

/// Check ids; with `unique`, a repeated id is an error naming both positions.
fn validate_ids(ids: &[PointId], unique: bool) -> Result<()> {
    let mut first_at: HashMap<&PointId, usize> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        id.validate()
            .map_err(|e| Error::invalid(format!("ids[{i}]: {e}")))?;
        if unique {
            if let Some(j) = first_at.insert(id, i) {
                return Err(Error::invalid(format!(
                    "ids[{i}]: duplicate id {id} in the batch (first at ids[{j}])"
                )));
            }
        }
    }
    Ok(())
}

impl State {
    fn blocks(&self, dim: usize) -> Vec<Block<'_>> {
        let mut blocks: Vec<Block<'_>> = self
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| Block {
                source: i as u32,
                first_row: 0,
                vectors: s.seg.vectors(),
                deleted: Some(&s.deleted),
            })
            .collect();
        if !self.mem.ids.is_empty() {
            blocks.push(Block {
                source: MEM,
                first_row: 0,
                vectors: &self.mem.vectors[..self.mem.ids.len() * dim],
                deleted: None,
            });
        }
        blocks
    }

    fn apply_upsert(
        &mut self,
        ids: &[PointId],
        vectors: &[f32],
        payloads: Vec<Option<Box<[u8]>>>,
        dim: usize,
    ) {
        for ((id, v), p) in ids.iter().zip(vectors.chunks_exact(dim)).zip(payloads) {
            match self.index.get(id).copied() {
                Some(Loc { source: MEM, row }) => {
                    let r = row as usize;
                    self.mem.vectors[r * dim..(r + 1) * dim].copy_from_slice(v);
                    self.mem.payloads[r] = p;
                }
                existing => {
                    if let Some(loc) = existing {
                        let s = &mut self.segments[loc.source as usize];
                        s.deleted.set(loc.row as usize);
                        s.dirty = true;
                    }
                    let row = self.mem.ids.len() as u32;
                    self.mem.ids.push(id.clone());
                    self.mem.vectors.extend_from_slice(v);
                    self.mem.payloads.push(p);
                    self.index.insert(id.clone(), Loc { source: MEM, row });
                }
            }
        }
    }

    fn apply_delete(&mut self, ids: &[PointId], dim: usize) -> usize {
        let mut removed = 0;
        for id in ids {
            let Some(loc) = self.index.remove(id) else {
                continue;
            };
            removed += 1;
            if loc.source == MEM {
                let r = loc.row as usize;
                let last = self.mem.ids.len() - 1;
                if r != last {
                    self.mem.ids.swap(r, last);
                    self.mem.payloads.swap(r, last);
                    let (head, tail) = self.mem.vectors.split_at_mut(last * dim);
                    head[r * dim..(r + 1) * dim].copy_from_slice(&tail[..dim]);
                    let moved = self.mem.ids[r].clone();
                    self.index.insert(
                        moved,
                        Loc {
                            source: MEM,
                            row: loc.row,
                        },
                    );
                }
                self.mem.ids.pop();
                self.mem.payloads.pop();
                self.mem.vectors.truncate(last * dim);
            } else {
                let s = &mut self.segments[loc.source as usize];
                s.deleted.set(loc.row as usize);
                s.dirty = true;
            }
        }
        removed
    }

    /// Apply a record read back from the log.
    fn apply_logged(&mut self, seq: u64, op: Op, dim: usize, log_dir: &Path) -> Result<()> {
        match op {
            Op::Upsert {
                ids,
                vectors,
                payloads,
            } => {
                if vectors.len() != ids.len() * dim * 4 || payloads.len() != ids.len() {
                    return Err(Error::corrupt(
                        log_dir,
                        format!("log record {seq} has inconsistent lengths"),
                    ));
                }
                let vectors: Vec<f32> = bytemuck::pod_collect_to_vec(&vectors);
                let payloads = payloads
                    .into_iter()
                    .map(|p| p.map(|b| b.into_vec().into_boxed_slice()))
                    .collect();
                self.apply_upsert(&ids, &vectors, payloads, dim);
            }
            Op::Delete { ids } => {
                self.apply_delete(&ids, dim);
            }
        }
        Ok(())
    }

    /// After a checkpoint: the in-memory rows became `new_segment`; fully deleted segments are
    /// gone from the manifest, so renumber the sources the index points at.
    fn seal(&mut self, new_segment: Option<Arc<Segment>>) {
        let old = std::mem::take(&mut self.segments);
        let mut renumber = vec![u32::MAX; old.len()];
        for (i, mut s) in old.into_iter().enumerate() {
            if s.deleted.count_ones() == s.seg.rows {
                continue;
            }
            renumber[i] = self.segments.len() as u32;
            s.dirty = false;
            self.segments.push(s);
        }
        let new_source = self.segments.len() as u32;
        if let Some(seg) = new_segment {
            self.segments.push(Sealed {
                deleted: Bitmap::new(seg.rows),
                seg,
                dirty: false,
            });
        }
        for loc in self.index.values_mut() {
            loc.source = if loc.source == MEM {
                new_source
            } else {
                renumber[loc.source as usize]
            };
        }
        self.mem = MemRows::default();
    }

    fn vector(&self, loc: Loc, dim: usize) -> &[f32] {
        if loc.source == MEM {
            let r = loc.row as usize;
            &self.mem.vectors[r * dim..(r + 1) * dim]
        } else {
            self.segments[loc.source as usize]
                .seg
                .vector(loc.row as usize)
        }
    }

    fn id(&self, loc: Loc) -> &PointId {
        if loc.source == MEM {
            &self.mem.ids[loc.row as usize]
        } else {
            &self.segments[loc.source as usize].seg.ids[loc.row as usize]
        }
    }

    fn payload(&self, loc: Loc, sel: &PayloadSelector) -> Result<Option<Payload>> {
        if *sel == PayloadSelector::None {
            return Ok(None);
        }
        let bytes = if loc.source == MEM {
            self.mem.payloads[loc.row as usize].as_deref()
        } else {
            self.segments[loc.source as usize]
                .seg
                .payload(loc.row as usize)?
        };
        let Some(bytes) = bytes else {
            return Ok(Some(Payload::new()));
        };
        let mut p: Payload = serde_json::from_slice(bytes).map_err(|e| {
            Error::corrupt(
                PathBuf::from(SEGMENTS_DIR),
                format!("stored payload is not valid JSON: {e}"),
            )
        })?;
        if let PayloadSelector::Keys(keys) = sel {
            p.retain(|k, _| keys.iter().any(|want| want == k));
        }
        Ok(Some(p))
    }

    fn record(
        &self,
        loc: Loc,
        sel: &PayloadSelector,
        with_vector: bool,
        dim: usize,
    ) -> Result<Record> {
        Ok(Record {
            id: self.id(loc).clone(),
            payload: self.payload(loc, sel)?,
            vector: with_vector.then(|| self.vector(loc, dim).to_vec()),
        })
    }

    fn scored(
        &self,
        metric: Distance,
        cands: &[Cand],
        params: &SearchParams,
        dim: usize,
    ) -> Result<Vec<ScoredPoint>> {
        cands
            .iter()
            .skip(params.offset)
            .map(|c| {
                let loc = Loc {
                    source: c.source,
                    row: c.row,
                };
                Ok(ScoredPoint {
                    id: self.id(loc).clone(),
                    score: search::score_of(metric, c.key),
                    payload: self.payload(loc, &params.with_payload)?,
                    vector: params.with_vector.then(|| self.vector(loc, dim).to_vec()),
                })
            })
            .collect()
    }
}
