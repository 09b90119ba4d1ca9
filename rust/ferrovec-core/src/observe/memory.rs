//! Bytes of a collection's files mapped into this process, and how many of them are resident,
//! per part (vectors, codes, graphs, ...): read from `/proc/self/smaps`, the kernel's own
//! account of each mapping. Read only when asked (`stats`, `metrics`), never on a call's path.

use std::collections::BTreeMap;
use std::path::Path;

/// The part of a collection a segment file holds, by its name (`segment::*_name`).
pub fn part_of(file_name: &str) -> &'static str {
    let ext = file_name.rsplit('.').next().unwrap_or("");
    match ext {
        "vec" => "vectors",
        "q8" | "q4" | "q1" => "codes",
        "hnsw" => "graphs",
        "ids" => "ids",
        "pay" => "payloads",
        "spv" | "spi" => "sparse",
        e if e.starts_with("pidx-") => "payload_indexes",
        e if e.starts_with("del-") => "deletions",
        "wal" => "log",
        _ => "other",
    }
}

/// Mapped and resident bytes per part.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Residency {
    pub mapped: BTreeMap<&'static str, u64>,
    pub resident: BTreeMap<&'static str, u64>,
}

/// This process's `/proc/self/smaps`, read once for every collection a scrape reports on (the
/// kernel walks every mapping's pages to write it). Unreadable (not Linux's procfs): empty,
/// rather than an error, since memory figures are advisory.
pub fn read_smaps() -> String {
    std::fs::read_to_string("/proc/self/smaps").unwrap_or_default()
}

/// The mappings of files under `dir` in `smaps` (as [`read_smaps`] reads it), per part.
pub fn residency(smaps: &str, dir: &Path) -> Residency {
    let mut out = Residency::default();
    let prefix = format!("{}/", dir.display());
    let mut current: Option<&'static str> = None;
    for line in smaps.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(first) = fields.next() else { continue };
        if first.contains('-') && first.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            // A mapping's header: range perms offset dev inode [path].
            let path = fields.nth(4);
            current = path
                .filter(|p| p.starts_with(&prefix))
                .map(|p| part_of(p.rsplit('/').next().unwrap_or(p)));
            continue;
        }
        let Some(part) = current else { continue };
        let mut kb = || {
            fields
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        match first {
            "Size:" => *out.mapped.entry(part).or_default() += kb(),
            "Rss:" => *out.resident.entry(part).or_default() += kb(),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smaps_mappings_are_summed_per_part_for_files_under_the_directory() {
        let text = "\
7f0000000000-7f0000100000 r--s 00000000 08:01 11 /s/collections/c/segments/0000000000000001.vec
Size:               1024 kB
Rss:                 512 kB
7f0000100000-7f0000200000 r--s 00000000 08:01 12 /s/collections/c/segments/0000000000000001.q8
Size:                256 kB
Rss:                 256 kB
7f0000200000-7f0000300000 r--s 00000000 08:01 13 /s/collections/other/segments/0000000000000001.vec
Size:               4096 kB
Rss:                4096 kB
7f0000300000-7f0000400000 rw-p 00000000 00:00 0
Size:                 64 kB
Rss:                  64 kB
7f0000400000-7f0000500000 r--s 00000000 08:01 14 /s/collections/c/segments/0000000000000002.vec
Size:                 16 kB
Rss:                   4 kB
";
        let r = residency(text, Path::new("/s/collections/c"));
        assert_eq!(r.mapped.get("vectors"), Some(&(1040 * 1024)));
        assert_eq!(r.resident.get("vectors"), Some(&(516 * 1024)));
        assert_eq!(r.resident.get("codes"), Some(&(256 * 1024)));
        assert_eq!(r.mapped.len(), 2);
        assert_eq!(part_of("0000000000000003.pidx-2"), "payload_indexes");
        assert_eq!(part_of("0000000000000003.2.hnsw"), "graphs");
    }
}
