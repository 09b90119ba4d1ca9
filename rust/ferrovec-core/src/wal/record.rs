//! Log records: what one write does (`Op`), and how it is framed on disk.
//!
//! ```text
//! frame = len u32 LE | crc u32 LE | seq u64 LE | body (len bytes)
//! body  = time i64 LE (µs since the Unix epoch, when the record was made) | postcard-encoded Op
//! crc   = CRC32C(len bytes ++ seq bytes ++ body)
//! ```
//! The time serves point-in-time restores "to a time" (`wal::cut_to`).
//! Payloads travel inside the body as JSON bytes (postcard cannot encode `serde_json::Value`);
//! vectors as raw little-endian f32 bytes.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::point::{PointId, SparseVector};

pub const FRAME_HEADER_LEN: usize = 16;
/// A record body may not exceed this (the length field is a u32).
pub const MAX_BODY_LEN: usize = u32::MAX as usize;

/// One write, owned (as decoded during replay).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub enum Op {
    Upsert {
        ids: Vec<PointId>,
        vectors: serde_bytes::ByteBuf,
        payloads: Vec<Option<serde_bytes::ByteBuf>>,
    },
    Delete {
        ids: Vec<PointId>,
    },
    /// An upsert into a collection with sparse vectors (format 6): `sparse` holds, per sparse
    /// vector of the collection in its order, one entry per point (`None`: it lacks it).
    UpsertSparse {
        ids: Vec<PointId>,
        vectors: serde_bytes::ByteBuf,
        sparse: Vec<Vec<Option<SparseVector>>>,
        payloads: Vec<Option<serde_bytes::ByteBuf>>,
    },
}

/// One write, borrowed (as encoded on the write path, without copying the vectors twice).
/// Must have the same shape as [`Op`]: postcard is positional.
#[derive(Serialize)]
pub enum OpRef<'a> {
    Upsert {
        ids: &'a [PointId],
        #[serde(with = "serde_bytes")]
        vectors: &'a [u8],
        payloads: &'a [Option<&'a serde_bytes::Bytes>],
    },
    Delete {
        ids: &'a [PointId],
    },
    UpsertSparse {
        ids: &'a [PointId],
        #[serde(with = "serde_bytes")]
        vectors: &'a [u8],
        sparse: &'a [Vec<Option<SparseVector>>],
        payloads: &'a [Option<&'a serde_bytes::Bytes>],
    },
}

/// Encode a full frame for `op`, leaving `seq` to be patched in by the writer (which alone knows
/// it) with [`seal_frame`]. A record too large for its length field is refused here, whatever
/// the write that made it.
pub fn encode_frame(op: &OpRef<'_>) -> Result<Vec<u8>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    let mut buf = vec![0u8; FRAME_HEADER_LEN];
    buf.extend_from_slice(&now.to_le_bytes());
    buf = postcard::to_extend(op, buf)
        .map_err(|e| Error::internal(format!("a log record does not encode: {e}")))?;
    if buf.len() - FRAME_HEADER_LEN > MAX_BODY_LEN {
        return Err(Error::invalid(
            "the batch is larger than 4 GiB once encoded; write it in smaller batches",
        ));
    }
    Ok(buf)
}

/// A record body's time (µs since the epoch) and its encoded `Op`; `None` if it is too short.
pub fn split_body(body: &[u8]) -> Option<(i64, &[u8])> {
    let time: [u8; 8] = body.get(..8)?.try_into().ok()?;
    Some((i64::from_le_bytes(time), &body[8..]))
}

/// Write length, sequence number and checksum into a frame built by [`encode_frame`].
pub fn seal_frame(frame: &mut [u8], seq: u64) {
    let body_len = (frame.len() - FRAME_HEADER_LEN) as u32;
    frame[0..4].copy_from_slice(&body_len.to_le_bytes());
    frame[8..16].copy_from_slice(&seq.to_le_bytes());
    let mut crc = crc32c::crc32c(&frame[0..4]);
    crc = crc32c::crc32c_append(crc, &frame[8..]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// A frame read back from a log file.
pub struct Frame<'a> {
    pub seq: u64,
    pub body: &'a [u8],
    /// Total bytes of the frame, header included.
    pub len: usize,
}

/// Why the bytes at an offset are not a valid frame.
#[derive(Debug)]
pub enum FrameError {
    Truncated,
    ZeroLength,
    Checksum,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FrameError::Truncated => "record runs past the end of the file",
            FrameError::ZeroLength => "record has length zero",
            FrameError::Checksum => "record checksum mismatch",
        })
    }
}

/// Parse the frame at the start of `bytes`, checking its length against what is there (so a
/// damaged length never drives an allocation or an out-of-range read) and its checksum.
pub fn parse_frame(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    if bytes.len() < FRAME_HEADER_LEN {
        return Err(FrameError::Truncated);
    }
    let body_len = crate::format::read_u32(bytes, 0) as usize;
    if body_len == 0 {
        return Err(FrameError::ZeroLength);
    }
    let total = FRAME_HEADER_LEN + body_len;
    if total > bytes.len() {
        return Err(FrameError::Truncated);
    }
    let stored_crc = crate::format::read_u32(bytes, 4);
    let mut crc = crc32c::crc32c(&bytes[0..4]);
    crc = crc32c::crc32c_append(crc, &bytes[8..total]);
    if crc != stored_crc {
        return Err(FrameError::Checksum);
    }
    Ok(Frame {
        seq: crate::format::read_u64(bytes, 8),
        body: &bytes[FRAME_HEADER_LEN..total],
        len: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip_and_owned_borrowed_shapes_agree() {
        let ids = vec![PointId::Num(1), PointId::Str("a".into())];
        let vectors: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let p = br#"{"k":1}"#;
        let payloads = [Some(serde_bytes::Bytes::new(p)), None];
        let op = OpRef::Upsert {
            ids: &ids,
            vectors: &vectors,
            payloads: &payloads,
        };
        let mut frame = encode_frame(&op).expect("encode");
        seal_frame(&mut frame, 42);
        let parsed = parse_frame(&frame).expect("parse");
        assert_eq!(parsed.seq, 42);
        assert_eq!(parsed.len, frame.len());
        let (time, body) = split_body(parsed.body).expect("time");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        assert!(
            (now - time).abs() < 60_000_000,
            "record time {time} vs now {now}"
        );
        let back: Op = postcard::from_bytes(body).expect("decode");
        assert_eq!(
            back,
            Op::Upsert {
                ids,
                vectors: serde_bytes::ByteBuf::from(vectors),
                payloads: vec![Some(serde_bytes::ByteBuf::from(p.to_vec())), None],
            }
        );
        for cut in 0..frame.len() {
            assert!(parse_frame(&frame[..cut]).is_err());
        }
        for i in 0..frame.len() {
            let mut bad = frame.clone();
            bad[i] ^= 0x10;
            assert!(parse_frame(&bad).is_err(), "flip at {i} undetected");
        }
    }
}
