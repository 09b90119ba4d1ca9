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

use super::check::{scan_log, LogScan};
use super::file_name;
use super::record::{self, FRAME_HEADER_LEN};
use crate::error::Result;
use crate::format::{FileKind, Header};
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

/// Salvage the log in `dir` (records after `checkpoint_seq`), moving damaged files into
/// `aside`. Changes nothing if the log is intact.
pub fn salvage_log(
    fs: &dyn FileSystem,
    dir: &Path,
    checkpoint_seq: u64,
    aside: &Path,
) -> Result<LogSalvage> {
    let scan = scan_log(fs, dir, checkpoint_seq)?;
    let mut out = LogSalvage {
        records: scan.found.len() as u64,
        damage: scan.damage.clone(),
        ..LogSalvage::default()
    };
    out.damage.extend(scan.torn.iter().map(|t| t.2.clone()));
    if !scan.damage.is_empty() {
        lost_ranges(&scan, checkpoint_seq, &mut out.lost);
        if scan.torn.is_some() {
            out.lost.push(format!(
                "the damaged end of the last file (after record {})",
                scan.found.last().map_or(checkpoint_seq, |f| f.seq)
            ));
        }
        rewrite_log(fs, dir, checkpoint_seq, &scan, aside, &mut out)?;
    } else if let Some((path, at, _)) = &scan.torn {
        let cut = fs.file_len(path)? - *at as u64;
        fs.truncate(path, *at as u64)?;
        out.actions.push(format!(
            "cut a torn tail of {cut} bytes off {} (a write that was never acknowledged)",
            path.display()
        ));
    }
    Ok(out)
}

/// The sequence numbers between the checkpoint and the last intact record not found intact.
fn lost_ranges(scan: &LogScan, checkpoint_seq: u64, lost: &mut Vec<String>) {
    let mut expect = checkpoint_seq + 1;
    for f in &scan.found {
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
    scan: &LogScan,
    aside: &Path,
    out: &mut LogSalvage,
) -> Result<()> {
    let first = checkpoint_seq + 1;
    // A dot-name: replay ignores it if repair stops before the rename below.
    let tmp = dir.join(".repair.wal.tmp");
    let mut bytes = Header::new(FileKind::Log, first, 0, &[]).encode().to_vec();
    for (i, f) in scan.found.iter().enumerate() {
        let mut frame = vec![0u8; FRAME_HEADER_LEN];
        frame.extend_from_slice(scan.body(f));
        record::seal_frame(&mut frame, first + i as u64);
        bytes.extend_from_slice(&frame);
    }
    let file = fs.create(&tmp)?;
    file.write_all(&bytes)?;
    file.sync_data()?;
    drop(file);
    fs.create_dir_all(aside)?;
    for (f, _) in &scan.files {
        let from = dir.join(file_name(*f));
        let to = aside.join(file_name(*f));
        fs.rename(&from, &to)?;
        out.kept_aside.push(to);
    }
    fs.sync_dir(aside)?;
    fs.rename(&tmp, &dir.join(file_name(first)))?;
    fs.sync_dir(dir)?;
    let renumbered = scan
        .found
        .iter()
        .enumerate()
        .any(|(i, f)| f.seq != first + i as u64);
    out.actions.push(format!(
        "wrote the log anew from its {} intact record(s){}; the old files are kept in {}",
        scan.found.len(),
        if renumbered {
            format!(", numbered on from the checkpoint ({first} on)")
        } else {
            String::new()
        },
        aside.display()
    ));
    Ok(())
}
