//! A segment's sparse vectors, two files per sparse vector `k` of the collection:
//!
//! ```text
//! <id>.s<k>.spv   the vectors by row:   present bitmap (⌈rows/8⌉ bytes, padded to 8) |
//!                                       offsets u64 × (rows + 1) | indices u32 × nnz |
//!                                       values f32 × nnz
//! <id>.s<k>.spi   the inverted index:   dims D u64 | dims u32 × D (ascending, padded to 8) |
//!                                       offsets u64 × (D + 1) | rows u32 × P | values f32 × P
//! ```
//! Both behind the common header (count = rows), mapped, checksummed by `verify`. A row's
//! vector is `indices[offsets[r]..offsets[r + 1]]` (sorted), present if its bit is set; a
//! dimension's posting list holds the rows that have it, ascending, with their values.

use std::cell::RefCell;
use std::path::Path;
use std::sync::OnceLock;

use super::Bitmap;
use crate::error::{Error, Result};
use crate::format::{read_u64, write_file, FileKind, Header, HEADER_LEN};
use crate::io::{FileSystem, Mapped};
use crate::point::{SparseRef, SparseVector};

pub fn vectors_name(id: u64, k: usize) -> String {
    format!("{id:016}.s{k}.spv")
}

pub fn index_name(id: u64, k: usize) -> String {
    format!("{id:016}.s{k}.spi")
}

fn padded(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Write sparse vector `k` of segment `id`'s rows (one entry per row); returns the bytes.
pub fn write(
    fs: &dyn FileSystem,
    dir: &Path,
    id: u64,
    k: usize,
    rows: &[Option<SparseRef<'_>>],
) -> Result<u64> {
    let n = rows.len();
    let mut present = vec![0u8; padded(n.div_ceil(8))];
    let mut offsets: Vec<u64> = Vec::with_capacity(n + 1);
    let mut indices: Vec<u32> = Vec::new();
    let mut values: Vec<f32> = Vec::new();
    offsets.push(0);
    for (r, v) in rows.iter().enumerate() {
        if let Some(v) = v {
            present[r / 8] |= 1 << (r % 8);
            indices.extend_from_slice(v.indices);
            values.extend_from_slice(v.values);
        }
        offsets.push(indices.len() as u64);
    }
    let mut total = write_file(
        fs,
        &dir.join(vectors_name(id, k)),
        FileKind::SparseVectors,
        n as u64,
        0,
        &[
            &present,
            bytemuck::cast_slice(&offsets),
            bytemuck::cast_slice(&indices),
            bytemuck::cast_slice(&values),
        ],
    )?;

    // The inverted index: postings by dimension, rows ascending within each.
    let mut order: Vec<(u32, u32, f32)> = Vec::with_capacity(indices.len());
    for (r, v) in rows.iter().enumerate() {
        if let Some(v) = v {
            for (&d, &x) in v.indices.iter().zip(v.values) {
                order.push((d, r as u32, x));
            }
        }
    }
    order.sort_unstable_by_key(|e| (e.0, e.1));
    let mut dims: Vec<u32> = Vec::new();
    let mut dim_offsets: Vec<u64> = Vec::new();
    for (i, e) in order.iter().enumerate() {
        if dims.last() != Some(&e.0) {
            dims.push(e.0);
            dim_offsets.push(i as u64);
        }
    }
    dim_offsets.push(order.len() as u64);
    let count = (dims.len() as u64).to_le_bytes();
    let mut dim_bytes: Vec<u8> = bytemuck::cast_slice(&dims).to_vec();
    dim_bytes.resize(padded(dim_bytes.len()), 0);
    let post_rows: Vec<u32> = order.iter().map(|e| e.1).collect();
    let post_values: Vec<f32> = order.iter().map(|e| e.2).collect();
    total += write_file(
        fs,
        &dir.join(index_name(id, k)),
        FileKind::SparseIndex,
        n as u64,
        0,
        &[
            &count,
            &dim_bytes,
            bytemuck::cast_slice(&dim_offsets),
            bytemuck::cast_slice(&post_rows),
            bytemuck::cast_slice(&post_values),
        ],
    )?;
    Ok(total)
}

/// One sparse vector of an open segment: both files mapped and their shapes checked.
pub struct SparseFiles {
    vectors: Mapped,
    index: Mapped,
    rows: usize,
    /// Byte offsets (in the mapped files) of each part.
    offsets_at: usize,
    indices_at: usize,
    values_at: usize,
    nnz: usize,
    dims_at: usize,
    dims: usize,
    dim_offsets_at: usize,
    post_rows_at: usize,
    post_values_at: usize,
    postings: usize,
    /// Per dimension (in `dims` order), the least and the greatest value of its postings:
    /// bounds for pruning, computed on the first search that needs them.
    ranges: OnceLock<Vec<(f32, f32)>>,
}

/// Where a pruned search puts what it finds: the best candidates so far, and the score a
/// candidate must reach to enter them.
pub trait Sink {
    fn floor(&self) -> f32;
    fn push(&mut self, row: u32, score: f32);
}

/// One dimension of a query in a segment: its postings (a cursor into them), its weight, and
/// the most it can add to a score.
struct Term {
    next: usize,
    end: usize,
    weight: f32,
    most: f32,
}

impl SparseFiles {
    pub fn open(fs: &dyn FileSystem, dir: &Path, id: u64, k: usize, rows: usize) -> Result<Self> {
        let vpath = dir.join(vectors_name(id, k));
        let vectors = fs.map(&vpath)?;
        let (h, body) = Header::decode_whole(FileKind::SparseVectors, &vectors, &vpath, false)?;
        let bad = |path: &Path, d: String| Error::corrupt(path, d);
        // Every count read from a file is checked against the file's size before any
        // arithmetic, so a damaged one is refused, never overflows.
        if rows > body.len() / 8 {
            return Err(bad(
                &vpath,
                format!(
                    "sparse vector file of {} bytes cannot hold {rows} rows",
                    body.len()
                ),
            ));
        }
        let head = padded(rows.div_ceil(8)) + 8 * (rows + 1);
        if h.count != rows as u64 || body.len() < head {
            return Err(bad(
                &vpath,
                format!(
                    "sparse vector file holds {} rows, the manifest {rows}",
                    h.count
                ),
            ));
        }
        let offsets_at = HEADER_LEN + padded(rows.div_ceil(8));
        let nnz = read_u64(&vectors, offsets_at + 8 * rows);
        if nnz > (body.len() / 8) as u64 || body.len() != head + 8 * nnz as usize {
            return Err(bad(
                &vpath,
                format!(
                    "sparse vector file is {} bytes for {nnz} entries",
                    body.len()
                ),
            ));
        }
        let ipath = dir.join(index_name(id, k));
        let index = fs.map(&ipath)?;
        let (h, body) = Header::decode_whole(FileKind::SparseIndex, &index, &ipath, false)?;
        if h.count != rows as u64 || body.len() < 8 {
            return Err(bad(&ipath, "sparse index too short".into()));
        }
        let nnz = nnz as usize;
        let dims = read_u64(&index, HEADER_LEN);
        if dims > (body.len() / 12) as u64 {
            return Err(bad(
                &ipath,
                format!(
                    "sparse index of {} bytes cannot hold {dims} dimensions",
                    body.len()
                ),
            ));
        }
        let dims = dims as usize;
        let dims_at = HEADER_LEN + 8;
        let dim_offsets_at = dims_at + padded(dims * 4);
        let head = 8 + padded(dims * 4) + 8 * (dims + 1);
        if body.len() < head {
            return Err(bad(
                &ipath,
                format!("sparse index too short for {dims} dimensions"),
            ));
        }
        let postings = read_u64(&index, dim_offsets_at + 8 * dims);
        if postings != nnz as u64 || body.len() != head + 8 * nnz {
            return Err(bad(
                &ipath,
                format!("sparse index holds {postings} postings, its vectors {nnz}"),
            ));
        }
        let files = SparseFiles {
            vectors,
            index,
            rows,
            offsets_at,
            indices_at: offsets_at + 8 * (rows + 1),
            values_at: offsets_at + 8 * (rows + 1) + 4 * nnz,
            nnz,
            dims_at,
            dims,
            dim_offsets_at,
            post_rows_at: dim_offsets_at + 8 * (dims + 1),
            post_values_at: dim_offsets_at + 8 * (dims + 1) + 4 * nnz,
            postings: nnz,
            ranges: OnceLock::new(),
        };
        // Casts of the parts must succeed (alignment): try each once now.
        files.u64s(&files.vectors, files.offsets_at, rows + 1, &vpath)?;
        files.u32s(&files.vectors, files.indices_at, nnz, &vpath)?;
        files.u64s(&files.index, files.dim_offsets_at, dims + 1, &ipath)?;
        files.u32s(&files.index, files.post_rows_at, nnz, &ipath)?;
        Ok(files)
    }

    fn u64s<'a>(&self, m: &'a Mapped, at: usize, n: usize, p: &Path) -> Result<&'a [u64]> {
        n.checked_mul(8)
            .and_then(|len| at.checked_add(len))
            .and_then(|end| m.get(at..end))
            .and_then(|b| bytemuck::try_cast_slice(b).ok())
            .ok_or_else(|| Error::corrupt(p, "sparse file part out of bounds or misaligned"))
    }

    fn u32s<'a>(&self, m: &'a Mapped, at: usize, n: usize, p: &Path) -> Result<&'a [u32]> {
        n.checked_mul(4)
            .and_then(|len| at.checked_add(len))
            .and_then(|end| m.get(at..end))
            .and_then(|b| bytemuck::try_cast_slice(b).ok())
            .ok_or_else(|| Error::corrupt(p, "sparse file part out of bounds or misaligned"))
    }

    fn f32s<'a>(&self, m: &'a Mapped, at: usize, n: usize, p: &Path) -> Result<&'a [f32]> {
        n.checked_mul(4)
            .and_then(|len| at.checked_add(len))
            .and_then(|end| m.get(at..end))
            .and_then(|b| bytemuck::try_cast_slice(b).ok())
            .ok_or_else(|| Error::corrupt(p, "sparse file part out of bounds or misaligned"))
    }

    /// Row `r`'s vector, if it has one.
    pub fn get(&self, r: usize) -> Result<Option<SparseRef<'_>>> {
        let p = Path::new("sparse vectors");
        if r >= self.rows || self.vectors[HEADER_LEN + r / 8] & (1 << (r % 8)) == 0 {
            return Ok(None);
        }
        let offs = self.u64s(&self.vectors, self.offsets_at, self.rows + 1, p)?;
        let (s, e) = (offs[r] as usize, offs[r + 1] as usize);
        if s > e || e > self.nnz {
            return Err(Error::corrupt(
                p,
                format!("sparse row {r} has offsets {s}..{e}"),
            ));
        }
        let indices = self.u32s(&self.vectors, self.indices_at, self.nnz, p)?;
        let values = self.f32s(&self.vectors, self.values_at, self.nnz, p)?;
        Ok(Some(SparseRef {
            indices: &indices[s..e],
            values: &values[s..e],
        }))
    }

    /// Each dimension with the number of rows that have it (live or not).
    pub fn dims(&self) -> Result<Vec<(u32, u32)>> {
        let p = Path::new("sparse index");
        let dims = self.u32s(&self.index, self.dims_at, self.dims, p)?;
        let offs = self.u64s(&self.index, self.dim_offsets_at, self.dims + 1, p)?;
        Ok(dims
            .iter()
            .enumerate()
            .map(|(i, &d)| (d, offs[i + 1].saturating_sub(offs[i]) as u32))
            .collect())
    }

    /// Call `f(row, score)` for every row sharing a dimension with `q`, its score the dot
    /// product over the shared dimensions (each row once, in no particular order).
    pub fn score(&self, q: &SparseVector, mut f: impl FnMut(u32, f32)) -> Result<()> {
        let p = Path::new("sparse index");
        let dims = self.u32s(&self.index, self.dims_at, self.dims, p)?;
        let offs = self.u64s(&self.index, self.dim_offsets_at, self.dims + 1, p)?;
        let rows = self.u32s(&self.index, self.post_rows_at, self.postings, p)?;
        let values = self.f32s(&self.index, self.post_values_at, self.postings, p)?;
        ACCUMULATOR.with(|acc| {
            let mut acc = acc.borrow_mut();
            acc.start(self.rows);
            for (&d, &w) in q.indices.iter().zip(&q.values) {
                let Ok(i) = dims.binary_search(&d) else {
                    continue;
                };
                let (s, e) = (offs[i] as usize, (offs[i + 1] as usize).min(self.postings));
                for (&r, &x) in rows[s.min(e)..e].iter().zip(&values[s.min(e)..e]) {
                    acc.add(r, w * x);
                }
            }
            acc.drain(&mut f);
        });
        Ok(())
    }

    fn ranges(&self) -> Result<&[(f32, f32)]> {
        if let Some(r) = self.ranges.get() {
            return Ok(r);
        }
        let p = Path::new("sparse index");
        let offs = self.u64s(&self.index, self.dim_offsets_at, self.dims + 1, p)?;
        let values = self.f32s(&self.index, self.post_values_at, self.postings, p)?;
        let ranges = (0..self.dims)
            .map(|i| {
                let (s, e) = (offs[i] as usize, (offs[i + 1] as usize).min(self.postings));
                values[s.min(e)..e]
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                        (lo.min(v), hi.max(v))
                    })
            })
            .collect();
        Ok(self.ranges.get_or_init(|| ranges))
    }

    /// The best rows for `q` into `sink`, pruned (MaxScore, document at a time): the posting
    /// lists are merged by row, and once the sink's floor exceeds what the terms of smallest
    /// bound could add together, rows only they reach are skipped, and they are probed (by a
    /// galloping search) only for rows the other terms make promising. Exact: a row is skipped
    /// only when its best possible score is below the floor. Returns false, searching
    /// nothing, when a weight or value involved is negative (bounds would not hold); BM25's
    /// never are.
    pub fn top(
        &self,
        q: &SparseVector,
        accept: &dyn Fn(u32) -> bool,
        sink: &mut dyn Sink,
    ) -> Result<bool> {
        let p = Path::new("sparse index");
        let dims = self.u32s(&self.index, self.dims_at, self.dims, p)?;
        let offs = self.u64s(&self.index, self.dim_offsets_at, self.dims + 1, p)?;
        let rows = self.u32s(&self.index, self.post_rows_at, self.postings, p)?;
        let values = self.f32s(&self.index, self.post_values_at, self.postings, p)?;
        let ranges = self.ranges()?;
        let mut terms: Vec<Term> = Vec::with_capacity(q.len());
        for (&d, &w) in q.indices.iter().zip(&q.values) {
            let Ok(i) = dims.binary_search(&d) else {
                continue;
            };
            let (lo, hi) = ranges[i];
            if w < 0.0 || lo < 0.0 {
                return Ok(false);
            }
            let (s, e) = (offs[i] as usize, (offs[i + 1] as usize).min(self.postings));
            terms.push(Term {
                next: s.min(e),
                end: e,
                weight: w,
                most: w * hi,
            });
        }
        // Smallest bound first; bound[i]: what terms 0..=i can add together, at most.
        terms.sort_by(|a, b| a.most.total_cmp(&b.most));
        let bound: Vec<f32> = terms
            .iter()
            .scan(0.0f32, |sum, t| {
                *sum += t.most;
                Some(*sum)
            })
            .collect();
        // Terms before `essential` cannot lift a row above the floor on their own.
        let mut essential = 0;
        loop {
            let floor = sink.floor();
            while essential < terms.len() && bound[essential] < floor {
                essential += 1;
            }
            let Some(row) = terms[essential..]
                .iter()
                .filter(|t| t.next < t.end)
                .map(|t| rows[t.next])
                .min()
            else {
                return Ok(true);
            };
            let mut score = 0.0f32;
            for t in &mut terms[essential..] {
                if t.next < t.end && rows[t.next] == row {
                    score += t.weight * values[t.next];
                    t.next += 1;
                }
            }
            for i in (0..essential).rev() {
                if score + bound[i] < floor {
                    break;
                }
                let t = &mut terms[i];
                t.next += rows[t.next..t.end].partition_point(|&r| r < row);
                if t.next < t.end && rows[t.next] == row {
                    score += t.weight * values[t.next];
                    t.next += 1;
                }
            }
            // A row number past the segment is a damaged posting: never a result.
            if score >= floor && (row as usize) < self.rows && accept(row) {
                sink.push(row, score);
            }
        }
    }

    /// Entries per row, on average.
    pub fn mean_nnz(&self) -> usize {
        self.nnz / self.rows.max(1)
    }

    /// How many postings scoring `q` through the index reads.
    pub fn postings_of(&self, q: &SparseVector) -> usize {
        let p = Path::new("sparse index");
        let (Ok(dims), Ok(offs)) = (
            self.u32s(&self.index, self.dims_at, self.dims, p),
            self.u64s(&self.index, self.dim_offsets_at, self.dims + 1, p),
        ) else {
            return 0;
        };
        q.indices
            .iter()
            .filter_map(|d| dims.binary_search(d).ok())
            .map(|i| offs[i + 1].saturating_sub(offs[i]) as usize)
            .sum()
    }

    /// Bytes of both files.
    pub fn bytes(&self) -> u64 {
        (self.vectors.len() + self.index.len()) as u64
    }

    /// Each row's vector, for rebuilding (merges) and checks.
    pub fn all(&self) -> Result<Vec<Option<SparseVector>>> {
        (0..self.rows)
            .map(|r| Ok(self.get(r)?.map(SparseRef::to_owned)))
            .collect()
    }

    /// The rows that have a vector.
    pub fn present(&self) -> Bitmap {
        let n = self.rows.div_ceil(8);
        Bitmap::from_bytes(self.vectors[HEADER_LEN..HEADER_LEN + n].to_vec())
    }
}

/// Scores summed per row for one query, reused across queries on each thread: a row's score
/// is live while its mark equals the epoch, so starting a query costs an increment. Score and
/// mark sit side by side: one cache line per posting.
#[derive(Default)]
struct Accumulator {
    slots: Vec<(f32, u32)>,
    touched: Vec<u32>,
    epoch: u32,
}

impl Accumulator {
    fn start(&mut self, rows: usize) {
        if self.slots.len() < rows {
            self.slots.resize(rows, (0.0, 0));
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.slots.iter_mut().for_each(|s| s.1 = 0);
            self.epoch = 1;
        }
        self.touched.clear();
    }

    #[inline]
    fn add(&mut self, r: u32, x: f32) {
        let Some(slot) = self.slots.get_mut(r as usize) else {
            return; // a damaged posting: ignored (verify reports the file)
        };
        if slot.1 != self.epoch {
            *slot = (x, self.epoch);
            self.touched.push(r);
        } else {
            slot.0 += x;
        }
    }

    fn drain(&mut self, f: &mut impl FnMut(u32, f32)) {
        for &r in &self.touched {
            f(r, self.slots[r as usize].0);
        }
    }
}

thread_local! {
    static ACCUMULATOR: RefCell<Accumulator> = RefCell::new(Accumulator::default());
}
