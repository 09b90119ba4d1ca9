//! What `info` reports about a collection.

use crate::config::{CollectionConfig, Retention};

/// One segment in [`CollectionInfo`].
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentInfo {
    pub rows: usize,
    pub deleted: usize,
    /// "appendable" (in memory and the log), "sealing" (being written), or "sealed".
    pub kind: &'static str,
    pub indexed: bool,
    /// Recall@10 the graph's self-check measured after its build.
    pub self_check_recall: Option<f32>,
}

/// What `info` reports about a collection.
#[derive(Clone, Debug, PartialEq)]
pub struct CollectionInfo {
    pub name: String,
    pub config: CollectionConfig,
    pub points: usize,
    /// Live points in segments with a graph, and in segments searched exactly.
    pub indexed_points: usize,
    pub unindexed_points: usize,
    pub segments: Vec<SegmentInfo>,
    /// Points written since the last checkpoint (held in memory and in the log).
    pub unflushed_points: usize,
    /// "idle", "sealing", "indexing", "merging", or "failed: <error>".
    pub optimizer_status: String,
    /// Bytes of segment files and the manifest.
    pub disk_bytes: u64,
    /// Bytes of write-ahead log files.
    pub log_bytes: u64,
    pub payload_indexes: Vec<PayloadIndexInfo>,
    pub retention: Option<Retention>,
}

/// One payload index in [`CollectionInfo`].
#[derive(Clone, Debug, PartialEq)]
pub struct PayloadIndexInfo {
    pub key: String,
    pub kind: &'static str,
    /// Sealed points covered (newer points are checked one by one until sealed).
    pub points: usize,
    pub disk_bytes: u64,
}
