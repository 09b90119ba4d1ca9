//! Reading a log directory for damage, without opening the collection and without writing:
//! every file after the checkpoint read whole, every record's checksum, sequence number and
//! encoding checked, gaps between files found. `ferrovec check` reports what this finds
//! ([`check_log`]); `ferrovec repair` acts on it (`salvage.rs`).
//!
//! A damaged last record with nothing intact after it is a torn tail: a write that was never
//! acknowledged (the next writer cuts it), so it is a note, not damage.

use std::path::{Path, PathBuf};

use super::record::{self, parse_frame, Op, FRAME_HEADER_LEN};
use super::replay::next_intact;
use super::{file_name, files_after_checkpoint};
use crate::error::Result;
use crate::format::{FileKind, Header, HEADER_LEN};
use crate::io::FileSystem;

/// What `check` reports of a log: problems (damage that loses records) and notes.
#[derive(Debug, Default)]
pub struct LogCheck {
    /// Intact records after the checkpoint.
    pub records: u64,
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

/// One intact record after the checkpoint: its sequence number and where its body is.
pub(super) struct Found {
    pub seq: u64,
    pub file: usize,
    pub body: std::ops::Range<usize>,
}

/// A log as read: its files, its intact records in order, and what is wrong with it.
#[derive(Default)]
pub(super) struct LogScan {
    /// Each file after the checkpoint: its first sequence number and its bytes.
    pub files: Vec<(u64, Vec<u8>)>,
    pub found: Vec<Found>,
    /// Damage that loses records, one line each.
    pub damage: Vec<String>,
    /// A torn tail: (file, offset, what it is). It loses nothing acknowledged.
    pub torn: Option<(PathBuf, usize, String)>,
    /// Torn headers (a file just started): nothing to do about them.
    pub notes: Vec<String>,
}

impl LogScan {
    pub fn body(&self, f: &Found) -> &[u8] {
        &self.files[f.file].1[f.body.clone()]
    }
}

/// Read the log in `dir` after `checkpoint_seq`.
pub(super) fn scan_log(fs: &dyn FileSystem, dir: &Path, checkpoint_seq: u64) -> Result<LogScan> {
    let mut scan = LogScan::default();
    let numbered = files_after_checkpoint(fs, dir, checkpoint_seq)?;
    let mut expected = checkpoint_seq + 1;
    for (i, &first) in numbered.iter().enumerate() {
        let path = dir.join(file_name(first));
        let data = fs.read(&path)?;
        if first > expected {
            scan.damage.push(format!(
                "{}: starts at record {first}, records {expected} to {} are missing",
                path.display(),
                first - 1
            ));
        }
        if data.len() < HEADER_LEN {
            scan.notes.push(format!(
                "{}: torn header (a file just started)",
                path.display()
            ));
        } else if let Err(e) = Header::decode(FileKind::Log, &data, &path) {
            scan.damage.push(e.to_string());
        }
        let last_file = i + 1 == numbered.len();
        let mut pos = HEADER_LEN.min(data.len());
        let mut seq = first;
        while pos < data.len() {
            let why = match parse_frame(&data[pos..]) {
                Ok(f) if decodes(f.body) => {
                    if f.seq != seq {
                        scan.damage.push(format!(
                            "{}: record at offset {pos} has sequence number {}, expected {seq}",
                            path.display(),
                            f.seq
                        ));
                    }
                    let after_checkpoint = f.seq > checkpoint_seq;
                    if after_checkpoint && scan.found.last().is_none_or(|l| f.seq > l.seq) {
                        let at = pos + FRAME_HEADER_LEN;
                        scan.found.push(Found {
                            seq: f.seq,
                            file: i,
                            body: at..at + f.body.len(),
                        });
                    }
                    seq = f.seq + 1;
                    pos += f.len;
                    continue;
                }
                Ok(_) => "record does not decode".to_string(),
                Err(e) => e.to_string(),
            };
            match next_intact(&data, pos + 1, seq) {
                Some(at) => {
                    scan.damage.push(format!(
                        "{}: record {seq} at offset {pos} is damaged ({why}) and intact records follow it ({} bytes)",
                        path.display(),
                        at - pos
                    ));
                    // The records the damage covered are counted lost by their numbers.
                    seq = crate::format::read_u64(&data, at + 8);
                    pos = at;
                }
                None if last_file => {
                    let said = format!(
                        "{}: torn tail of {} bytes at offset {pos} ({why}): a write that was never acknowledged",
                        path.display(),
                        data.len() - pos
                    );
                    scan.torn = Some((path.clone(), pos, said));
                    pos = data.len();
                }
                None => {
                    scan.damage.push(format!(
                        "{}: record {seq} at offset {pos} is damaged ({why}) to the end of the file, and later files follow it",
                        path.display()
                    ));
                    pos = data.len();
                }
            }
        }
        expected = seq.max(expected);
        scan.files.push((first, data));
    }
    Ok(scan)
}

/// What `ferrovec check` says of the log in `dir` after `checkpoint_seq`.
pub fn check_log(fs: &dyn FileSystem, dir: &Path, checkpoint_seq: u64) -> Result<LogCheck> {
    let mut scan = scan_log(fs, dir, checkpoint_seq)?;
    scan.notes.extend(scan.torn.map(|t| t.2));
    Ok(LogCheck {
        records: scan.found.len() as u64,
        problems: scan.damage,
        notes: scan.notes,
    })
}

fn decodes(body: &[u8]) -> bool {
    record::split_body(body).is_some_and(|(_, b)| postcard::from_bytes::<Op>(b).is_ok())
}
