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
            5 => {
                v6::Manifest::from(postcard::from_bytes::<v5::Manifest>(body).map_err(bad)?).into()
            }
            6 => postcard::from_bytes::<v6::Manifest>(body)
                .map_err(bad)?
                .into(),
            7 => postcard::from_bytes::<v7::Manifest>(body)
                .map_err(bad)?
                .into(),
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

/// The manifest of format version 7, read and upgraded: its configuration had no
/// `vectors_on_disk` (the store's `rows_from_disk_bytes` decided, which is what `None` means).
mod v7 {
    use serde::Deserialize;

    use super::{PayloadIndexDef, SegmentMeta};
    use crate::config::{
        HnswConfig, OptimizerConfig, Quantization, Retention, SparseSpec, VectorSpec,
    };

    #[derive(Deserialize)]
    pub struct Config {
        vectors: Vec<VectorSpec>,
        sparse: Vec<SparseSpec>,
        hnsw: HnswConfig,
        optimizer: OptimizerConfig,
        quantization: Option<Quantization>,
    }

    #[derive(Deserialize)]
    pub struct Manifest {
        config: Config,
        checkpoint_seq: u64,
        generation: u64,
        next_segment_id: u64,
        segments: Vec<SegmentMeta>,
        payload_indexes: Vec<PayloadIndexDef>,
        next_index_number: u32,
        retention: Option<Retention>,
    }

    impl From<Manifest> for super::Manifest {
        fn from(m: Manifest) -> Self {
            super::Manifest {
                config: crate::config::CollectionConfig {
                    vectors: m.config.vectors,
                    sparse: m.config.sparse,
                    hnsw: m.config.hnsw,
                    optimizer: m.config.optimizer,
                    quantization: m.config.quantization,
                    vectors_on_disk: None,
                },
                checkpoint_seq: m.checkpoint_seq,
                generation: m.generation,
                next_segment_id: m.next_segment_id,
                segments: m.segments,
                payload_indexes: m.payload_indexes,
                next_index_number: m.next_index_number,
                retention: m.retention,
            }
        }
    }
}

/// The manifest of format version 6, read and upgraded: its configuration had no
/// quantization (int8 codes for cosine and dot, which is what `None` still means), and a
/// graph's codes were a flag (int8 or none).
mod v6 {
    use serde::Deserialize;

    use super::{GraphMeta as Current, PayloadIndexDef, SegmentMeta as CurrentSegment};
    use crate::config::{CodeKind, HnswConfig, OptimizerConfig, Retention, SparseSpec, VectorSpec};

    #[derive(Deserialize)]
    pub struct Config {
        pub vectors: Vec<VectorSpec>,
        pub sparse: Vec<SparseSpec>,
        pub hnsw: HnswConfig,
        pub optimizer: OptimizerConfig,
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

    #[derive(Deserialize)]
    pub struct Manifest {
        pub config: Config,
        pub checkpoint_seq: u64,
        pub generation: u64,
        pub next_segment_id: u64,
        pub segments: Vec<SegmentMeta>,
        pub payload_indexes: Vec<PayloadIndexDef>,
        pub next_index_number: u32,
        pub retention: Option<Retention>,
    }

    impl From<Manifest> for super::Manifest {
        fn from(m: Manifest) -> Self {
            let segments = m
                .segments
                .into_iter()
                .map(|s| CurrentSegment {
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
                })
                .collect();
            super::Manifest {
                config: crate::config::CollectionConfig {
                    vectors: m.config.vectors,
                    sparse: m.config.sparse,
                    hnsw: m.config.hnsw,
                    optimizer: m.config.optimizer,
                    quantization: None,
                    vectors_on_disk: None,
                },
                checkpoint_seq: m.checkpoint_seq,
                generation: m.generation,
                next_segment_id: m.next_segment_id,
                segments,
                payload_indexes: m.payload_indexes,
                next_index_number: m.next_index_number,
                retention: m.retention,
            }
        }
    }
}

/// The manifest of format version 5, read and upgraded (through version 6): its collection
/// configuration had no sparse vectors; everything else is laid out as in version 6.
mod v5 {
    use serde::Deserialize;

    use super::v6::SegmentMeta;
    use super::PayloadIndexDef;
    use crate::config::{HnswConfig, OptimizerConfig, Retention, VectorSpec};

    #[derive(Deserialize)]
    pub struct Config {
        vectors: Vec<VectorSpec>,
        hnsw: HnswConfig,
        optimizer: OptimizerConfig,
    }

    #[derive(Deserialize)]
    pub struct Manifest {
        config: Config,
        checkpoint_seq: u64,
        generation: u64,
        next_segment_id: u64,
        segments: Vec<SegmentMeta>,
        payload_indexes: Vec<PayloadIndexDef>,
        next_index_number: u32,
        retention: Option<Retention>,
    }

    impl From<Manifest> for super::v6::Manifest {
        fn from(m: Manifest) -> Self {
            super::v6::Manifest {
                config: super::v6::Config {
                    vectors: m.config.vectors,
                    sparse: Vec::new(),
                    hnsw: m.config.hnsw,
                    optimizer: m.config.optimizer,
                },
                checkpoint_seq: m.checkpoint_seq,
                generation: m.generation,
                next_segment_id: m.next_segment_id,
                segments: m.segments,
                payload_indexes: m.payload_indexes,
                next_index_number: m.next_index_number,
                retention: m.retention,
            }
        }
    }
}
