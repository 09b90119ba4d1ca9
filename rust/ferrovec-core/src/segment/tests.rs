use super::*;
use crate::config::{CodeKind, Distance, HnswConfig};
use crate::index::hnsw::{self, RowSpace, Rows};
use crate::io::OsFs;

/// A large segment with codes reads the rows it rescores with pread (no mapping); the
/// distances must be those of the mapped rows, for each of a point's two vectors, and a
/// row past the end is an error.
#[test]
fn rescorer_reads_rows_with_pread_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rows = 300usize;
    let config = crate::config::CollectionConfig::with_vectors(vec![
        crate::config::VectorSpec {
            name: "a".into(),
            dim: 16,
            distance: Distance::Dot,
        },
        crate::config::VectorSpec {
            name: "b".into(),
            dim: 8,
            distance: Distance::Euclid,
        },
    ])
    .expect("config");
    let spaces = config.spaces();
    let width = config.width();
    let vectors: Vec<f32> = (0..rows * width)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect();
    let ids: Vec<PointId> = (0..rows as u64).map(PointId::Num).collect();
    let payloads = vec![None; rows];
    let data = SegmentData {
        ids: &ids,
        vectors: Some(&vectors),
        payloads: &payloads,
        sparse: &[],
    };
    let built: Vec<Graph> = spaces
        .iter()
        .map(|&sp| {
            hnsw::build(
                &RowSpace::new(Rows::of(&vectors, sp), sp.distance),
                &HnswConfig {
                    m: 8,
                    ef_construct: 32,
                    ..HnswConfig::default()
                },
                1,
                &|| false,
            )
        })
        .collect();
    let graphs: Vec<GraphData<'_>> = spaces
        .iter()
        .zip(&built)
        .map(|(&space, graph)| GraphData { space, graph })
        .collect();
    let fs: Arc<dyn FileSystem> = Arc::new(OsFs);
    write_segment(&*fs, dir.path(), 1, width as u32, &data, &graphs).expect("write segment");
    // Vector 0's graph is walked on int8 codes.
    let mut values = Vec::new();
    push_space_values(&vectors, spaces[0], &mut values);
    let body = crate::index::quant::encode(CodeKind::Int8, &values, spaces[0].dim);
    write_code_body(
        &*fs,
        dir.path(),
        1,
        spaces[0],
        CodeKind::Int8,
        rows,
        &[&body],
    )
    .expect("write codes");
    let mut seg = Segment::open(
        fs.clone(),
        dir.path(),
        1,
        rows,
        &Shape {
            spaces: &spaces,
            codes: &[Some(CodeKind::Int8), None],
            absent: &[],
            sparse: 0,
            rows_from_disk: PREAD_MIN_BYTES,
        },
    )
    .expect("open");
    assert!(seg.row_file.is_none(), "a small segment reads its mapping");
    assert!(seg.codes(0).expect("codes").is_some());
    assert!(seg.codes(1).expect("codes").is_none());
    assert!(seg.graph(1).expect("graph").is_some());
    seg.verify(None).expect("checksums");
    // As `open` does for a segment of PREAD_MIN_BYTES or more.
    let rows_path = dir.path().join(vec_name(1));
    Arc::get_mut(&mut seg).expect("one handle").row_file =
        Some(fs.open_read(&rows_path).expect("open for pread"));
    for sp in spaces {
        let q: Vec<f32> = (0..sp.dim).map(|i| i as f32 / sp.dim as f32).collect();
        let mut exact = seg.rescorer(sp, &q);
        for row in [0u32, 1, 150, rows as u32 - 1] {
            let v = &seg.vector(row as usize)[sp.offset..sp.offset + sp.dim];
            assert_eq!(
                exact(row).expect("read row"),
                hnsw::dist(sp.distance, &q, v)
            );
        }
        assert!(exact(rows as u32).is_err());
    }
}
