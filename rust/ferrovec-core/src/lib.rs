//! ferrovec-core: the storage and search engine behind the `ferrovec` Python package.
//!
//! A [`Store`] is a directory of [`Collection`]s. Each collection keeps its points in immutable,
//! memory-mapped segment files plus a write-ahead log of what came since the last checkpoint.
//! Search is exact here (SIMD kernels from simsimd, blocked matrix products for batches, rayon
//! for parallelism). Nothing in this crate knows about Python.
//!
//! ```
//! use ferrovec_core::{CollectionConfig, Distance, PointId, SearchParams, StorageOptions, Store};
//! let store = Store::in_memory(StorageOptions::default());
//! let col = store
//!     .create_collection("docs", CollectionConfig::new(2, Distance::Dot)?, false)?;
//! col.upsert(&[PointId::Num(1), PointId::Num(2)], &[1.0, 0.0, 0.0, 1.0], None)?;
//! let hits = col.search(&[1.0, 0.1], &SearchParams::default())?;
//! assert_eq!(hits[0].id, PointId::Num(1));
//! # Ok::<(), ferrovec_core::Error>(())
//! ```

#[cfg(not(target_os = "linux"))]
compile_error!(
    "ferrovec supports Linux only: it coordinates processes with open-file-description locks, \
     swaps directories with renameat2 and checks file systems with statfs"
);

#[cfg(target_endian = "big")]
compile_error!(
    "ferrovec maps its little-endian files directly and supports little-endian targets only"
);

// The plain types, leaves of the module graph: a point, the configuration, what a read asks
// for and returns, what `info` reports, payload paths and operations.
pub mod batch;
pub mod config;
pub mod info;
pub mod payload;
pub mod point;
pub mod query;

// The engine, from the bottom up: bytes on disk, the log, segments and their indexes, the
// collection that ties them together, the store of collections and its copies.
pub mod backup;
pub mod bm25;
pub mod cancel;
pub mod check;
pub mod collection;
pub mod distance;
pub mod error;
pub mod filter;
pub mod format;
pub mod index;
pub mod io;
pub mod observe;
pub mod pool;
pub mod repair;
pub mod segment;
pub mod shared;
pub mod snapshot;
pub mod store;
pub mod wal;

pub use batch::{Document, Matrix, SparseInput, VectorData, Vectors};
pub use cancel::Cancel;
pub use collection::{Collection, Group, Lookups};
pub use config::{
    CodeKind, CollectionConfig, Distance, Durability, HnswConfig, Modifier, OptimizerConfig,
    Quantization, Retention, Space, SparseSpec, StorageOptions, Target, VectorSpec,
};
pub use error::{Error, Result};
pub use filter::index::IndexKind;
pub use filter::Filter;
pub use info::{CollectionInfo, PayloadIndexInfo, SegmentInfo};
pub use payload::PayloadOp;
pub use point::{Payload, PointId, SparseVector};
pub use query::{
    Direction, FacetValue, PayloadSelector, QuantizationParams, Record, ScoredPoint, SearchParams,
    Selector,
};
pub use store::Store;
