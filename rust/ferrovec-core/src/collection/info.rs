//! What a collection reports about itself, and the check of every checksum.

use std::collections::HashMap;

use super::manifest::{self, Manifest};
use super::state::{Source, SourceKind};
use super::{Collection, SEGMENTS_DIR};
use crate::error::Result;
use crate::info::{CollectionInfo, PayloadIndexInfo, SegmentInfo};
use crate::segment;

impl Collection {
    pub fn info(&self) -> Result<CollectionInfo> {
        self.enter()?;
        let m = self.writer.lock(); // no checkpoint removes files while we count
        let recalls: HashMap<u64, f32> = m
            .segments
            .iter()
            .filter_map(|s| {
                // The weakest of a segment's graphs (one per vector).
                let worst = s
                    .graphs
                    .iter()
                    .map(|g| g.self_check_recall)
                    .reduce(f32::min);
                worst.map(|r| (s.id, r))
            })
            .collect();
        let st = self.state.read();
        let mut segments = Vec::new();
        let (mut indexed, mut unindexed) = (0, 0);
        for s in &st.sources {
            let (kind, recall) = match &s.kind {
                SourceKind::Sealed(seg) => ("sealed", recalls.get(&seg.id).copied()),
                SourceKind::Frozen(_) => ("sealing", None),
            };
            if s.has_graph() {
                indexed += s.live();
            } else {
                unindexed += s.live();
            }
            segments.push(SegmentInfo {
                rows: s.rows(),
                deleted: s.deleted.count_ones(),
                kind,
                indexed: s.has_graph(),
                self_check_recall: recall,
            });
        }
        if !st.mem.is_empty() {
            unindexed += st.mem.len();
            segments.push(SegmentInfo {
                rows: st.mem.len(),
                deleted: 0,
                kind: "appendable",
                indexed: false,
                self_check_recall: None,
            });
        }
        let (points, unflushed) = (st.live, st.mem.len());
        drop(st);
        let (mut disk_bytes, mut log_bytes) = (0, 0);
        if let Some(dir) = &self.dir {
            disk_bytes += self.fs.file_len(&dir.join(manifest::MANIFEST))?;
            disk_bytes += self
                .segment_files()?
                .iter()
                .map(|(_, len)| len)
                .sum::<u64>();
            log_bytes = self
                .wal
                .as_ref()
                .map_or(0, |w| w.bytes_after(m.checkpoint_seq));
        }
        let payload_indexes = self.payload_index_info(&m)?;
        let retention = m.retention.clone();
        drop(m);
        Ok(CollectionInfo {
            payload_indexes,
            retention,
            name: self.name.clone(),
            config: self.config.clone(),
            points,
            indexed_points: indexed,
            unindexed_points: unindexed,
            segments,
            unflushed_points: unflushed,
            optimizer_status: self.optimizer.status(),
            disk_bytes,
            log_bytes,
        })
    }

    /// Each payload index of manifest `m`: the sealed points it covers and its files' bytes.
    fn payload_index_info(&self, m: &Manifest) -> Result<Vec<PayloadIndexInfo>> {
        let mut out = Vec::new();
        for def in &m.payload_indexes {
            let mut info = PayloadIndexInfo {
                key: def.key.clone(),
                kind: def.kind.name(),
                points: 0,
                disk_bytes: 0,
            };
            for meta in m
                .segments
                .iter()
                .filter(|s| s.indexes.contains(&def.number))
            {
                info.points += meta.rows as usize;
                if let Some(dir) = &self.dir {
                    info.disk_bytes += self.fs.file_len(
                        &dir.join(SEGMENTS_DIR)
                            .join(segment::pidx_name(meta.id, def.number)),
                    )?;
                }
            }
            out.push(info);
        }
        Ok(out)
    }

    /// Check every checksum of every sealed file (reads all of them).
    pub fn verify(&self) -> Result<()> {
        self.enter()?;
        let Some(dir) = &self.dir else { return Ok(()) };
        let m = self.writer.lock();
        Manifest::read(self.fs.as_ref(), dir)?;
        let st = self.state.read();
        for seg in st.sources.iter().filter_map(Source::segment) {
            let deleted = m.segments.iter().find(|meta| meta.id == seg.id);
            seg.verify(deleted.and_then(|meta| meta.deleted.as_deref()))?;
        }
        Ok(())
    }
}
