//! Vector indexes. `hnsw` is the approximate graph index of sealed segments.

pub mod hnsw;
pub mod quant;
