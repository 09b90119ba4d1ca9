//! Writing a segment's files: once, fsynced, never modified after.

use std::path::Path;

use super::{codes_name, del_name, graph_name, ids_name, pay_name, vec_name, Bitmap, ID_ENTRY};
use crate::config::{is_absent, CodeKind, Space};
use crate::error::Result;
use crate::format::{start_file, write_file, FileKind};
use crate::index::hnsw::Graph;
use crate::io::FileSystem;
use crate::point::{PointId, SparseRef};

/// Rows to write into a new segment.
pub struct SegmentData<'a> {
    pub ids: &'a [PointId],
    /// Every row's values, or `None` when the caller wrote the vectors file itself (a merge
    /// streams it from its inputs: `start_vectors`).
    pub vectors: Option<&'a [f32]>,
    pub payloads: &'a [Option<&'a [u8]>],
    /// Per sparse vector of the collection, one entry per row.
    pub sparse: &'a [Vec<Option<SparseRef<'a>>>],
}

/// The graph of one vector of a segment being written (its codes are written by the merge
/// that built it: `write_code_body`).
pub struct GraphData<'a> {
    pub space: Space,
    pub graph: &'a Graph,
}

/// Write the immutable files of segment `id` (rows of `width` values), with a graph per vector
/// when `graphs` has them. Returns their size.
pub fn write_segment(
    fs: &dyn FileSystem,
    dir: &Path,
    id: u64,
    width: u32,
    data: &SegmentData<'_>,
    graphs: &[GraphData<'_>],
) -> Result<u64> {
    let rows = data.ids.len() as u64;
    let mut total = match data.vectors {
        Some(vectors) => write_file(
            fs,
            &dir.join(vec_name(id)),
            FileKind::Vectors,
            rows,
            width,
            &[bytemuck::cast_slice(vectors)],
        )?,
        None => 0,
    };

    let mut entries = Vec::with_capacity(data.ids.len() * ID_ENTRY);
    let mut heap = Vec::new();
    for id in data.ids {
        match id {
            PointId::Num(n) => {
                entries.extend_from_slice(&[0u8; 8]);
                entries.extend_from_slice(&n.to_le_bytes());
            }
            PointId::Str(s) => {
                entries.extend_from_slice(&[1u8, 0, 0, 0]);
                entries.extend_from_slice(&(s.len() as u32).to_le_bytes());
                entries.extend_from_slice(&(heap.len() as u64).to_le_bytes());
                heap.extend_from_slice(s.as_bytes());
            }
        }
    }
    let mut order: Vec<u32> = (0..rows as u32).collect();
    order.sort_by(|&a, &b| {
        data.ids[a as usize]
            .cmp(&data.ids[b as usize])
            .then(a.cmp(&b))
    });
    let order_bytes: Vec<u8> = order.iter().flat_map(|r| r.to_le_bytes()).collect();
    total += write_file(
        fs,
        &dir.join(ids_name(id)),
        FileKind::Ids,
        rows,
        0,
        &[&entries, &order_bytes, &heap],
    )?;

    let mut offsets = Vec::with_capacity((data.payloads.len() + 1) * 8);
    let mut json = Vec::new();
    offsets.extend_from_slice(&0u64.to_le_bytes());
    for p in data.payloads {
        if let Some(p) = p {
            json.extend_from_slice(p);
        }
        offsets.extend_from_slice(&(json.len() as u64).to_le_bytes());
    }
    total += write_file(
        fs,
        &dir.join(pay_name(id)),
        FileKind::Payloads,
        rows,
        0,
        &[&offsets, &json],
    )?;
    for (k, column) in data.sparse.iter().enumerate() {
        total += super::sparse::write(fs, dir, id, k, column)?;
    }
    for g in graphs {
        let sp = g.space;
        total += write_file(
            fs,
            &dir.join(graph_name(id, sp.index)),
            FileKind::Graph,
            rows,
            sp.dim as u32,
            &[g.graph.as_bytes()],
        )?;
    }
    Ok(total)
}

/// Append vector `sp` of each of `rows` to `out`, absent vectors (NaN) as zeros: what a graph
/// is built and codes are made on (absent rows are never results; `Segment::absent`).
pub fn push_space_values(rows: &[f32], sp: Space, out: &mut Vec<f32>) {
    for row in rows.chunks_exact(sp.stride) {
        let v = &row[sp.offset..sp.offset + sp.dim];
        if is_absent(v) {
            out.extend(std::iter::repeat_n(0.0, sp.dim));
        } else {
            out.extend_from_slice(v);
        }
    }
}

/// Rows lacking vector `sp` (a named vector a point does not have; see `config::is_absent`).
pub fn absent_rows(vectors: &[f32], sp: Space) -> usize {
    vectors
        .chunks_exact(sp.stride)
        .filter(|row| is_absent(&row[sp.offset..]))
        .count()
}

/// Per vector, how many rows lack it; empty when every row has every vector.
pub fn absent_counts(vectors: &[f32], spaces: &[Space]) -> Vec<u64> {
    let counts: Vec<u64> = spaces
        .iter()
        .map(|&sp| absent_rows(vectors, sp) as u64)
        .collect();
    if counts.iter().all(|&c| c == 0) {
        Vec::new()
    } else {
        counts
    }
}

/// Create segment `id`'s vectors file for `rows` rows of `width` values whose bytes have the
/// CRC32C `crc`; the caller writes them, then syncs.
pub fn start_vectors(
    fs: &dyn FileSystem,
    dir: &Path,
    id: u64,
    rows: usize,
    width: usize,
    crc: u32,
) -> Result<Box<dyn crate::io::WriteFile>> {
    start_file(
        fs,
        &dir.join(vec_name(id)),
        FileKind::Vectors,
        rows as u64,
        width as u32,
        (rows * width * 4) as u64,
        crc,
    )
}

/// Write the code file of kind `kind` for vector `sp` of segment `id`, its body (prefix, then
/// `rows` rows) in `parts`. Returns its size.
pub fn write_code_body(
    fs: &dyn FileSystem,
    dir: &Path,
    id: u64,
    sp: Space,
    kind: CodeKind,
    rows: usize,
    parts: &[&[u8]],
) -> Result<u64> {
    write_file(
        fs,
        &dir.join(codes_name(id, sp.index, kind)),
        FileKind::Codes,
        rows as u64,
        sp.dim as u32,
        parts,
    )
}

pub fn write_deleted(
    fs: &dyn FileSystem,
    dir: &Path,
    id: u64,
    generation: u64,
    rows: usize,
    deleted: &Bitmap,
) -> Result<u64> {
    write_file(
        fs,
        &dir.join(del_name(id, generation)),
        FileKind::Deleted,
        rows as u64,
        0,
        &[deleted.as_bytes()],
    )
}
