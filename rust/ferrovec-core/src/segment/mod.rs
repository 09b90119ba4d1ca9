//! Sealed segments: immutable files written once and mapped read-only.
//!
//! A segment `<id>` is these files in the collection's `segments/` directory, each with the
//! common header (`format.rs`):
//! - `<id>.vec`: `rows × width` f32, little-endian, row-major, from byte 64 (rows 4-byte aligned
//!   in the page-aligned mapping); a row holds all of a point's vectors, concatenated in the
//!   collection's order (`width` is the sum of their dimensions);
//! - `<id>.ids`: a fixed 16-byte entry per row (tag u8: 0 number, 1 string; 3 zero bytes; string
//!   length u32; the number, or the string's offset in the heap, u64), then `rows` u32 row numbers
//!   in id order (numbers ascending, then strings bytewise: scroll order, binary-searchable),
//!   then the string heap. Mapped, so opening costs nothing per row;
//! - `<id>.pay`: `rows + 1` u64 offsets into the JSON bytes that follow them; an empty range is a
//!   point without payload;
//! - `<id>.hnsw` (optional): the HNSW graph (`index/hnsw.rs`) of the first vector, mapped on first
//!   search, and `<id>.<k>.hnsw` that of vector `k` > 0 (a segment has graphs for all its
//!   vectors or for none);
//! - `<id>.q8`, `<id>.q4`, `<id>.q1`, then `<id>.<k>.q8` ... (optional, with the graphs of dot
//!   and cosine vectors): the int8, int4 or binary codes the graph is walked on (`index/quant/`);
//! - `<id>.del-<generation>`: a bitmap of rows deleted or replaced after sealing (bit `r % 8` of
//!   byte `r / 8`), written at checkpoints; the manifest names the current one;
//! - `<id>.pidx-<n>`: the segment's payload index for the collection's index definition `n`
//!   (`filter/index.rs`), read whole on first use.

mod bitmap;
pub mod sparse;
mod write;

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::config::{is_absent, CodeKind, Space};
use crate::error::{Error, Result};
use crate::filter::index::FieldIndex;
use crate::format::{read_u32, read_u64, FileKind, Header, HEADER_LEN};
use crate::index::hnsw::{self, Graph};
use crate::index::quant::Codes;
use crate::io::{FileSystem, Mapped, ReadAt};
use crate::point::PointId;

pub use bitmap::Bitmap;
use sparse::SparseFiles;
pub use write::{
    absent_counts, absent_rows, push_space_values, start_vectors, write_code_body, write_deleted,
    write_segment, GraphData, SegmentData,
};

pub(crate) const ID_ENTRY: usize = 16;

pub fn vec_name(id: u64) -> String {
    format!("{id:016}.vec")
}
pub fn ids_name(id: u64) -> String {
    format!("{id:016}.ids")
}
pub fn pay_name(id: u64) -> String {
    format!("{id:016}.pay")
}
/// The graph file of vector `k` of segment `id`.
pub fn graph_name(id: u64, k: usize) -> String {
    match k {
        0 => format!("{id:016}.hnsw"),
        _ => format!("{id:016}.{k}.hnsw"),
    }
}
/// The code file of vector `k` of segment `id`, of codes of `kind`.
pub fn codes_name(id: u64, k: usize, kind: CodeKind) -> String {
    let ext = match kind {
        CodeKind::Int8 => "q8",
        CodeKind::Int4 => "q4",
        CodeKind::Binary => "q1",
    };
    match k {
        0 => format!("{id:016}.{ext}"),
        _ => format!("{id:016}.{k}.{ext}"),
    }
}
pub fn pidx_name(id: u64, number: u32) -> String {
    format!("{id:016}.pidx-{number}")
}
pub fn del_name(id: u64, generation: u64) -> String {
    format!("{id:016}.del-{generation:016}")
}

/// A point id borrowed from a segment; orders exactly as [`PointId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum IdRef<'a> {
    Num(u64),
    Str(&'a str),
}

impl IdRef<'_> {
    pub fn to_owned(self) -> PointId {
        match self {
            IdRef::Num(n) => PointId::Num(n),
            IdRef::Str(s) => PointId::Str(s.to_string()),
        }
    }

    pub fn cmp_id(self, other: &PointId) -> Ordering {
        match (self, other) {
            (IdRef::Num(a), PointId::Num(b)) => a.cmp(b),
            (IdRef::Num(_), PointId::Str(_)) => Ordering::Less,
            (IdRef::Str(_), PointId::Num(_)) => Ordering::Greater,
            (IdRef::Str(a), PointId::Str(b)) => a.cmp(b.as_str()),
        }
    }
}

/// The default of `StorageOptions::rows_from_disk_bytes`: segments whose f32 vectors take at
/// least this many bytes rescore with pread (see `Segment::open`). Measured with
/// `benches/bench_ann.py`: at 1M x 384 (1.5 GiB) pread cost 5% of QPS and kept serving at
/// 579 MiB instead of 1,960 MiB; at 100k x 384 (150 MiB) it cost 35% of QPS to save at most
/// the segment's 150 MiB, so smaller segments read the mapping.
pub const PREAD_MIN_BYTES: u64 = 256 << 20;

/// An open sealed segment. Everything is mapped; nothing is read per row at open.
pub struct Segment {
    pub id: u64,
    pub rows: usize,
    /// Values per row (all of a point's vectors).
    width: usize,
    dir: PathBuf,
    vectors: Mapped,
    /// The vector file opened for pread, in large segments with codes (`rescorer`).
    row_file: Option<Box<dyn ReadAt>>,
    ids: Mapped,
    payloads: Mapped,
    /// One per vector of the collection when the segment is indexed, else empty.
    graphs: Vec<VectorGraph>,
    /// Per vector, the rows lacking it (from the manifest's counts; empty: none) and their
    /// bitmap, found by a scan on first use.
    absent: Vec<(u64, OnceLock<Bitmap>)>,
    /// Payload indexes of this segment, by the number of the collection's index definition:
    /// the file exists; `Some` once read (on first use).
    indexes: Mutex<BTreeMap<u32, Option<Arc<FieldIndex>>>>,
    /// One per sparse vector of the collection.
    sparse: Vec<SparseFiles>,
    /// Bytes of the id map, graphs and codes: what serving keeps resident besides rows read
    /// through the mapping (`collection::budget`); measured when a budget first asks.
    index_bytes: OnceLock<u64>,
    fs: Arc<dyn FileSystem>,
}

/// What the manifest says a segment holds besides its rows: the collection's dense vectors,
/// per vector the codes its graph is walked on (empty: no graphs), per vector the rows lacking
/// it (empty: none), and how many sparse vectors the collection has (the segment has files
/// for each).
#[derive(Clone, Copy)]
pub struct Shape<'a> {
    pub spaces: &'a [Space],
    pub codes: &'a [Option<CodeKind>],
    pub absent: &'a [u64],
    pub sparse: usize,
    /// Rows of at least this many bytes in all are rescored with pread (with codes).
    pub rows_from_disk: u64,
}

/// The graph of one vector of a segment, and its codes: both mapped on first use.
struct VectorGraph {
    space: Space,
    /// Loaded on first use. A failure is not kept: an I/O error may clear, and must be reported
    /// as what it was each time, not as damage.
    graph: OnceLock<Arc<Graph>>,
    code_kind: Option<CodeKind>,
    codes: OnceLock<Mapped>,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("id", &self.id)
            .field("rows", &self.rows)
            .field("has_graph", &self.has_graph())
            .finish_non_exhaustive()
    }
}

impl Segment {
    /// Map a segment's files and check their headers and sizes. Whole-file checksums are checked
    /// only by [`Segment::verify`]; graphs and codes are mapped on first use. `spaces` are the
    /// collection's vectors; `codes` says, per vector, which codes the segment's graph of it is
    /// walked on, and is empty for a segment without graphs; `absent` counts, per vector, the
    /// rows that lack it (empty: none do).
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        id: u64,
        rows: usize,
        shape: &Shape<'_>,
    ) -> Result<Arc<Self>> {
        let (spaces, codes, absent) = (shape.spaces, shape.codes, shape.absent);
        let width = spaces.first().map_or(0, |s| s.stride);
        let vec_path = dir.join(vec_name(id));
        let expect_bytes = (rows as u64)
            .checked_mul(width as u64 * 4)
            .ok_or_else(|| Error::corrupt(&vec_path, "row count overflows"))?;
        let vectors = map_checked(fs.as_ref(), &vec_path, FileKind::Vectors, |h, body| {
            if h.count != rows as u64
                || h.dim as usize != width
                || body.len() as u64 != expect_bytes
            {
                return Some(format!(
                    "vector file holds {} rows of width {} in {} bytes; the manifest expects {rows} rows of width {width}",
                    h.count,
                    h.dim,
                    body.len()
                ));
            }
            bytemuck::try_cast_slice::<u8, f32>(body)
                .is_err()
                .then(|| "vector data is not 4-byte aligned".to_string())
        })?;
        if !codes.is_empty() && codes.len() != spaces.len()
            || !absent.is_empty() && absent.len() != spaces.len()
            || absent.iter().any(|&a| a > rows as u64)
        {
            return Err(Error::corrupt(
                &vec_path,
                format!(
                    "the manifest lists {} graphs and {} absent counts for a segment of {} vectors and {rows} rows",
                    codes.len(),
                    absent.len(),
                    spaces.len()
                ),
            ));
        }
        let ids = map_checked(
            fs.as_ref(),
            &dir.join(ids_name(id)),
            FileKind::Ids,
            |h, body| {
                (h.count != rows as u64
                    || (body.len() as u64) < rows as u64 * (ID_ENTRY as u64 + 4))
                    .then(|| {
                        format!(
                            "id map is too short for {rows} rows, or holds {} rows",
                            h.count
                        )
                    })
            },
        )?;
        let payloads = map_checked(
            fs.as_ref(),
            &dir.join(pay_name(id)),
            FileKind::Payloads,
            |h, body| {
                (h.count != rows as u64 || (body.len() as u64) < (rows as u64 + 1) * 8)
                    .then(|| format!("payload file too short for {rows} rows"))
            },
        )?;
        // Searches walk the codes and rescore a few rows per query. In a large segment those
        // rows are read with pread: a fault on the mapping maps up to 64 KiB of cached pages
        // around each row (the kernel's fault-around, which MADV_RANDOM does not turn off), so
        // serving would soon hold all the f32 vectors resident on top of the codes.
        let row_file = if codes.iter().any(Option::is_some) && expect_bytes >= shape.rows_from_disk
        {
            Some(fs.open_read(&vec_path)?)
        } else {
            None
        };
        let sparse = (0..shape.sparse)
            .map(|k| SparseFiles::open(fs.as_ref(), dir, id, k, rows))
            .collect::<Result<Vec<_>>>()?;
        let graphs = spaces
            .iter()
            .zip(codes)
            .map(|(&space, &code_kind)| VectorGraph {
                space,
                graph: OnceLock::new(),
                code_kind,
                codes: OnceLock::new(),
            })
            .collect();
        Ok(Arc::new(Segment {
            id,
            rows,
            width,
            dir: dir.to_path_buf(),
            vectors,
            row_file,
            ids,
            payloads,
            graphs,
            absent: absent.iter().map(|&a| (a, OnceLock::new())).collect(),
            indexes: Mutex::new(BTreeMap::new()),
            sparse,
            index_bytes: OnceLock::new(),
            fs,
        }))
    }

    /// Bytes of the id map, graphs and codes (see `index_bytes`).
    pub fn resident_index_bytes(&self) -> u64 {
        *self.index_bytes.get_or_init(|| {
            // Sizes for the memory budget only: a graph or code file that cannot be read is
            // reported as what it is at its first use (they are mapped then), not here.
            let size = |name: String| self.fs.file_len(&self.dir.join(name)).unwrap_or(0);
            let mut bytes = self.ids.len() as u64;
            for (k, g) in self.graphs.iter().enumerate() {
                bytes += size(graph_name(self.id, k));
                if let Some(kind) = g.code_kind {
                    bytes += size(codes_name(self.id, k, kind));
                }
            }
            bytes
        })
    }

    /// Bytes of f32 rows a search reads through the mapping: all of them, unless rescoring
    /// reads them from disk.
    pub fn resident_row_bytes(&self) -> u64 {
        if self.row_file.is_some() {
            0
        } else {
            std::mem::size_of_val(self.vectors()) as u64
        }
    }

    /// Per vector, how many rows lack it (empty: none do), as the manifest records it.
    pub fn absent_counts(&self) -> Vec<u64> {
        self.absent.iter().map(|(a, _)| *a).collect()
    }

    /// The rows lacking vector `sp`, if any do: found by a scan of the vector file on first use
    /// (only segments of named vectors, some absent, ever scan).
    pub fn absent(&self, sp: Space) -> Option<&Bitmap> {
        let (count, bitmap) = self.absent.get(sp.index)?;
        if *count == 0 {
            return None;
        }
        Some(bitmap.get_or_init(|| {
            let mut b = Bitmap::new(self.rows);
            for (r, row) in self.vectors().chunks_exact(self.width).enumerate() {
                if is_absent(&row[sp.offset..]) {
                    b.set(r);
                }
            }
            b
        }))
    }

    /// All rows, row-major (each holds all of a point's vectors).
    pub fn vectors(&self) -> &[f32] {
        // Checked in `open`: length and alignment.
        bytemuck::try_cast_slice(&self.vectors[HEADER_LEN..]).unwrap_or(&[])
    }

    /// Drop this process's resident pages of rows `rows` of the vector file: a merge reads
    /// its inputs' rows once, and would otherwise keep them all resident beside the merged
    /// copy (see `Mapped::release`).
    pub fn release_rows(&self, rows: std::ops::Range<usize>) {
        let bytes = self.width * 4;
        self.vectors
            .release(HEADER_LEN + rows.start * bytes..HEADER_LEN + rows.end * bytes);
    }

    /// Row `row`: all of a point's vectors.
    pub fn vector(&self, row: usize) -> &[f32] {
        &self.vectors()[row * self.width..(row + 1) * self.width]
    }

    /// Exact distances from `q` to vector `sp` of rows of this segment, for rescoring a search
    /// walked on the codes. Rows are read with pread in large segments (see `open`), else from
    /// the mapping.
    pub fn rescorer<'a>(&'a self, sp: Space, q: &'a [f32]) -> impl FnMut(u32) -> Result<f32> + 'a {
        // Only the pread path needs a buffer (allocated on its first row).
        let mut buf = Vec::new();
        move |row| {
            let row = row as usize;
            if row >= self.rows {
                return Err(Error::corrupt(
                    self.dir.join(vec_name(self.id)),
                    format!("row {row} of {} asked for", self.rows),
                ));
            }
            match &self.row_file {
                Some(f) => {
                    buf.resize(sp.dim, 0f32);
                    let at = HEADER_LEN as u64 + ((row * self.width + sp.offset) * 4) as u64;
                    f.read_exact_at(bytemuck::cast_slice_mut(&mut buf), at)?;
                    Ok(hnsw::dist(sp.distance, q, &buf))
                }
                None => {
                    let v = &self.vector(row)[sp.offset..sp.offset + sp.dim];
                    Ok(hnsw::dist(sp.distance, q, v))
                }
            }
        }
    }

    /// Whether rescoring reads this segment's f32 rows from disk (`pread`) rather than from
    /// the mapping: large segments with codes (see `open`).
    pub fn reads_rows_from_disk(&self) -> bool {
        self.row_file.is_some()
    }

    /// How many sparse vectors the segment has files for.
    pub fn sparse_count(&self) -> usize {
        self.sparse.len()
    }

    /// Sparse vector `k`'s files.
    pub fn sparse(&self, k: usize) -> Option<&SparseFiles> {
        self.sparse.get(k)
    }

    /// The segment has graphs (one per vector).
    pub fn has_graph(&self) -> bool {
        !self.graphs.is_empty()
    }

    /// The graph of vector `k`, mapped on first use.
    pub fn graph(&self, k: usize) -> Result<Option<Arc<Graph>>> {
        let Some(vg) = self.graphs.get(k) else {
            return Ok(None);
        };
        if let Some(g) = vg.graph.get() {
            return Ok(Some(g.clone()));
        }
        let path = self.dir.join(graph_name(self.id, k));
        let load = || -> Result<Arc<Graph>> {
            let map = self.fs.map(&path)?;
            let h = Header::decode(FileKind::Graph, &map, &path)?;
            if h.count != self.rows as u64
                || h.dim as usize != vg.space.dim
                || map.len() as u64 != HEADER_LEN as u64 + h.body_len
            {
                return Err(Error::corrupt(
                    &path,
                    "graph file does not match its segment",
                ));
            }
            Ok(Arc::new(Graph::from_mapped(
                map, HEADER_LEN, self.rows, &path,
            )?))
        };
        // Two first uses at once may both load; one result is kept.
        let loaded = load()?;
        Ok(Some(vg.graph.get_or_init(|| loaded).clone()))
    }

    /// The codes of vector `k` its graph is walked on (`index/quant/`), mapped on first use;
    /// `None` if the segment has none (no graph, or a graph walked on f32).
    pub fn codes(&self, k: usize) -> Result<Option<Codes<'_>>> {
        let Some((vg, kind)) = self
            .graphs
            .get(k)
            .and_then(|g| g.code_kind.map(|kind| (g, kind)))
        else {
            return Ok(None);
        };
        let dim = vg.space.dim;
        let path = self.dir.join(codes_name(self.id, k, kind));
        let parse = |map: &'_ Mapped| -> Result<()> {
            let (h, body) = Header::decode_whole(FileKind::Codes, map, &path, false)?;
            if h.count != self.rows as u64 || h.dim as usize != dim {
                return Err(Error::corrupt(
                    &path,
                    "code file does not match its segment",
                ));
            }
            Codes::parse(kind, dim, self.rows, body)
                .map(|_| ())
                .map_err(|e| Error::corrupt(&path, format!("code file: {e}")))
        };
        let map = match vg.codes.get() {
            Some(map) => map,
            None => {
                let map = self.fs.map(&path)?;
                parse(&map)?;
                vg.codes.get_or_init(|| map)
            }
        };
        // Checked when it was mapped.
        Codes::parse(kind, dim, self.rows, &map[HEADER_LEN..])
            .map(Some)
            .map_err(|e| Error::corrupt(&path, format!("code file: {e}")))
    }

    /// The kind of codes vector `k`'s graph is walked on, if any.
    pub fn code_kind(&self, k: usize) -> Option<CodeKind> {
        self.graphs.get(k).and_then(|g| g.code_kind)
    }

    /// Declare the payload index files this segment has (from the manifest).
    pub fn set_index_files(&self, numbers: &[u32]) {
        *self.indexes.lock() = numbers.iter().map(|&n| (n, None)).collect();
    }

    /// Make the payload indexes `numbers`, keeping those already loaded.
    pub fn keep_index_files(&self, numbers: &[u32]) {
        let mut idx = self.indexes.lock();
        idx.retain(|n, _| numbers.contains(n));
        for &n in numbers {
            idx.entry(n).or_insert(None);
        }
    }

    pub fn index_numbers(&self) -> Vec<u32> {
        self.indexes.lock().keys().copied().collect()
    }

    /// Install an index just built (its file written) for definition `number`.
    pub fn add_index(&self, number: u32, index: Arc<FieldIndex>) {
        self.indexes.lock().insert(number, Some(index));
    }

    pub fn remove_index(&self, number: u32) {
        self.indexes.lock().remove(&number);
    }

    /// The payload index for definition `number`, read from its file on first use.
    pub fn payload_index(&self, number: u32) -> Result<Option<Arc<FieldIndex>>> {
        match self.indexes.lock().get(&number) {
            None => return Ok(None),
            Some(Some(i)) => return Ok(Some(i.clone())),
            Some(None) => {}
        }
        // Read without the lock held; two first uses at once both read, one result is kept.
        let path = self.dir.join(pidx_name(self.id, number));
        let bytes = self.fs.read(&path)?;
        let idx = Arc::new(FieldIndex::decode_file(&bytes, &path, self.rows)?);
        if let Some(slot) = self.indexes.lock().get_mut(&number) {
            *slot = Some(idx.clone());
        }
        Ok(Some(idx))
    }

    /// Payload of `row`, parsed (an absent payload is an empty object).
    pub fn payload_map(&self, row: usize) -> Result<serde_json::Map<String, serde_json::Value>> {
        match self.payload(row)? {
            None => Ok(serde_json::Map::new()),
            Some(b) => serde_json::from_slice(b).map_err(|e| {
                Error::corrupt(
                    self.dir.join(pay_name(self.id)),
                    format!("payload of row {row} is not a JSON object: {e}"),
                )
            }),
        }
    }

    fn ids_body(&self) -> &[u8] {
        &self.ids[HEADER_LEN..]
    }

    fn corrupt_ids(&self, detail: impl Into<String>) -> Error {
        Error::corrupt(self.dir.join(ids_name(self.id)), detail)
    }

    /// The id of `row`, borrowed from the mapping.
    pub fn id_ref(&self, row: usize) -> Result<IdRef<'_>> {
        let body = self.ids_body();
        let e = &body[row * ID_ENTRY..(row + 1) * ID_ENTRY];
        let value = read_u64(e, 8);
        match e[0] {
            0 => Ok(IdRef::Num(value)),
            1 => {
                let len = u64::from(read_u32(e, 4));
                let heap_start = (self.rows * (ID_ENTRY + 4)) as u64;
                let start = heap_start.checked_add(value);
                let end = start.and_then(|s| s.checked_add(len));
                let (Some(s), Some(end)) = (start, end) else {
                    return Err(
                        self.corrupt_ids(format!("string id of row {row} is outside the file"))
                    );
                };
                if end > body.len() as u64 {
                    return Err(
                        self.corrupt_ids(format!("string id of row {row} is outside the file"))
                    );
                }
                std::str::from_utf8(&body[s as usize..end as usize])
                    .map(IdRef::Str)
                    .map_err(|_| self.corrupt_ids(format!("string id of row {row} is not UTF-8")))
            }
            t => Err(self.corrupt_ids(format!("unknown id tag {t} in row {row}"))),
        }
    }

    pub fn id(&self, row: usize) -> Result<PointId> {
        Ok(self.id_ref(row)?.to_owned())
    }

    /// The row at position `i` of id order.
    pub fn row_in_order(&self, i: usize) -> Result<usize> {
        let at = self.rows * ID_ENTRY + i * 4;
        let row = read_u32(self.ids_body(), at) as usize;
        if row >= self.rows {
            return Err(self.corrupt_ids(format!("row {row} in the order table is out of range")));
        }
        Ok(row)
    }

    /// Position in id order of the first id not less than `id`.
    pub fn lower_bound(&self, id: &PointId) -> Result<usize> {
        let (mut lo, mut hi) = (0, self.rows);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.id_ref(self.row_in_order(mid)?)?.cmp_id(id) == Ordering::Less {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Every row holding `id` (an id can appear more than once: replaced copies stay as
    /// deleted rows until a vacuum).
    pub fn find(&self, id: &PointId) -> Result<Vec<usize>> {
        let mut out = Vec::new();
        let mut i = self.lower_bound(id)?;
        while i < self.rows {
            let row = self.row_in_order(i)?;
            if self.id_ref(row)?.cmp_id(id) != Ordering::Equal {
                break;
            }
            out.push(row);
            i += 1;
        }
        Ok(out)
    }

    /// The JSON bytes of a row's payload, or `None` if the point has none.
    pub fn payload(&self, row: usize) -> Result<Option<&[u8]>> {
        let body = &self.payloads[HEADER_LEN..];
        let at = row * 8;
        let start = read_u64(body, at);
        let end = read_u64(body, at + 8);
        let data_start = (self.rows as u64 + 1) * 8;
        let (Some(s), Some(e)) = (data_start.checked_add(start), data_start.checked_add(end))
        else {
            return Err(Error::corrupt(
                self.dir.join(pay_name(self.id)),
                "payload offset overflows",
            ));
        };
        if s > e || e > body.len() as u64 {
            return Err(Error::corrupt(
                self.dir.join(pay_name(self.id)),
                format!("payload of row {row} has offsets {start}..{end} outside the file"),
            ));
        }
        Ok((s < e).then(|| &body[s as usize..e as usize]))
    }

    /// Check the whole-file checksums of the segment's files.
    pub fn verify(&self, deleted: Option<&str>) -> Result<()> {
        let codes: Vec<_> = self.graphs.iter().map(|g| g.code_kind).collect();
        let files = files_of(
            self.id,
            &codes,
            deleted,
            self.sparse.len(),
            &self.index_numbers(),
        );
        for (kind, name) in files {
            let path = self.dir.join(name);
            let bytes = self.fs.map(&path)?;
            Header::decode_whole(kind, &bytes, &path, true)?;
        }
        Ok(())
    }
}

/// The files of segment `id` and their kinds: its vectors, ids and payloads; per vector, its
/// graph and (where `codes` names a kind) its codes; its deletion bitmap; each of its `sparse`
/// sparse vectors' files; each of its payload indexes.
pub fn files_of(
    id: u64,
    codes: &[Option<CodeKind>],
    deleted: Option<&str>,
    sparse: usize,
    indexes: &[u32],
) -> Vec<(FileKind, String)> {
    let mut files = vec![
        (FileKind::Vectors, vec_name(id)),
        (FileKind::Ids, ids_name(id)),
        (FileKind::Payloads, pay_name(id)),
    ];
    for (k, &kind) in codes.iter().enumerate() {
        files.push((FileKind::Graph, graph_name(id, k)));
        if let Some(kind) = kind {
            files.push((FileKind::Codes, codes_name(id, k, kind)));
        }
    }
    if let Some(d) = deleted {
        files.push((FileKind::Deleted, d.to_string()));
    }
    for k in 0..sparse {
        files.push((FileKind::SparseVectors, sparse::vectors_name(id, k)));
        files.push((FileKind::SparseIndex, sparse::index_name(id, k)));
    }
    for &n in indexes {
        files.push((FileKind::PayloadIndex, pidx_name(id, n)));
    }
    files
}

/// Map `path`, a file of `kind`, and check its header and size; `wrong` says what is wrong
/// with a header and body that decode, if anything.
fn map_checked(
    fs: &dyn FileSystem,
    path: &Path,
    kind: FileKind,
    wrong: impl FnOnce(&Header, &[u8]) -> Option<String>,
) -> Result<Mapped> {
    let map = fs.map(path)?;
    let (h, body) = Header::decode_whole(kind, &map, path, false)?;
    match wrong(&h, body) {
        Some(detail) => Err(Error::corrupt(path, detail)),
        None => Ok(map),
    }
}

pub fn read_deleted(fs: &dyn FileSystem, dir: &Path, name: &str, rows: usize) -> Result<Bitmap> {
    let path = dir.join(name);
    let bytes = fs.read(&path)?;
    let (h, body) = Header::decode_whole(FileKind::Deleted, &bytes, &path, false)?;
    if h.count != rows as u64 || body.len() != rows.div_ceil(8) {
        return Err(Error::corrupt(
            &path,
            format!("deletion bitmap covers {} rows, expected {rows}", h.count),
        ));
    }
    Ok(Bitmap::from_bytes(body.to_vec()))
}

#[cfg(test)]
mod tests;
