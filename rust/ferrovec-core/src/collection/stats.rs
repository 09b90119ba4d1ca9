//! `stats`: what an operator asks of a collection (its segments, payload indexes, log,
//! disk and memory per part, the optimizer's last and next work, bytes per point), and the
//! sample of its figures that `metrics` exports.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::sync::atomic::Ordering::Relaxed;

use serde_json::{json, Value};

use super::optimize::next_work;
use super::state::SourceKind;
use super::{Collection, SEGMENTS_DIR};
use crate::error::{Error, Result};
use crate::observe::memory::{self, part_of, Residency};
use crate::observe::metrics::Op;
use crate::observe::now_epoch;
use crate::observe::prometheus::{OpSample, Sample};
use crate::shared::Shared;

/// Bytes of the collection's files per part, and of each segment's files.
#[derive(Default)]
struct Disk {
    parts: BTreeMap<&'static str, u64>,
    per_segment: BTreeMap<u64, u64>,
}

impl Collection {
    /// Each file under `segments/` and its size. A file removed between the listing and its
    /// `stat` (by a merge or a checkpoint letting go of its inputs) is left out; any other
    /// error is returned.
    pub(super) fn segment_files(&self) -> Result<Vec<(String, u64)>> {
        let Some(dir) = &self.dir else {
            return Ok(Vec::new());
        };
        let seg_dir = dir.join(SEGMENTS_DIR);
        let mut files = Vec::new();
        for name in self.fs.list_dir(&seg_dir)? {
            match self.fs.file_len(&seg_dir.join(&name)) {
                Ok(len) => files.push((name, len)),
                Err(Error::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(files)
    }

    fn disk(&self) -> Result<Disk> {
        let mut d = Disk::default();
        for (name, len) in self.segment_files()? {
            *d.parts.entry(part_of(&name)).or_default() += len;
            if let Some(id) = name.get(..16).and_then(|s| s.parse::<u64>().ok()) {
                *d.per_segment.entry(id).or_default() += len;
            }
        }
        let log = self.log_bytes();
        if log > 0 {
            d.parts.insert("log", log);
        }
        Ok(d)
    }

    /// What of this collection's files is mapped and resident, from `smaps` (`read_smaps`).
    fn residency(&self, smaps: &str) -> Residency {
        self.dir
            .as_deref()
            .map(|dir| memory::residency(smaps, dir))
            .unwrap_or_default()
    }

    /// Processes that have the collection open (this one alone for an in-memory collection).
    fn processes(&self) -> Result<usize> {
        self.shared.as_ref().map_or(Ok(1), Shared::processes)
    }

    /// Seconds since the oldest record not yet checkpointed was written (0: none).
    fn log_age(&self) -> Result<f64> {
        let Some(wal) = &self.wal else { return Ok(0.0) };
        let checkpoint = self.writer.lock().checkpoint_seq;
        Ok(match wal.time_of_first_after(checkpoint)? {
            Some(us) => (now_epoch() - us as f64 / 1e6).max(0.0),
            None => 0.0,
        })
    }

    /// Everything an operator asks about the collection, as JSON (see docs/OPERATIONS.md).
    pub fn stats(&self) -> Result<Value> {
        let info = self.info()?;
        let disk = self.disk()?;
        let res = self.residency(&memory::read_smaps());
        let m = self.manifest();
        let segments = self.segment_stats(&m, &disk);
        let payload_indexes = self.index_stats(&info.payload_indexes);
        let last = self.metrics.last_run.lock().clone();
        let next = if self.options.read_only {
            "none here: this process has the store read-only; a process that writes optimizes"
                .to_string()
        } else {
            next_work(self).describe(self)
        };
        let points = info.points.max(1) as f64;
        let disk_total: u64 = disk.parts.values().sum();
        let resident_total: u64 = res.resident.values().sum();
        // What serving keeps in memory per point: the codes and graphs (f32 rows are read
        // from disk for rescoring in large segments, from the page cache in small ones).
        let serving: u64 = ["codes", "graphs", "ids", "deletions", "payload_indexes"]
            .iter()
            .filter_map(|p| disk.parts.get(p))
            .sum();
        Ok(json!({
            "name": self.name,
            "points": info.points,
            "indexed_points": info.indexed_points,
            "unindexed_points": info.unindexed_points,
            "segments": segments,
            "payload_indexes": payload_indexes,
            "log": {
                "bytes": info.log_bytes,
                "files": self.wal.as_ref().map_or(0, |w| w.extent_after(m.checkpoint_seq).0),
                "oldest_record_age_s": self.log_age()?,
                "checkpoint_seq": m.checkpoint_seq,
            },
            "disk_bytes": disk.parts,
            "memory_bytes": {"mapped": res.mapped, "resident": res.resident},
            "optimizer": {
                "status": info.optimizer_status,
                "last": last.map(|l| json!({
                    "kind": l.kind.name(),
                    "ended_at": l.ended_at,
                    "seconds": l.seconds,
                    "points": l.points,
                })),
                "next": next,
                "progress": self.optimizer.progress(),
                "checkpoints": self.metrics.checkpoints.load(Relaxed),
                "merges": self.metrics.merges.load(Relaxed),
                "write_stalls": self.metrics.write_stalls.load(Relaxed),
                "write_stall_s": self.metrics.write_stall_ns.load(Relaxed) as f64 / 1e9,
            },
            "capacity": {
                "disk_bytes_per_point": disk_total as f64 / points,
                "resident_bytes_per_point": resident_total as f64 / points,
                "serving_bytes_per_point": serving as f64 / points,
                "resident_need_bytes": self.resident_need().total(),
            },
            "memory_budget": self.budget_stats(),
            "processes": self.processes()?,
        }))
    }

    /// Each source's figures for `stats`.
    fn segment_stats(&self, m: &super::Manifest, disk: &Disk) -> Vec<Value> {
        let st = self.state.read();
        let mut out = Vec::new();
        for (i, s) in st.sources.iter().enumerate() {
            let (id, recall) = match &s.kind {
                SourceKind::Sealed(seg) => (
                    Some(seg.id),
                    m.segments
                        .iter()
                        .find(|meta| meta.id == seg.id)
                        .and_then(|meta| {
                            meta.graphs
                                .iter()
                                .map(|g| g.self_check_recall)
                                .reduce(f32::min)
                        }),
                ),
                SourceKind::Frozen(_) => (None, None),
            };
            let deleted = s.deleted.count_ones();
            out.push(json!({
                "source": st.source_label(i as u32),
                "id": id,
                "rows": s.rows(),
                "live": s.live(),
                "deleted": deleted,
                "deleted_share": deleted as f64 / s.rows().max(1) as f64,
                "indexed": s.has_graph(),
                "codes": s.segment().and_then(|seg| seg.code_kind(0)).map(|k| k.name()),
                "self_check_recall": recall,
                "disk_bytes": id.and_then(|id| disk.per_segment.get(&id)).copied().unwrap_or(0),
            }));
        }
        if !st.mem.is_empty() {
            out.push(json!({
                "source": "appendable rows",
                "rows": st.mem.len(),
                "live": st.mem.len(),
                "deleted": 0,
                "deleted_share": 0.0,
                "indexed": false,
                "disk_bytes": 0,
            }));
        }
        out
    }

    /// Each payload index's figures for `stats`. Distinct values are the most any one segment
    /// holds (a value in several segments is one value; the segments' own counts cannot tell).
    fn index_stats(&self, indexes: &[crate::info::PayloadIndexInfo]) -> Vec<Value> {
        let st = self.state.read();
        indexes
            .iter()
            .map(|p| {
                let mut distinct = 0;
                if let Some(def) = st.index_def(&p.key) {
                    for seg in st.sources.iter().filter_map(|s| s.segment()) {
                        if let Ok(Some(idx)) = seg.payload_index(def.number) {
                            // Per segment; the sum counts a value once per segment it is in.
                            distinct = distinct.max(idx.distinct());
                        }
                    }
                }
                json!({
                    "key": p.key,
                    "kind": p.kind,
                    "points": p.points,
                    "distinct_values": distinct,
                    "disk_bytes": p.disk_bytes,
                })
            })
            .collect()
    }

    /// This collection's figures for `metrics`; `smaps` as `observe::memory::read_smaps` read
    /// it for the whole scrape.
    pub fn metrics_sample(&self, smaps: &str) -> Result<Sample> {
        let info = self.info()?;
        let res = self.residency(smaps);
        let rows: usize = info
            .segments
            .iter()
            .filter(|s| s.kind != "appendable")
            .map(|s| s.rows)
            .sum();
        let deleted: usize = info.segments.iter().map(|s| s.deleted).sum();
        let mut s = Sample {
            collection: self.name.clone(),
            checkpoints: self.metrics.checkpoints.load(Relaxed),
            merges: self.metrics.merges.load(Relaxed),
            optimizer_seconds: self.metrics.optimizer_ns.load(Relaxed) as f64 / 1e9,
            optimizer_queue_points: info.unindexed_points,
            optimizer_failed: info.optimizer_status.starts_with("failed"),
            lock_wait_seconds: self.metrics.lock_wait_ns.load(Relaxed) as f64 / 1e9,
            points: info.points,
            indexed_points: info.indexed_points,
            unindexed_points: info.unindexed_points,
            segments: info.segments.len(),
            deleted_ratio: deleted as f64 / rows.max(1) as f64,
            disk_bytes: info.disk_bytes,
            log_bytes: info.log_bytes,
            log_age_seconds: self.log_age()?,
            mapped_bytes: res.mapped,
            resident_bytes: res.resident,
            processes: self.processes()?,
            ..Sample::default()
        };
        for op in Op::ALL {
            let o = self.metrics.op(op);
            s.ops.push(OpSample {
                op,
                count: o.count.load(Relaxed),
                errors: o.errors.load(Relaxed),
                slow: o.slow.load(Relaxed),
                latency: o.latency.values(),
            });
        }
        if let Some(wal) = &self.wal {
            let lm = &wal.metrics;
            s.log_appends = lm.appends.load(Relaxed);
            s.log_appended_bytes = lm.appended_bytes.load(Relaxed);
            s.log_fsyncs = lm.fsyncs.load(Relaxed);
            s.log_fsync_latency = lm.fsync_latency.values();
            s.log_files = wal.extent_after(self.writer.lock().checkpoint_seq).0;
        }
        Ok(s)
    }
}
