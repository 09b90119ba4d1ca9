//! Write the seed corpora into `rust/ferrovec-fuzz/corpus/<target>/`: the template store's own
//! files, a snapshot of it (as is, and as the bare tar), and filters using every condition.
//! Run again after a format change: `cargo run -p ferrovec-fuzz --example seeds`.

use std::path::Path;

use ferrovec_fuzz::template;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join(name), bytes).expect("write a seed");
}

/// Two seeds per file `pick` accepts: its index among them (the selector byte), then its bytes.
fn picked(corpus: &Path, target: &str, pick: fn(&str) -> bool) {
    let t = template();
    for (i, f) in t.files_where(pick).into_iter().enumerate() {
        let file = std::fs::read(t.root.join(f)).expect("read");
        // The collection's name too: the template's collections have files of the same names.
        let file_name = f.file_name().and_then(|n| n.to_str()).expect("name");
        let collection = f
            .iter()
            .skip_while(|c| c.to_str() != Some("collections"))
            .nth(1)
            .and_then(|c| c.to_str())
            .unwrap_or("store");
        let name = format!("{collection}-{file_name}");
        // As is, and with the selector's "fix up the checksums" bit set.
        for (prefix, selector) in [("seed", i as u8), ("resealed", i as u8 | 0x80)] {
            let bytes = [[selector].as_slice(), &file].concat();
            write(&corpus.join(target), &format!("{prefix}-{name}"), &bytes);
        }
    }
}

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let _ = std::fs::remove_dir_all(&corpus);
    let t = template();
    picked(&corpus, "log", ferrovec_fuzz::is_log);
    picked(&corpus, "manifest", ferrovec_fuzz::is_manifest);
    picked(&corpus, "segment", ferrovec_fuzz::is_segment_file);
    picked(&corpus, "payload_index", ferrovec_fuzz::is_payload_index);

    let tmp = std::env::temp_dir().join(format!("ferrovec-seeds-{}", std::process::id()));
    t.copy_to(&tmp.join("store"));
    let store = ferrovec_core::Store::open(&tmp.join("store"), Default::default()).expect("open");
    let info = store
        .create_snapshot(
            None,
            Some(&tmp.join("snapshots")),
            &ferrovec_core::cancel::NEVER,
        )
        .expect("snapshot");
    store.close().expect("close");
    let archive = std::fs::read(&info.path).expect("read the archive");
    let tar = zstd::decode_all(&archive[..]).expect("decompress");
    write(
        &corpus.join("snapshot_archive"),
        "seed-archive",
        &[[0u8].as_slice(), &archive].concat(),
    );
    write(
        &corpus.join("snapshot_archive"),
        "seed-tar",
        &[[1u8].as_slice(), &tar].concat(),
    );
    std::fs::remove_dir_all(&tmp).expect("clean up");

    let filters = [
        r#"{"must": [{"key": "k", "match": {"value": "v1"}}]}"#,
        r#"{"should": [{"key": "k", "match": {"any": ["v1", "v2"]}}, {"key": "n", "range": {"gte": 5, "lt": 20}}]}"#,
        r#"{"must_not": [{"key": "k", "match": {"except": ["v3"]}}], "must": [{"has_id": [11, 12, 305]}]}"#,
        r#"{"must": [{"key": "text", "match": {"text": "word3 common"}}]}"#,
        r#"{"must": [{"key": "text", "match": {"text_any": "word1 word2"}}, {"key": "text", "match": {"phrase": "common"}}]}"#,
        r#"{"must": [{"key": "tags", "values_count": {"gte": 2}}, {"key": "tags[]", "match": {"value": 1}}]}"#,
        r#"{"must": [{"key": "geo", "geo_radius": {"center": {"lat": 10.0, "lon": 10.0}, "radius": 500000.0}}]}"#,
        r#"{"must": [{"key": "geo", "geo_bounding_box": {"top_left": {"lat": 50.0, "lon": 0.0}, "bottom_right": {"lat": 0.0, "lon": 50.0}}}]}"#,
        r#"{"must": [{"nested": {"key": "nested", "filter": {"must": [{"key": "a", "match": {"value": 1}}]}}}]}"#,
        r#"{"must": [{"is_empty": {"key": "missing"}}, {"is_null": {"key": "k"}}]}"#,
        r#"{"min_should": {"conditions": [{"key": "n", "range": {"lt": 50}}, {"key": "k", "match": {"value": "v0"}}, {"key": "tags", "match": {"any": [1, 2]}}], "min_count": 2}}"#,
        r#"{"must": [{"must_not": [{"key": "n", "range": {"gt": 100}}]}, {"key": "n", "match": {"value": 7}}]}"#,
        r#"{"must": [{"key": "k", "match": {"value": "v2"}}, {"key": "n", "range": {"gt": 1.5, "lte": 150}}]}"#,
        r#"null"#,
    ];
    for (i, f) in filters.iter().enumerate() {
        let value: serde_json::Value = serde_json::from_str(f).expect("a seed filter is JSON");
        ferrovec_core::Filter::parse(&value).expect("a seed filter parses");
        write(
            &corpus.join("filter"),
            &format!("seed-{i:02}.json"),
            f.as_bytes(),
        );
    }
    eprintln!("seeds written to {}", corpus.display());
}
