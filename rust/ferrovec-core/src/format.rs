//! The fixed 64-byte header that starts every ferrovec file, and the checksum helpers.
//! The layout is described byte by byte in `docs/FORMAT.md`; keep the two in step.
//!
//! ```text
//!  0..8   magic (one per file kind)
//!  8..12  format version, u32 LE
//! 12..16  reserved, zero
//! 16..24  count, u64 LE    (rows; for a log file: the sequence number of its first record)
//! 24..28  dim, u32 LE      (vector dimension, or zero)
//! 28..32  reserved, zero
//! 32..40  body length in bytes, u64 LE (the file is exactly 64 + body length bytes)
//! 40..44  CRC32C of the body, u32 LE (zero for log files, whose records carry their own)
//! 44..60  reserved, zero
//! 60..64  CRC32C of bytes 0..60, u32 LE
//! ```

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::FileSystem;

pub const HEADER_LEN: usize = 64;

/// The format version this build writes. Bump it whenever any layout below changes, and keep
/// reading the versions from `OLDEST_READ` on (docs/FORMAT.md, "Versions and old stores").
pub const FORMAT_VERSION: u32 = 8;
/// The oldest format version this build reads: files of versions 5 to 7 are read as they are
/// (the layouts 8 kept), their manifests are upgraded as they are read
/// (`collection/manifest.rs`).
pub const OLDEST_READ: u32 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Store,
    Manifest,
    Log,
    Vectors,
    Ids,
    Payloads,
    Deleted,
    Graph,
    PayloadIndex,
    Codes,
    Shared,
    SparseVectors,
    SparseIndex,
}

impl FileKind {
    pub const fn magic(self) -> &'static [u8; 8] {
        match self {
            FileKind::Store => b"FVSTORE\x1a",
            FileKind::Manifest => b"FVMANIF\x1a",
            FileKind::Log => b"FVWALOG\x1a",
            FileKind::Vectors => b"FVVECTR\x1a",
            FileKind::Ids => b"FVIDMAP\x1a",
            FileKind::Payloads => b"FVPAYLD\x1a",
            FileKind::Deleted => b"FVDELET\x1a",
            FileKind::Graph => b"FVHNSWG\x1a",
            FileKind::PayloadIndex => b"FVPINDX\x1a",
            FileKind::Codes => b"FVCODES\x1a",
            FileKind::Shared => b"FVSHARD\x1a",
            FileKind::SparseVectors => b"FVSPVEC\x1a",
            FileKind::SparseIndex => b"FVSPIDX\x1a",
        }
    }

    pub const fn describe(self) -> &'static str {
        match self {
            FileKind::Store => "store marker",
            FileKind::Manifest => "collection manifest",
            FileKind::Log => "write-ahead log",
            FileKind::Vectors => "vector file",
            FileKind::Ids => "id map",
            FileKind::Payloads => "payload file",
            FileKind::Deleted => "deletion bitmap",
            FileKind::Graph => "HNSW graph",
            FileKind::PayloadIndex => "payload index",
            FileKind::Codes => "code file",
            FileKind::Shared => "coordination file",
            FileKind::SparseVectors => "sparse vector file",
            FileKind::SparseIndex => "sparse inverted index",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: FileKind,
    /// The format version that wrote the file (`FORMAT_VERSION` for one written now).
    pub version: u32,
    pub count: u64,
    pub dim: u32,
    pub body_len: u64,
    pub body_crc: u32,
}

impl Header {
    pub fn new(kind: FileKind, count: u64, dim: u32, body: &[u8]) -> Self {
        Header {
            kind,
            version: FORMAT_VERSION,
            count,
            dim,
            body_len: body.len() as u64,
            body_crc: crc32c::crc32c(body),
        }
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(self.kind.magic());
        h[8..12].copy_from_slice(&self.version.to_le_bytes());
        h[16..24].copy_from_slice(&self.count.to_le_bytes());
        h[24..28].copy_from_slice(&self.dim.to_le_bytes());
        h[32..40].copy_from_slice(&self.body_len.to_le_bytes());
        h[40..44].copy_from_slice(&self.body_crc.to_le_bytes());
        let crc = crc32c::crc32c(&h[0..60]);
        h[60..64].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Check and decode the header at the start of `bytes`. `path` only names the file in errors.
    pub fn decode(kind: FileKind, bytes: &[u8], path: &Path) -> Result<Header> {
        let what = kind.describe();
        if bytes.len() < HEADER_LEN {
            return Err(Error::corrupt(
                path,
                format!(
                    "{what} is {} bytes long, shorter than its {HEADER_LEN}-byte header",
                    bytes.len()
                ),
            ));
        }
        let h = &bytes[..HEADER_LEN];
        if &h[0..8] != kind.magic() {
            return Err(Error::corrupt(
                path,
                format!("not a ferrovec {what} (magic bytes {:02x?})", &h[0..8]),
            ));
        }
        let crc = read_u32(h, 60);
        if crc != crc32c::crc32c(&h[0..60]) {
            return Err(Error::corrupt(
                path,
                format!("{what} header checksum mismatch"),
            ));
        }
        let version = read_u32(h, 8);
        check_version_in(path, what, version, OLDEST_READ)?;
        Ok(Header {
            kind,
            version,
            count: read_u64(h, 16),
            dim: read_u32(h, 24),
            body_len: read_u64(h, 32),
            body_crc: read_u32(h, 40),
        })
    }

    /// Decode the header and check the file holds exactly the body the header announces.
    /// The body checksum is checked only when `verify_body` is set (it reads every byte).
    pub fn decode_whole<'a>(
        kind: FileKind,
        bytes: &'a [u8],
        path: &Path,
        verify_body: bool,
    ) -> Result<(Header, &'a [u8])> {
        let header = Self::decode(kind, bytes, path)?;
        let body = &bytes[HEADER_LEN..];
        if body.len() as u64 != header.body_len {
            return Err(Error::corrupt(
                path,
                format!(
                    "{} body is {} bytes but its header says {}",
                    kind.describe(),
                    body.len(),
                    header.body_len
                ),
            ));
        }
        if verify_body && crc32c::crc32c(body) != header.body_crc {
            return Err(Error::corrupt(
                path,
                format!("{} body checksum mismatch", kind.describe()),
            ));
        }
        Ok((header, body))
    }
}

/// `UnsupportedVersion` unless `found` is the version `reads` of `what` this build reads.
pub fn check_version(path: &Path, what: &'static str, found: u32, reads: u32) -> Result<()> {
    check_version_range(path, what, found, reads, reads)
}

/// `UnsupportedVersion` unless `found` is a store format version from `oldest` to the one this
/// build writes.
pub fn check_version_in(path: &Path, what: &'static str, found: u32, oldest: u32) -> Result<()> {
    check_version_range(path, what, found, oldest, FORMAT_VERSION)
}

fn check_version_range(
    path: &Path,
    what: &'static str,
    found: u32,
    oldest: u32,
    reads: u32,
) -> Result<()> {
    if (oldest..=reads).contains(&found) {
        return Ok(());
    }
    Err(Error::UnsupportedVersion {
        path: path.to_path_buf(),
        what,
        found,
        reads,
    })
}

/// Read a little-endian u32 at `at`. Callers have checked `bytes` is long enough.
pub fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Read a little-endian u64 at `at`. Callers have checked `bytes` is long enough.
pub fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// A bounds-checked little-endian reader over a file body.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8], path: &'a Path) -> Self {
        Reader {
            bytes,
            pos: 0,
            path,
        }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| {
                Error::corrupt(
                    self.path,
                    format!(
                        "unexpected end of data: wanted {n} bytes at offset {} of {}",
                        self.pos,
                        self.bytes.len()
                    ),
                )
            })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32> {
        Ok(read_u32(self.take(4)?, 0))
    }

    pub fn u64(&mut self) -> Result<u64> {
        Ok(read_u64(self.take(8)?, 0))
    }

    pub fn is_empty(&self) -> bool {
        self.pos == self.bytes.len()
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
    let file = start_file(fs, path, kind, count, dim, body_len, crc)?;
    for p in parts {
        file.write_all(p)?;
    }
    file.sync_data()?;
    Ok(HEADER_LEN as u64 + body_len)
}

/// Create `path` with the header of a body of `body_len` bytes whose CRC32C is `body_crc`;
/// the caller writes exactly that body, then syncs.
pub fn start_file(
    fs: &dyn FileSystem,
    path: &Path,
    kind: FileKind,
    count: u64,
    dim: u32,
    body_len: u64,
    body_crc: u32,
) -> Result<Box<dyn crate::io::WriteFile>> {
    let header = Header {
        kind,
        version: FORMAT_VERSION,
        count,
        dim,
        body_len,
        body_crc,
    };
    let file = fs.create(path)?;
    file.write_all(&header.encode())?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_damage() {
        let body = b"hello".to_vec();
        let h = Header::new(FileKind::Ids, 7, 3, &body);
        let mut bytes = h.encode().to_vec();
        bytes.extend_from_slice(&body);
        let p = Path::new("x");
        let (back, b) = Header::decode_whole(FileKind::Ids, &bytes, p, true).expect("valid");
        assert_eq!(back, h);
        assert_eq!(b, b"hello");

        // Wrong kind.
        assert!(Header::decode(FileKind::Vectors, &bytes, p).is_err());
        // Header bit flip.
        let mut bad = bytes.clone();
        bad[17] ^= 1;
        assert!(Header::decode(FileKind::Ids, &bad, p).is_err());
        // Body bit flip: caught only when verifying.
        let mut bad = bytes.clone();
        bad[HEADER_LEN] ^= 1;
        assert!(Header::decode_whole(FileKind::Ids, &bad, p, false).is_ok());
        assert!(Header::decode_whole(FileKind::Ids, &bad, p, true).is_err());
        // Truncated body.
        assert!(Header::decode_whole(FileKind::Ids, &bytes[..bytes.len() - 1], p, false).is_err());
        // Newer version.
        let mut newer = bytes.clone();
        newer[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        let crc = crc32c::crc32c(&newer[0..60]);
        newer[60..64].copy_from_slice(&crc.to_le_bytes());
        let err = Header::decode(FileKind::Ids, &newer, p).expect_err("newer");
        assert!(err.to_string().contains("newer ferrovec"), "{err}");
    }
}
