//! What the fuzz targets run, shared with the stable tests of this crate (corpus replay and the
//! random mutation harness), so the same code is fuzzed with coverage by `cargo fuzz` and
//! replayed by `cargo test`.
//!
//! Every target takes untrusted bytes to one reader of ferrovec-core: a file of a real store
//! (log, manifest, a segment's files, payload index), a snapshot archive, or a JSON filter. The
//! store is then opened and used. Any outcome is fine but a panic, an abort, an allocation past
//! libFuzzer's `-malloc_limit_mb`, or a hang past its `-timeout`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ferrovec_core::query::universal::QueryRequest;
use ferrovec_core::{
    CodeKind, Collection, CollectionConfig, Distance, Filter, IndexKind, Lookups, Matrix, Modifier,
    PayloadSelector, PointId, Quantization, SearchParams, SparseInput, SparseSpec, SparseVector,
    StorageOptions, Store, VectorData, VectorSpec, Vectors,
};

/// Dimension of the template's vectors (small: files stay a few KiB, executions fast).
pub const DIM: usize = 8;
const COLLECTION: &str = "c";
/// Collections of the template walked on int4 and binary codes (named to sort after
/// `COLLECTION`, so the seeds' selector bytes keep picking the same files of it).
const CODED: [(&str, CodeKind); 2] = [
    ("coded-int4", CodeKind::Int4),
    ("coded-q1", CodeKind::Binary),
];

fn options() -> StorageOptions {
    StorageOptions {
        background_optimizer: false,
        ..StorageOptions::default()
    }
}

/// A deterministic generator (splitmix64): the template and the mutations repeat run to run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    fn vectors(&mut self, n: usize) -> Vec<f32> {
        (0..n * DIM)
            .map(|_| (self.next_u64() % 2000) as f32 / 1000.0 - 1.0)
            .collect()
    }
}

fn ids(range: std::ops::Range<u64>) -> Vec<PointId> {
    range.map(PointId::Num).collect()
}

/// Where this process keeps its template store and its scratch stores:
/// `$FERROVEC_FUZZ_DIR` (default: the system's temporary directory), then `ferrovec-fuzz-<pid>`.
fn work_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base =
            std::env::var_os("FERROVEC_FUZZ_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
        // A process leaves its directory behind (libFuzzer exits without unwinding): remove
        // those of processes that are gone.
        if let Ok(entries) = std::fs::read_dir(&base) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("ferrovec-fuzz-") {
                    if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let dir = base.join(format!("ferrovec-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the fuzz work directory");
        dir
    })
}

/// A store with every kind of file: a segment with an HNSW graph, int8 codes, deletions, a
/// keyword payload index and sparse vectors with their inverted index, a second unindexed
/// segment, and log records (sparse ones too) after the checkpoint; beside it, a collection
/// walked on int4 codes and one on binary codes (`CODED`).
pub struct Template {
    pub root: PathBuf,
    /// Every file of the store, relative to `root` (not `LOCK` or `SHARED`, which belong to
    /// the processes that have it open).
    pub files: Vec<PathBuf>,
}

impl Template {
    fn build(root: &Path) -> Template {
        let store = Store::open(root, options()).expect("open the template store");
        let dense = VectorSpec {
            name: String::new(),
            dim: DIM as u32,
            distance: Distance::Cosine,
        };
        let mut config =
            CollectionConfig::with_all(vec![dense], vec![SparseSpec::new("s", Modifier::Idf)])
                .expect("config");
        config.hnsw.full_scan_threshold = 50;
        let col = store
            .create_collection(COLLECTION, config, false)
            .expect("create");
        let mut rng = Rng::new(3);
        let payloads: Vec<_> = (0..200)
            .map(|i| {
                serde_json::json!({
                    "k": format!("v{}", i % 5),
                    "n": i,
                    "text": format!("word{} common", i % 7),
                    "tags": [i % 3, i % 4],
                    "geo": {"lat": (i % 90) as f64, "lon": (i % 180) as f64},
                    "nested": [{"a": i % 2}],
                })
                .as_object()
                .cloned()
            })
            .collect();
        let rows = rng.vectors(200);
        // Most points get a sparse vector (a BM25 document for some), the rest none.
        let sparse: Vec<Option<SparseInput>> = (0..200u32)
            .map(|i| match i % 4 {
                0 => None,
                1 => Some(SparseInput::Document(ferrovec_core::Document {
                    text: format!("word{} common running runs", i % 7),
                    model: "qdrant/bm25".into(),
                    options: serde_json::Map::new(),
                })),
                _ => Some(SparseInput::Vector(SparseVector {
                    indices: vec![i % 11, 20 + i % 13, 40 + i % 3],
                    values: vec![0.5, 1.0, (i % 5) as f32],
                })),
            })
            .collect();
        let vectors = Vectors::Named(vec![
            (
                String::new(),
                VectorData::Dense(Matrix::new(&rows, 200, DIM).expect("matrix")),
            ),
            ("s".into(), VectorData::Sparse(sparse)),
        ]);
        col.upsert_batch(
            &ids(0..200),
            &vectors,
            Some(&payloads),
            false,
            &ferrovec_core::cancel::NEVER,
        )
        .expect("upsert");
        col.create_payload_index("k", IndexKind::Keyword)
            .expect("keyword index");
        col.create_payload_index("n", IndexKind::Integer)
            .expect("integer index");
        col.optimize(&ferrovec_core::cancel::NEVER)
            .expect("optimize");
        col.delete(&ids(0..10)).expect("delete");
        col.upsert(&ids(200..240), &rng.vectors(40), None)
            .expect("upsert");
        col.flush().expect("flush");
        col.upsert(&ids(300..320), &rng.vectors(20), None)
            .expect("upsert after the checkpoint");
        col.delete(&ids(300..302))
            .expect("delete after the checkpoint");
        for (name, kind) in CODED {
            let mut config = CollectionConfig::new(DIM as u32, Distance::Cosine).expect("config");
            config.hnsw.full_scan_threshold = 50;
            config.quantization = Some(Quantization {
                codes: Some(kind),
                oversampling: Some(3.0),
                rescore: true,
                always_ram: None,
            });
            let coded = store
                .create_collection(name, config, false)
                .expect("create");
            coded
                .upsert(&ids(0..120), &rng.vectors(120), None)
                .expect("upsert");
            coded
                .optimize(&ferrovec_core::cancel::NEVER)
                .expect("optimize");
        }
        store.close().expect("close the template store");
        let mut files = Vec::new();
        list_files(root, root, &mut files);
        files.sort();
        Template {
            root: root.to_path_buf(),
            files,
        }
    }

    /// The template's files whose names pass `pick`.
    pub fn files_where(&self, pick: impl Fn(&str) -> bool) -> Vec<&Path> {
        self.files
            .iter()
            .filter(|f| f.to_str().is_some_and(&pick))
            .map(PathBuf::as_path)
            .collect()
    }

    /// A fresh copy of the store (files copied, never linked: the store writes to them).
    pub fn copy_to(&self, to: &Path) {
        let _ = std::fs::remove_dir_all(to);
        for f in &self.files {
            let dest = to.join(f);
            std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
            // libFuzzer's timeout alarm may interrupt a copy: copy_file starts it again.
            ferrovec_core::io::copy_file(&self.root.join(f), &dest).expect("copy");
        }
        for name in std::iter::once(COLLECTION).chain(CODED.map(|(name, _)| name)) {
            let col = to.join("collections").join(name);
            for dir in ["segments", "wal"] {
                std::fs::create_dir_all(col.join(dir)).expect("mkdir");
            }
        }
    }
}

fn list_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("list") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            list_files(root, &p, out);
        } else if !matches!(
            p.file_name().and_then(|n| n.to_str()),
            Some("LOCK" | "SHARED")
        ) {
            out.push(p.strip_prefix(root).expect("under").to_path_buf());
        }
    }
}

/// The template store, built once per process.
pub fn template() -> &'static Template {
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| Template::build(&work_dir().join("template")))
}

/// A scratch directory per thread (the stable tests run in parallel threads of one process).
fn scratch() -> PathBuf {
    let thread = format!("{:?}", std::thread::current().id());
    let tag: String = thread.chars().filter(char::is_ascii_digit).collect();
    work_dir().join(format!("run-{tag}"))
}

/// What an input reached: whether the store opened, and whether every use of it succeeded.
/// The seeds must reach `Used`; a mutated input may stop anywhere short of a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reached {
    Refused,
    Opened,
    Used,
}

/// Open the store at `root` and use every reader: count, exact and graph search (with and
/// without an indexed filter), get, scroll with payloads and vectors, facet, verify, a write.
pub fn exercise(root: &Path) -> Reached {
    let Ok(store) = Store::open(root, options()) else {
        return Reached::Refused;
    };
    let Ok(col) = store.collection(COLLECTION) else {
        return Reached::Refused;
    };
    let used = use_collection(&col) && col.verify().is_ok() && use_coded(&store);
    let written = col.upsert(&[PointId::Num(999)], &[0.5; DIM], None).is_ok();
    let closed = store.close().is_ok();
    if used && written && closed {
        Reached::Used
    } else {
        Reached::Opened
    }
}

/// Search the collections walked on int4 and binary codes (rescored, and on the codes alone).
fn use_coded(store: &Store) -> bool {
    CODED.iter().all(|(name, _)| {
        let Ok(col) = store.collection(name) else {
            return false;
        };
        let q = [0.3f32; DIM];
        let estimated = SearchParams {
            quantization: Some(ferrovec_core::QuantizationParams {
                rescore: Some(false),
                ..Default::default()
            }),
            ..SearchParams::default()
        };
        col.search(&q, &SearchParams::default())
            .is_ok_and(|h| h.len() == 10)
            && col.search(&q, &estimated).is_ok_and(|h| h.len() == 10)
            && col.verify().is_ok()
    })
}

fn use_collection(col: &Collection) -> bool {
    let q = [0.3f32; DIM];
    let keyword =
        Filter::parse(&serde_json::json!({"must": [{"key": "k", "match": {"value": "v1"}}]}))
            .expect("a valid filter");
    let range = Filter::parse(
        &serde_json::json!({"must": [{"key": "n", "range": {"gte": 20, "lt": 120}}]}),
    )
    .expect("a valid filter");
    let graph = SearchParams {
        ef: Some(64),
        ..SearchParams::default()
    };
    let exact = SearchParams {
        exact: true,
        ..SearchParams::default()
    };
    let filtered = SearchParams {
        filter: Some(keyword.clone()),
        ..SearchParams::default()
    };
    let sparse = SearchParams {
        using: Some("s".into()),
        ..SearchParams::default()
    };
    let sv = SparseVector {
        indices: vec![1, 21, 41],
        values: vec![1.0, 0.5, 2.0],
    };
    let hybrid = QueryRequest::parse(
        &serde_json::json!({
            "prefetch": [
                {"query": q.to_vec(), "limit": 20},
                {"query": {"indices": [1, 21, 41], "values": [1.0, 0.5, 2.0]}, "using": "s"},
                {"query": {"text": "common runs", "model": "qdrant/bm25"}, "using": "s",
                 "filter": {"must": [{"key": "k", "match": {"value": "v1"}}]}}
            ],
            "query": {"fusion": "rrf"},
            "limit": 10,
            "with_vector": true,
        }),
        true,
    )
    .expect("a valid query");
    let results = [
        col.count().is_ok(),
        col.search_sparse(&sv, &sparse).is_ok(),
        col.query(&hybrid, &Lookups::new()).is_ok(),
        col.search(&q, &graph).is_ok(),
        col.search(&q, &exact).is_ok(),
        col.search(&q, &filtered).is_ok(),
        col.count_filtered(&keyword).is_ok(),
        col.count_filtered(&range).is_ok(),
        col.facet("k", &Filter::default(), 10).is_ok(),
        col.get(
            &[PointId::Num(42), PointId::Num(305), PointId::Num(210)],
            &PayloadSelector::All,
            true,
        )
        .is_ok(),
        col.scroll(1000, None, &PayloadSelector::All, true, None)
            .is_ok(),
    ];
    results.iter().all(|&ok| ok)
}

/// Replace the template's file `rel` with `data` in a fresh copy and use the store.
pub fn with_file(rel: &Path, data: &[u8]) -> Reached {
    let root = scratch();
    template().copy_to(&root);
    std::fs::write(root.join(rel), data).expect("write the input");
    exercise(&root)
}

pub fn is_log(f: &str) -> bool {
    f.ends_with(".wal")
}
pub fn is_manifest(f: &str) -> bool {
    f.ends_with("/MANIFEST")
}
pub fn is_payload_index(f: &str) -> bool {
    f.contains("/segments/") && f.contains(".pidx-")
}
pub fn is_segment_file(f: &str) -> bool {
    f.contains("/segments/") && !is_payload_index(f)
}

/// The first byte picks one of the template's files that `pick` accepts (its low 7 bits; for a
/// target with one file they are ignored) and, by its high bit, whether to make the file's
/// checksums agree with the rest of the input, which then replaces the file. Without that
/// fix-up nearly every mutation stops at a checksum; with it, mutations reach the decoders
/// behind the checksums (postcard records and manifests, graphs, indexes, payload JSON).
fn picked_file(data: &[u8], pick: fn(&str) -> bool) -> Reached {
    let files = template().files_where(pick);
    let Some((&selector, rest)) = data.split_first() else {
        return Reached::Refused;
    };
    let file = files[(selector & 0x7f) as usize % files.len()];
    if selector & 0x80 == 0 {
        return with_file(file, rest);
    }
    let mut bytes = rest.to_vec();
    reseal(&mut bytes, file.to_str().is_some_and(is_log));
    with_file(file, &bytes)
}

const HEADER_LEN: usize = 64;
const FRAME_HEADER_LEN: usize = 16;

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Set the checksums of a ferrovec file (docs/FORMAT.md) to match its bytes: the header's
/// body length, body CRC and header CRC, and for a log file each whole record's CRC.
pub fn reseal(bytes: &mut [u8], log: bool) {
    if bytes.len() < HEADER_LEN {
        return;
    }
    let body_len = (bytes.len() - HEADER_LEN) as u64;
    bytes[32..40].copy_from_slice(&body_len.to_le_bytes());
    if !log {
        let crc = crc32c::crc32c(&bytes[HEADER_LEN..]);
        bytes[40..44].copy_from_slice(&crc.to_le_bytes());
    }
    let crc = crc32c::crc32c(&bytes[0..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    if !log {
        return;
    }
    let mut pos = HEADER_LEN;
    while pos + FRAME_HEADER_LEN <= bytes.len() {
        let len = u32_at(bytes, pos) as usize;
        let end = pos + FRAME_HEADER_LEN + len;
        if len == 0 || end > bytes.len() {
            break;
        }
        let mut crc = crc32c::crc32c(&bytes[pos..pos + 4]);
        crc = crc32c::crc32c_append(crc, &bytes[pos + 8..end]);
        bytes[pos + 4..pos + 8].copy_from_slice(&crc.to_le_bytes());
        pos = end;
    }
}

/// A log file: frames, their checksums, the postcard records inside, their payload JSON.
pub fn log(data: &[u8]) -> Reached {
    picked_file(data, is_log)
}

/// The collection's manifest: header, postcard body, the segments and graphs it lists.
pub fn manifest(data: &[u8]) -> Reached {
    picked_file(data, is_manifest)
}

/// One of a segment's files: vectors, ids, payloads, deletion bitmap, graph, int8 codes.
pub fn segment(data: &[u8]) -> Reached {
    picked_file(data, is_segment_file)
}

/// A payload index file (keyword or integer).
pub fn payload_index(data: &[u8]) -> Reached {
    picked_file(data, is_payload_index)
}

/// A snapshot archive. First byte even: the rest is the archive as is (zstd-compressed tar);
/// odd: the rest is a tar, compressed here, so mutations reach the tar and index readers
/// rather than stopping at zstd's frame checks. A verified archive is also restored.
pub fn snapshot_archive(data: &[u8]) -> Reached {
    let Some((&mode, rest)) = data.split_first() else {
        return Reached::Refused;
    };
    let archive_bytes = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        zstd::encode_all(rest, 1).expect("compress in memory")
    };
    let dir = scratch();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let archive = dir.join("input.snapshot");
    std::fs::write(&archive, archive_bytes).expect("write the input");
    if ferrovec_core::snapshot::verify_archive(&archive).is_err() {
        return Reached::Refused;
    }
    let Ok(store) = Store::open(&dir.join("store"), options()) else {
        return Reached::Opened;
    };
    let restored = ferrovec_core::snapshot::restore(
        &archive,
        &store,
        None,
        false,
        &ferrovec_core::cancel::NEVER,
    )
    .is_ok();
    let used = restored
        && store
            .collection(COLLECTION)
            .is_ok_and(|col| use_collection(&col));
    if store.close().is_ok() && used {
        Reached::Used
    } else {
        Reached::Opened
    }
}

/// The collection the filter target evaluates filters on, opened once per process.
fn filter_collection() -> &'static Arc<Collection> {
    static C: OnceLock<(Arc<Store>, Arc<Collection>)> = OnceLock::new();
    &C.get_or_init(|| {
        let root = work_dir().join("filter");
        template().copy_to(&root);
        let store = Store::open(&root, options()).expect("open the filter store");
        let col = store.collection(COLLECTION).expect("collection");
        (store, col)
    })
    .1
}

/// A JSON filter: parsed, then evaluated by count (indexes and payload scans), search and
/// scroll, which must all agree on the matching points.
pub fn filter(data: &[u8]) -> Reached {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return Reached::Refused;
    };
    let Ok(filter) = Filter::parse(&value) else {
        return Reached::Refused;
    };
    let col = filter_collection();
    let count = col
        .count_filtered(&filter)
        .expect("count on a valid filter");
    let (page, _) = col
        .scroll(10_000, None, &PayloadSelector::None, false, Some(&filter))
        .expect("scroll on a valid filter");
    assert_eq!(count, page.len(), "count and scroll disagree on {value}");
    let params = SearchParams {
        exact: true,
        k: 10_000,
        filter: Some(filter),
        allow_zero: true,
        ..SearchParams::default()
    };
    let hits = col
        .search(&[0.3f32; DIM], &params)
        .expect("search on a valid filter");
    assert_eq!(count, hits.len(), "count and search disagree on {value}");
    Reached::Used
}

/// A target: untrusted bytes in, how far they got out.
pub type Target = fn(&[u8]) -> Reached;

/// The targets by name, as `cargo fuzz` and the corpus directories name them.
pub const TARGETS: [(&str, Target); 6] = [
    ("log", log),
    ("manifest", manifest),
    ("segment", segment),
    ("payload_index", payload_index),
    ("snapshot_archive", snapshot_archive),
    ("filter", filter),
];
