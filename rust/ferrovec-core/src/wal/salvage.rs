//! `ferrovec repair`'s part for the log: every intact record after the checkpoint found and
//! kept, the damaged bytes kept aside, and what was lost said. The caller holds the store
//! exclusively (no other process appends).
//!
//! - A damaged last record with nothing intact after it is a torn tail: cut, as the next
//!   writer would (it was never acknowledged).
//! - Damage with intact records after it (or a file missing between two): the log is written
//!   anew from every intact record, in order, numbered on from the checkpoint, and the old
//!   files are moved aside. Each record is a whole write (an upsert carries its points whole),
//!   so what the log then replays is, per point, its state after the last intact write to it;
//!   the writes of the damaged records are lost, and the report names their sequence numbers.

use std::path::{Path, PathBuf};

use super::record::{self, parse_frame, Op, FRAME_HEADER_LEN};
use super::{file_name, files_after_checkpoint, SEQ_WINDOW};
use crate::error::Result;
use crate::format::{FileKind, Header, HEADER_LEN};
use crate::io::FileSystem;

/// What the salvage did.
#[derive(Debug, Default)]
pub struct LogSalvage {
    /// Intact records after the checkpoint, kept.
    pub records: u64,
    /// What was wrong, one line each.
    pub damage: Vec<String>,
    /// What was lost: sequence numbers of writes not kept.
    pub lost: Vec<String>,
    /// What was done to the files.
    pub actions: Vec<String>,
    /// Files moved aside, where they now are.
    pub kept_aside: Vec<PathBuf>,
}

struct Found {
    seq: u64,
    body: Vec<u8>,
}

/// Salvage the log in `dir` (records after `checkpoint_seq`), moving damaged files into
/// `aside`. Changes nothing if the log is intact.
pub fn salvage_log(
    fs: &dyn FileSystem,
    dir: &Path,
    checkpoint_seq: u64,
    aside: &Path,
) -> Result<LogSalvage> {
    let mut out = LogSalvage::default();
    let files = files_after_checkpoint(fs, dir, checkpoint_seq)?;
    let mut found: Vec<Found> = Vec::new();
    // (file, offset) of a damaged stretch with nothing intact after it in the last file.
    let mut torn: Option<(PathBuf, usize)> = None;
    let mut rewrite = false;
    let mut expected = checkpoint_seq + 1;
    for (i, &first) in files.iter().enumerate() {
        let path = dir.join(file_name(first));
        let data = fs.read(&path)?;
        if first > expected {
            out.damage.push(format!(
                "{}: starts at record {first}, records {expected} to {} are missing",
                path.display(),
                first - 1
            ));
            rewrite = true;
        }
        if data.len() >= HEADER_LEN {
            if let Err(e) = Header::decode(FileKind::Log, &data, &path) {
                out.damage.push(e.to_string());
                rewrite = true;
            }
        }
        let last_file = i + 1 == files.len();
        let mut pos = HEADER_LEN.min(data.len());
        let mut seq = first;
        while pos < data.len() {
            match parse_frame(&data[pos..]) {
                Ok(f) if postcard_ok(f.body) => {
                    if f.seq > checkpoint_seq && found.last().is_none_or(|l| f.seq > l.seq) {
                        if f.seq != seq && !found.is_empty() {
                            rewrite = true;
                        }
                        found.push(Found {
                            seq: f.seq,
                            body: f.body.to_vec(),
                        });
                    }
                    seq = f.seq + 1;
                    pos += f.len;
                }
                bad => {
                    let why = match bad {
                        Err(e) => e.to_string(),
                        Ok(_) => "record does not decode".into(),
                    };
                    match next_intact(&data, pos + 1, seq) {
                        Some(at) => {
                            out.damage.push(format!(
                                "{}: {} damaged bytes at offset {pos} ({why}), intact records after them",
                                path.display(),
                                at - pos
                            ));
                            rewrite = true;
                            pos = at;
                        }
                        None => {
                            out.damage.push(format!(
                                "{}: {} damaged bytes at offset {pos} ({why}) to the end of the file",
                                path.display(),
                                data.len() - pos
                            ));
                            if last_file {
                                torn = Some((path.clone(), pos));
                            } else {
                                rewrite = true;
                            }
                            pos = data.len();
                        }
                    }
                }
            }
        }
        expected = seq.max(expected);
    }
    out.records = found.len() as u64;
    if rewrite {
        lost_ranges(&found, checkpoint_seq, &mut out.lost);
        if torn.is_some() {
            out.lost.push(format!(
                "the damaged end of the last file (after record {})",
                found.last().map_or(checkpoint_seq, |f| f.seq)
            ));
        }
        rewrite_log(fs, dir, checkpoint_seq, &files, &found, aside, &mut out)?;
    } else if let Some((path, at)) = torn {
        let cut = fs.file_len(&path)? - at as u64;
        fs.truncate(&path, at as u64)?;
        out.actions.push(format!(
            "cut a torn tail of {cut} bytes off {} (a write that was never acknowledged)",
            path.display()
        ));
    }
    Ok(out)
}

fn postcard_ok(body: &[u8]) -> bool {
    record::split_body(body).is_some_and(|(_, b)| postcard::from_bytes::<Op>(b).is_ok())
}

/// The next offset from `from` holding an intact frame that could follow record `next`.
fn next_intact(data: &[u8], from: usize, next: u64) -> Option<usize> {
    if data.len() < from + FRAME_HEADER_LEN {
        return None;
    }
    (from..=data.len() - FRAME_HEADER_LEN).find(|&at| {
        let seq = crate::format::read_u64(data, at + 8);
        seq >= next
            && seq - next < SEQ_WINDOW
            && parse_frame(&data[at..]).is_ok_and(|f| postcard_ok(f.body))
    })
}

/// The sequence numbers between the checkpoint and the last intact record not found intact.
fn lost_ranges(found: &[Found], checkpoint_seq: u64, lost: &mut Vec<String>) {
    let mut expect = checkpoint_seq + 1;
    for f in found {
        if f.seq > expect {
            lost.push(if f.seq - 1 == expect {
                format!("record {expect}")
            } else {
                format!("records {expect} to {}", f.seq - 1)
            });
        }
        expect = f.seq + 1;
    }
}

/// Write the intact records as one new log file numbered on from the checkpoint, then move
/// the old files aside and put the new one in place.
fn rewrite_log(
    fs: &dyn FileSystem,
    dir: &Path,
    checkpoint_seq: u64,
    old: &[u64],
    found: &[Found],
    aside: &Path,
    out: &mut LogSalvage,
) -> Result<()> {
    let first = checkpoint_seq + 1;
    // A dot-name: replay ignores it if repair stops before the rename below.
    let tmp = dir.join(".repair.wal.tmp");
    let mut bytes = Header::new(FileKind::Log, first, 0, &[]).encode().to_vec();
    for (i, f) in found.iter().enumerate() {
        let mut frame = vec![0u8; FRAME_HEADER_LEN];
        frame.extend_from_slice(&f.body);
        record::seal_frame(&mut frame, first + i as u64);
        bytes.extend_from_slice(&frame);
    }
    let file = fs.create(&tmp)?;
    file.write_all(&bytes)?;
    file.sync_data()?;
    drop(file);
    fs.create_dir_all(aside)?;
    for &f in old {
        let from = dir.join(file_name(f));
        let to = aside.join(file_name(f));
        fs.rename(&from, &to)?;
        out.kept_aside.push(to);
    }
    fs.sync_dir(aside)?;
    fs.rename(&tmp, &dir.join(file_name(first)))?;
    fs.sync_dir(dir)?;
    let renumbered = found
        .iter()
        .enumerate()
        .any(|(i, f)| f.seq != first + i as u64);
    out.actions.push(format!(
        "wrote the log anew from its {} intact record(s){}; the old files are kept in {}",
        found.len(),
        if renumbered {
            format!(", numbered on from the checkpoint ({first} on)")
        } else {
            String::new()
        },
        aside.display()
    ));
    Ok(())
}
