//! `ferrovec check`'s look at a log directory, without opening the collection: every file
//! after the checkpoint read whole, every record's checksum, sequence number and encoding
//! checked, gaps between files found. A damaged last record with nothing intact after it is
//! a torn tail (never acknowledged; the next writer cuts it), reported but not a problem.

use std::path::Path;

use super::record::{self, parse_frame, Op};
use super::{file_name, files_after_checkpoint};
use crate::error::Result;
use crate::format::{FileKind, Header, HEADER_LEN};
use crate::io::FileSystem;

/// What the check found: problems (damage that loses records) and notes.
#[derive(Debug, Default)]
pub struct LogCheck {
    pub records: u64,
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

pub fn check_log(fs: &dyn FileSystem, dir: &Path, checkpoint_seq: u64) -> Result<LogCheck> {
    let mut out = LogCheck::default();
    let files = files_after_checkpoint(fs, dir, checkpoint_seq)?;
    let mut next: Option<u64> = None;
    for (i, &first) in files.iter().enumerate() {
        let path = dir.join(file_name(first));
        if let Some(n) = next.filter(|&n| n != first) {
            out.problems.push(format!(
                "{}: starts at record {first}, but the log before it ends at record {}",
                path.display(),
                n - 1
            ));
        } else if next.is_none() && first > checkpoint_seq + 1 {
            out.problems.push(format!(
                "{}: records {} to {} are missing (checkpoint at {checkpoint_seq})",
                path.display(),
                checkpoint_seq + 1,
                first - 1
            ));
        }
        let data = fs.read(&path)?;
        if data.len() < HEADER_LEN {
            out.notes.push(format!(
                "{}: torn header (a file just started)",
                path.display()
            ));
            continue;
        }
        if let Err(e) = Header::decode(FileKind::Log, &data, &path) {
            out.problems.push(e.to_string());
            continue;
        }
        let mut seq = first;
        let mut pos = HEADER_LEN;
        while pos < data.len() {
            match parse_frame(&data[pos..]) {
                Ok(f) if f.seq == seq => {
                    let body = record::split_body(f.body).map_or(&[][..], |b| b.1);
                    if let Err(e) = postcard::from_bytes::<Op>(body) {
                        out.problems.push(format!(
                            "{}: record {seq} at offset {pos} does not decode: {e}",
                            path.display()
                        ));
                    }
                    out.records += 1;
                    seq += 1;
                    pos += f.len;
                }
                Ok(f) => {
                    out.problems.push(format!(
                        "{}: record at offset {pos} has sequence number {}, expected {seq}",
                        path.display(),
                        f.seq
                    ));
                    break;
                }
                Err(why) => {
                    let last_file = i + 1 == files.len();
                    if last_file && !super::replay::intact_record_follows(&data[pos + 1..], seq) {
                        out.notes.push(format!(
                            "{}: torn tail of {} bytes at offset {pos} ({why}): a write that was never acknowledged; the next write cuts it",
                            path.display(),
                            data.len() - pos
                        ));
                    } else {
                        out.problems.push(format!(
                            "{}: record {seq} at offset {pos} is damaged ({why}) and intact records follow it",
                            path.display()
                        ));
                    }
                    break;
                }
            }
        }
        next = Some(seq);
    }
    Ok(out)
}
