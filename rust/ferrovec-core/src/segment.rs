//! Sealed segments: immutable files written once at a checkpoint and mapped read-only.
//!
//! A segment `<id>` is four files in the collection's `segments/` directory, each with the common
//! header (`format.rs`):
//! - `<id>.vec`: `rows × dim` f32, little-endian, row-major, starting at byte 64 (so rows are
//!   4-byte aligned in the page-aligned mapping);
//! - `<id>.ids`: one entry per row: tag u8 (0 = number, 1 = string), then u64 LE, or u32 LE length
//!   and UTF-8 bytes;
//! - `<id>.pay`: `rows + 1` u64 LE offsets into the JSON bytes that follow them; an empty range is
//!   a point without payload;
//! - `<id>.del-<generation>`: a bitmap of deleted rows (bit `r % 8` of byte `r / 8`). Deletes after
//!   the segment was sealed are written as a new generation at the next checkpoint; the manifest
//!   names the current one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::{FileKind, Header, Reader, HEADER_LEN};
use crate::io::{FileSystem, Mapped};
use crate::types::PointId;

pub fn vec_name(id: u64) -> String {
    format!("{id:016}.vec")
}
pub fn ids_name(id: u64) -> String {
    format!("{id:016}.ids")
}
pub fn pay_name(id: u64) -> String {
    format!("{id:016}.pay")
}
pub fn del_name(id: u64, generation: u64) -> String {
    format!("{id:016}.del-{generation:016}")
}

/// A growable bitmap of deleted rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bitmap {
    bytes: Vec<u8>,
    ones: usize,
}

impl Bitmap {
    pub fn new(len: usize) -> Self {
        Bitmap {
            bytes: vec![0; len.div_ceil(8)],
            ones: 0,
        }
    }

    pub fn get(&self, i: usize) -> bool {
        self.bytes
            .get(i / 8)
            .is_some_and(|b| b & (1 << (i % 8)) != 0)
    }

    /// Set bit `i`; returns whether it was newly set.
    pub fn set(&mut self, i: usize) -> bool {
        let Some(b) = self.bytes.get_mut(i / 8) else {
            return false;
        };
        let mask = 1 << (i % 8);
        if *b & mask != 0 {
            return false;
        }
        *b |= mask;
        self.ones += 1;
        true
    }

    pub fn count_ones(&self) -> usize {
        self.ones
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn from_bytes(bytes: Vec<u8>) -> Self {
        let ones = bytes.iter().map(|b| b.count_ones() as usize).sum();
        Bitmap { bytes, ones }
    }
}

/// Write `parts` as the body of a new file with a checksummed header, then fsync it.
pub fn write_file(
    fs: &dyn FileSystem,
    path: &Path,
    kind: FileKind,
    count: u64,
    dim: u32,
    parts: &[&[u8]],
) -> Result<u64> {
    let mut crc = 0u32;
    let mut body_len = 0u64;
    for p in parts {
        crc = crc32c::crc32c_append(crc, p);
        body_len += p.len() as u64;
    }
    let header = Header {
        kind,
        count,
        dim,
        body_len,
        body_crc: crc,
    };
    let file = fs.create(path)?;
    file.write_all(&header.encode())?;
    for p in parts {
        file.write_all(p)?;
    }
    file.sync_data()?;
    Ok(HEADER_LEN as u64 + body_len)
}

/// Rows to write into a new segment.
pub struct SegmentData<'a> {
    pub ids: &'a [PointId],
    pub vectors: &'a [f32],
    pub payloads: &'a [Option<Box<[u8]>>],
}

/// Write the three immutable files of segment `id`. Returns their total size.
pub fn write_segment(
    fs: &dyn FileSystem,
    dir: &Path,
    id: u64,
    dim: u32,
    data: &SegmentData<'_>,
) -> Result<u64> {
    let rows = data.ids.len() as u64;
    let mut total = write_file(
        fs,
        &dir.join(vec_name(id)),
        FileKind::Vectors,
        rows,
        dim,
        &[bytemuck::cast_slice(data.vectors)],
    )?;

    let mut ids = Vec::with_capacity(data.ids.len() * 9);
    for id in data.ids {
        match id {
            PointId::Num(n) => {
                ids.push(0u8);
                ids.extend_from_slice(&n.to_le_bytes());
            }
            PointId::Str(s) => {
                ids.push(1u8);
                ids.extend_from_slice(&(s.len() as u32).to_le_bytes());
                ids.extend_from_slice(s.as_bytes());
            }
        }
    }
    total += write_file(fs, &dir.join(ids_name(id)), FileKind::Ids, rows, 0, &[&ids])?;

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
    Ok(total)
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

/// An open sealed segment.
#[derive(Debug)]
pub struct Segment {
    pub id: u64,
    pub rows: usize,
    dim: usize,
    vectors: Mapped,
    payloads: Mapped,
    payload_path: PathBuf,
    pub ids: Vec<PointId>,
}

impl Segment {
    /// Map and check a segment's files. Headers and sizes are checked here; whole-file checksums
    /// only by [`Segment::verify`].
    pub fn open(
        fs: &dyn FileSystem,
        dir: &Path,
        id: u64,
        rows: usize,
        dim: u32,
    ) -> Result<Arc<Self>> {
        let vec_path = dir.join(vec_name(id));
        let vectors = fs.map(&vec_path)?;
        let (h, body) = Header::decode_whole(FileKind::Vectors, &vectors, &vec_path, false)?;
        let expect_bytes = (rows as u64)
            .checked_mul(u64::from(dim) * 4)
            .ok_or_else(|| Error::corrupt(&vec_path, "row count overflows"))?;
        if h.count != rows as u64 || h.dim != dim || body.len() as u64 != expect_bytes {
            return Err(Error::corrupt(
                &vec_path,
                format!(
                    "vector file holds {} rows of dim {} in {} bytes; the manifest expects {rows} rows of dim {dim}",
                    h.count,
                    h.dim,
                    body.len()
                ),
            ));
        }
        if bytemuck::try_cast_slice::<u8, f32>(body).is_err() {
            return Err(Error::corrupt(
                &vec_path,
                "vector data is not 4-byte aligned",
            ));
        }

        let ids_path = dir.join(ids_name(id));
        let ids_bytes = fs.read(&ids_path)?;
        let (h, body) = Header::decode_whole(FileKind::Ids, &ids_bytes, &ids_path, false)?;
        if h.count != rows as u64 {
            return Err(Error::corrupt(
                &ids_path,
                format!("id map holds {} rows, the manifest expects {rows}", h.count),
            ));
        }
        let mut r = Reader::new(body, &ids_path);
        let mut ids = Vec::with_capacity(rows.min(body.len() / 9));
        for _ in 0..rows {
            let id = match r.u8()? {
                0 => PointId::Num(r.u64()?),
                1 => {
                    let n = r.u32()? as usize;
                    let s = std::str::from_utf8(r.take(n)?)
                        .map_err(|_| Error::corrupt(&ids_path, "string id is not UTF-8"))?;
                    PointId::Str(s.to_string())
                }
                t => return Err(Error::corrupt(&ids_path, format!("unknown id tag {t}"))),
            };
            ids.push(id);
        }
        if !r.is_empty() {
            return Err(Error::corrupt(
                &ids_path,
                "trailing bytes after the last id",
            ));
        }

        let payload_path = dir.join(pay_name(id));
        let payloads = fs.map(&payload_path)?;
        let (h, body) = Header::decode_whole(FileKind::Payloads, &payloads, &payload_path, false)?;
        let table = (rows as u64 + 1) * 8;
        if h.count != rows as u64 || (body.len() as u64) < table {
            return Err(Error::corrupt(
                &payload_path,
                format!("payload file too short for {rows} rows"),
            ));
        }
        Ok(Arc::new(Segment {
            id,
            rows,
            dim: dim as usize,
            vectors,
            payloads,
            payload_path,
            ids,
        }))
    }

    /// All vectors, row-major.
    pub fn vectors(&self) -> &[f32] {
        // Checked in `open`: length and alignment.
        bytemuck::try_cast_slice(&self.vectors[HEADER_LEN..]).unwrap_or(&[])
    }

    pub fn vector(&self, row: usize) -> &[f32] {
        &self.vectors()[row * self.dim..(row + 1) * self.dim]
    }

    /// The JSON bytes of a row's payload, or `None` if the point has none.
    pub fn payload(&self, row: usize) -> Result<Option<&[u8]>> {
        let body = &self.payloads[HEADER_LEN..];
        let at = row * 8;
        let start = crate::format::read_u64(body, at);
        let end = crate::format::read_u64(body, at + 8);
        let data_start = (self.rows as u64 + 1) * 8;
        let (Some(s), Some(e)) = (data_start.checked_add(start), data_start.checked_add(end))
        else {
            return Err(Error::corrupt(
                &self.payload_path,
                "payload offset overflows",
            ));
        };
        if s > e || e > body.len() as u64 {
            return Err(Error::corrupt(
                &self.payload_path,
                format!("payload of row {row} has offsets {start}..{end} outside the file"),
            ));
        }
        Ok((s < e).then(|| &body[s as usize..e as usize]))
    }

    /// Check the whole-file checksums of the segment's files.
    pub fn verify(fs: &dyn FileSystem, dir: &Path, id: u64, deleted: Option<&str>) -> Result<()> {
        let mut files = vec![
            (FileKind::Vectors, vec_name(id)),
            (FileKind::Ids, ids_name(id)),
            (FileKind::Payloads, pay_name(id)),
        ];
        if let Some(d) = deleted {
            files.push((FileKind::Deleted, d.to_string()));
        }
        for (kind, name) in files {
            let path = dir.join(name);
            let bytes = fs.map(&path)?;
            Header::decode_whole(kind, &bytes, &path, true)?;
        }
        Ok(())
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
