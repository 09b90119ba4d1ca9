//! The collection manifest: which segment files make up the collection and up to which log
//! record they hold. It is the commit point of a checkpoint: written to `MANIFEST.tmp`, fsynced,
//! renamed over `MANIFEST`, and the directory fsynced. Body: postcard, behind the common header.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{CodeKind, CollectionConfig, Retention};
use crate::error::{Error, Result};
use crate::filter::index::IndexKind;
use crate::format::{FileKind, Header};
use crate::io::FileSystem;
use crate::segment;

pub const MANIFEST: &str = "MANIFEST";
pub const MANIFEST_TMP: &str = "MANIFEST.tmp";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub config: CollectionConfig,
    /// Every log record up to this sequence number is in the segments below.
    pub checkpoint_seq: u64,
    /// Bumped at every checkpoint; names deletion-bitmap files.
    pub generation: u64,
    pub next_segment_id: u64,
    pub segments: Vec<SegmentMeta>,
    /// Payload indexes: every segment sealed after a definition was made has its file.
    pub payload_indexes: Vec<PayloadIndexDef>,
    pub next_index_number: u32,
    /// Points older than this are deleted by the optimizer.
    pub retention: Option<Retention>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadIndexDef {
    pub key: String,
    pub kind: IndexKind,
    /// Names the per-segment files (`<segment>.pidx-<number>`); never reused.
    pub number: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentMeta {
    pub id: u64,
    pub rows: u64,
    /// File name of the current deletion bitmap, if any row was deleted since sealing.
    pub deleted: Option<String>,
    /// The segment's HNSW graphs, one per vector of the collection in its order (files
    /// `<id>.hnsw`, then `<id>.<k>.hnsw` for vector k > 0), or none: a segment is indexed for
    /// all its vectors or for none.
    pub graphs: Vec<GraphMeta>,
    /// Numbers of the payload index definitions this segment has a file for.
    pub indexes: Vec<u32>,
    /// Per vector, how many rows lack it (named vectors a point does not have); empty when
    /// every row has every vector.
    pub absent: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphMeta {
    pub m: u32,
    pub ef_construct: u32,
    /// Recall@10 measured by the self-check after the build.
    pub self_check_recall: f32,
    /// The code file the graph is walked on, if any (`<id>.q8`, `.q4` or `.q1`, then
    /// `<id>.<k>.q8` ... for vector k > 0; `index/quant/`).
    pub codes: Option<CodeKind>,
}

impl Manifest {
    pub fn new(config: CollectionConfig) -> Self {
        Manifest {
            config,
            checkpoint_seq: 0,
            generation: 0,
            next_segment_id: 1,
            segments: Vec::new(),
            payload_indexes: Vec::new(),
            next_index_number: 1,
            retention: None,
        }
    }

    /// A fresh segment id. Only the in-memory copy advances; the manifest that names the new
    /// segment persists it (after a crash the id is simply reused; its leftovers are removed).
    pub fn take_segment_id(&mut self) -> u64 {
        let id = self.next_segment_id;
        self.next_segment_id += 1;
        id
    }

    /// Every file name under `segments/` that this manifest refers to.
    pub fn live_segment_files(&self) -> Vec<String> {
        let mut names = Vec::new();
        for s in &self.segments {
            names.push(segment::vec_name(s.id));
            names.push(segment::ids_name(s.id));
            names.push(segment::pay_name(s.id));
            for (k, g) in s.graphs.iter().enumerate() {
                names.push(segment::graph_name(s.id, k));
                if let Some(kind) = g.codes {
                    names.push(segment::codes_name(s.id, k, kind));
                }
            }
            if let Some(d) = &s.deleted {
                names.push(d.clone());
            }
            for &n in &s.indexes {
                names.push(segment::pidx_name(s.id, n));
            }
            for k in 0..self.config.sparse.len() {
                names.push(segment::sparse::vectors_name(s.id, k));
                names.push(segment::sparse::index_name(s.id, k));
            }
        }
        names
    }

    pub fn read(fs: &dyn FileSystem, dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST);
        let bytes = fs.read(&path)?;
        let (header, body) = Header::decode_whole(FileKind::Manifest, &bytes, &path, true)?;
        let bad =
            |e: postcard::Error| Error::corrupt(&path, format!("manifest does not decode: {e}"));
        let manifest: Manifest = match header.version {
            5 => postcard::from_bytes::<Old<v5::Config, v6::SegmentMeta>>(body)
                .map_err(bad)?
                .upgrade(
                    |c| v7::Config::from(v6::Config::from(c)).into(),
                    v6::segment,
                ),
            6 => postcard::from_bytes::<Old<v6::Config, v6::SegmentMeta>>(body)
                .map_err(bad)?
                .upgrade(|c| v7::Config::from(c).into(), v6::segment),
            7 => postcard::from_bytes::<Old<v7::Config, SegmentMeta>>(body)
                .map_err(bad)?
                .upgrade(CollectionConfig::from, |s| s),
            _ => postcard::from_bytes(body).map_err(bad)?,
        };
        // A checksum only says the bytes are as written: the configuration must also be one
        // this build accepts, or code that trusts it (one vector at least) would misbehave.
        manifest.config.validate().map_err(|e| {
            Error::corrupt(
                &path,
                format!("manifest holds an invalid configuration: {e}"),
            )
        })?;
        Ok(manifest)
    }

    /// Atomically replace the manifest in `dir`.
    pub fn write(&self, fs: &dyn FileSystem, dir: &Path) -> Result<()> {
        let body = postcard::to_stdvec(self)
            .map_err(|e| Error::internal(format!("manifest does not encode: {e}")))?;
        let tmp = dir.join(MANIFEST_TMP);
        crate::format::write_file(fs, &tmp, FileKind::Manifest, 0, 0, &[&body])?;
        fs.rename(&tmp, &dir.join(MANIFEST))?;
        fs.sync_dir(dir)
    }
}

/// A manifest of an older format version: the current layout around the version's own
/// configuration `C` and segment metadata `S`, the parts that changed since.
#[derive(Deserialize)]
struct Old<C, S> {
    config: C,
    checkpoint_seq: u64,
    generation: u64,
    next_segment_id: u64,
    segments: Vec<S>,
    payload_indexes: Vec<PayloadIndexDef>,
    next_index_number: u32,
    retention: Option<Retention>,
}

impl<C, S> Old<C, S> {
    /// The current manifest, its configuration and segments upgraded by the given steps; it is
    /// written in the current version at the next checkpoint.
    fn upgrade(
        self,
        config: impl FnOnce(C) -> CollectionConfig,
        segment: impl FnMut(S) -> SegmentMeta,
    ) -> Manifest {
        Manifest {
            config: config(self.config),
            checkpoint_seq: self.checkpoint_seq,
            generation: self.generation,
            next_segment_id: self.next_segment_id,
            segments: self.segments.into_iter().map(segment).collect(),
            payload_indexes: self.payload_indexes,
            next_index_number: self.next_index_number,
            retention: self.retention,
        }
    }
}

/// Format version 7's configuration had no `vectors_on_disk` (the store's
/// `rows_from_disk_bytes` decided, which is what `None` means).
mod v7 {
    use serde::Deserialize;

    use crate::config::{
        CollectionConfig, HnswConfig, OptimizerConfig, Quantization, SparseSpec, VectorSpec,
    };

    #[derive(Deserialize)]
    pub struct Config {
        pub vectors: Vec<VectorSpec>,
        pub sparse: Vec<SparseSpec>,
        pub hnsw: HnswConfig,
        pub optimizer: OptimizerConfig,
        pub quantization: Option<Quantization>,
    }

    impl From<Config> for CollectionConfig {
        fn from(c: Config) -> Self {
            CollectionConfig {
                vectors: c.vectors,
                sparse: c.sparse,
                hnsw: c.hnsw,
                optimizer: c.optimizer,
                quantization: c.quantization,
                vectors_on_disk: None,
            }
        }
    }
}

/// Format version 6's configuration had no quantization (int8 codes for cosine and dot, which
/// is what `None` still means), and a graph's codes were a flag (int8 or none).
mod v6 {
    use serde::Deserialize;

    use super::{GraphMeta as Current, SegmentMeta as CurrentSegment};
    use crate::config::{CodeKind, HnswConfig, OptimizerConfig, SparseSpec, VectorSpec};

    #[derive(Deserialize)]
    pub struct Config {
        pub vectors: Vec<VectorSpec>,
        pub sparse: Vec<SparseSpec>,
        pub hnsw: HnswConfig,
        pub optimizer: OptimizerConfig,
    }

    impl From<Config> for super::v7::Config {
        fn from(c: Config) -> Self {
            super::v7::Config {
                vectors: c.vectors,
                sparse: c.sparse,
                hnsw: c.hnsw,
                optimizer: c.optimizer,
                quantization: None,
            }
        }
    }

    #[derive(Deserialize)]
    pub struct GraphMeta {
        m: u32,
        ef_construct: u32,
        self_check_recall: f32,
        codes: bool,
    }

    #[derive(Deserialize)]
    pub struct SegmentMeta {
        id: u64,
        rows: u64,
        deleted: Option<String>,
        graphs: Vec<GraphMeta>,
        indexes: Vec<u32>,
        absent: Vec<u64>,
    }

    /// A segment's metadata of versions 5 and 6, its codes flag read as int8 codes.
    pub fn segment(s: SegmentMeta) -> CurrentSegment {
        CurrentSegment {
            id: s.id,
            rows: s.rows,
            deleted: s.deleted,
            graphs: s
                .graphs
                .into_iter()
                .map(|g| Current {
                    m: g.m,
                    ef_construct: g.ef_construct,
                    self_check_recall: g.self_check_recall,
                    codes: g.codes.then_some(CodeKind::Int8),
                })
                .collect(),
            indexes: s.indexes,
            absent: s.absent,
        }
    }
}

/// Format version 5's configuration had no sparse vectors; its segment metadata is version 6's.
mod v5 {
    use serde::Deserialize;

    use crate::config::{HnswConfig, OptimizerConfig, VectorSpec};

    #[derive(Deserialize)]
    pub struct Config {
        vectors: Vec<VectorSpec>,
        hnsw: HnswConfig,
        optimizer: OptimizerConfig,
    }

    impl From<Config> for super::v6::Config {
        fn from(c: Config) -> Self {
            super::v6::Config {
                vectors: c.vectors,
                sparse: Vec::new(),
                hnsw: c.hnsw,
                optimizer: c.optimizer,
            }
        }
    }
}
