use super::*;
use crate::config::{CodeKind, HnswConfig};
use crate::index::quant::{self, Codes};

/// Clustered unit vectors: centres plus noise.
fn clustered(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut x = seed | 1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let centres: Vec<f32> = (0..50 * dim).map(|_| rnd()).collect();
    let mut out = Vec::with_capacity(n * dim);
    for i in 0..n {
        let c = &centres[(i % 50) * dim..(i % 50 + 1) * dim];
        let v: Vec<f32> = c.iter().map(|&c| c + 0.3 * rnd()).collect();
        distance::normalize_into(&v, &mut out);
    }
    out
}

/// A graph over `rows` built with `m` and `ef_construct`, seed 1.
fn graph(rows: Rows<'_>, metric: Distance, m: usize, ef_construct: usize) -> Graph {
    let params = HnswConfig {
        m,
        ef_construct,
        ..HnswConfig::default()
    };
    build(&RowSpace::new(rows, metric), &params, 1, &|| false)
}

#[test]
fn recall_is_high_and_rejected_nodes_are_never_returned() {
    let dim = 32;
    let data = clustered(5000, dim, 7);
    let rows = Rows::dense(&data, dim);
    let g = graph(rows, Distance::Cosine, 16, 100);
    let recall = g.self_check(&RowSpace::new(rows, Distance::Cosine), 64, 100, 3);
    assert!(recall >= 0.95, "recall {recall}");
    let q = rows.get(17);
    let even = |i: u32| i.is_multiple_of(2);
    let got = g.search(rows, Distance::Cosine, q, 10, 64, &even, true);
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|i| i.id % 2 == 0));
    // Round trip through bytes, as when written and mapped back.
    let bytes = g.as_bytes().to_vec();
    let mut file = vec![0u8; 64];
    file.extend_from_slice(&bytes);
    let g2 = Graph::from_mapped(Mapped::from_vec(file), 64, 5000, std::path::Path::new("g"));
    let g2 = match g2 {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    };
    let a = g.search(rows, Distance::Cosine, q, 10, 64, &|_| true, false);
    let b = g2.search(rows, Distance::Cosine, q, 10, 64, &|_| true, false);
    assert_eq!(a, b);
}

#[test]
fn filtered_traversal_keeps_recall_at_every_selectivity() {
    let dim = 32;
    let n = 5000;
    let data = clustered(n, dim, 13);
    let rows = Rows::dense(&data, dim);
    let g = graph(rows, Distance::Cosine, 16, 100);
    // Membership by a hash of the row, independent of the clusters.
    let member = |i: u32, per_mille: u64| {
        (u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % 1000 < per_mille
    };
    for per_mille in [500, 100, 10] {
        let accept = |i: u32| member(i, per_mille);
        let (mut hits, mut want) = (0, 0);
        for qi in (0..n as u32).step_by(97) {
            let q = rows.get(qi);
            let mut truth: Vec<(f32, u32)> = (0..n as u32)
                .filter(|&i| accept(i))
                .map(|i| (dist(Distance::Cosine, q, rows.get(i)), i))
                .collect();
            truth.sort_by(|a, b| a.0.total_cmp(&b.0));
            truth.truncate(10);
            let got = g.search(rows, Distance::Cosine, q, 10, 64, &accept, true);
            assert!(got.iter().all(|it| accept(it.id)));
            hits += truth
                .iter()
                .filter(|t| got.iter().any(|it| it.id == t.1))
                .count();
            want += truth.len();
        }
        let recall = hits as f64 / want as f64;
        assert!(recall >= 0.95, "{per_mille}‰: recall {recall}");
    }
}

/// The graph walked on each kind of codes, its best candidates rescored on f32, finds nearly
/// what the walk on f32 finds; without rescoring it returns the codes' estimates.
#[test]
fn search_on_codes_keeps_recall() {
    let dim = 48;
    let n = 4000;
    let data = clustered(n, dim, 21);
    let rows = Rows::dense(&data, dim);
    let g = graph(rows, Distance::Cosine, 16, 100);
    for (kind, min_overlap) in [
        (CodeKind::Int8, 0.97),
        (CodeKind::Int4, 0.95),
        (CodeKind::Binary, 0.9),
    ] {
        let body = quant::encode(kind, &data, dim);
        let words = quant::aligned(&body);
        let bytes = &bytemuck::cast_slice::<u32, u8>(&words)[..body.len()];
        let codes = Codes::parse(kind, dim, n, bytes).expect("codes parse");
        let rescore = Some(rescore_count(10, kind.default_oversampling()));
        let (mut same, mut total) = (0, 0);
        for qi in (0..n as u32).step_by(41) {
            let q = rows.get(qi);
            let exact = g.search(rows, Distance::Cosine, q, 10, 64, &|_| true, false);
            let mut exact_dist = |id: u32| Ok(dist(Distance::Cosine, q, rows.get(id)));
            let coded = g
                .search_coded(codes, &mut exact_dist, q, 10, 64, rescore, &|_| true, false)
                .expect("no I/O here");
            assert_eq!(coded.len(), 10);
            // Rescored on f32: distances are exact and sorted.
            for w in coded.windows(2) {
                assert!(w[0].d <= w[1].d);
            }
            for it in &coded {
                assert_eq!(it.d, dist(Distance::Cosine, q, rows.get(it.id)));
            }
            same += coded
                .iter()
                .filter(|c| exact.iter().any(|e| e.id == c.id))
                .count();
            total += 10;
            // Without rescoring: no row is read, and the distances are the estimates.
            let mut never = |_: u32| -> crate::error::Result<f32> { panic!("read a row") };
            let estimated = g
                .search_coded(codes, &mut never, q, 10, 64, None, &|_| true, false)
                .expect("no I/O here");
            assert_eq!(estimated.len(), 10);
            for w in estimated.windows(2) {
                assert!(w[0].d <= w[1].d);
            }
        }
        let overlap = same as f64 / total as f64;
        assert!(overlap >= min_overlap, "{kind:?}: overlap {same}/{total}");
    }
}

#[test]
fn extending_a_graph_keeps_recall() {
    let dim = 24;
    let data = clustered(4000, dim, 9);
    let first = Rows::dense(&data[..2000 * dim], dim);
    let all = Rows::dense(&data, dim);
    let base = graph(first, Distance::Dot, 12, 80);
    let space = RowSpace::new(all, Distance::Dot);
    let g = extend(&space, &base, 2, &|| false);
    assert_eq!(g.n, 4000);
    let recall = g.self_check(&space, 64, 100, 5);
    assert!(recall >= 0.95, "recall {recall}");
}

#[test]
fn damaged_graph_files_are_rejected_not_trusted() {
    let dim = 8;
    let data = clustered(300, dim, 3);
    let rows = Rows::dense(&data, dim);
    let g = graph(rows, Distance::Euclid, 8, 40);
    let mut file = vec![0u8; 64];
    file.extend_from_slice(g.as_bytes());
    let p = std::path::Path::new("g");
    assert!(Graph::from_mapped(
        Mapped::from_vec(file[..file.len() - 4].to_vec()),
        64,
        300,
        p
    )
    .is_err());
    assert!(Graph::from_mapped(Mapped::from_vec(file.clone()), 64, 299, p).is_err());
    // Neighbour ids out of range are skipped at search time, not followed.
    let mut bad = file.clone();
    for chunk in bad[64 + 4 * 200..].chunks_exact_mut(4).step_by(3) {
        chunk.copy_from_slice(&u32::MAX.to_le_bytes());
    }
    if let Ok(g) = Graph::from_mapped(Mapped::from_vec(bad), 64, 300, p) {
        let _ = g.search(
            rows,
            Distance::Euclid,
            rows.get(0),
            10,
            40,
            &|_| true,
            false,
        );
    }
}

/// Groups of equal vectors inserted in parallel into a graph (dot metric, where a random node
/// keeps a link to one member of a group only): every member stays reachable. Before the new
/// node's links merged those added to it meanwhile, a group split in two in 8 of 20 builds.
#[test]
fn equal_vectors_inserted_together_stay_connected() {
    let dim = 8;
    let mut x: u64 = 12345;
    let mut uniform = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let mut data: Vec<f32> = (0..2000 * dim)
        .map(|_| (0..4).map(|_| uniform()).sum::<f32>() * 1.7)
        .collect();
    for group in 1..=4 {
        for _ in 0..10 {
            data.extend(std::iter::repeat_n(group as f32, dim));
        }
    }
    let first = Rows::dense(&data[..2000 * dim], dim);
    let all = Rows::dense(&data, dim);
    let q = vec![1.0f32; dim];
    for seed in 0..40 {
        let first = RowSpace::new(first, Distance::Dot);
        let base = build(&first, &HnswConfig::default(), seed, &|| false);
        let g = extend(&RowSpace::new(all, Distance::Dot), &base, seed + 7, &|| {
            false
        });
        let got = g.search(all, Distance::Dot, &q, 10, 100, &|_| true, false);
        let ids: Vec<u32> = got.iter().map(|i| i.id).collect();
        // The ten rows of 4s are the ten best.
        assert!(ids.iter().all(|&i| i >= 2030), "seed {seed}: {ids:?}");
    }
}

/// A graph built on int8 codes (as a merge builds it) and searched on the f32 rows finds what
/// one built on the f32 rows finds, for every metric; and the codes' distances order pairs of
/// nodes as the f32 distances do.
#[test]
fn a_graph_built_on_int8_codes_is_as_good_as_one_built_on_f32() {
    let dim = 48;
    let data = clustered(4000, dim, 11);
    // Scaled and shifted for Euclid and Manhattan: codes must not assume unit vectors.
    let wide: Vec<f32> = data.iter().map(|x| 3.0 * x + 0.5).collect();
    for (metric, values) in [
        (Distance::Cosine, &data),
        (Distance::Dot, &data),
        (Distance::Euclid, &wide),
        (Distance::Manhattan, &wide),
    ] {
        let rows = Rows::dense(values, dim);
        let body = quant::encode(CodeKind::Int8, values, dim);
        let codes = Codes::parse(CodeKind::Int8, dim, 4000, &body).expect("codes");
        let at = quant::prefix_len(CodeKind::Int8, dim);
        let on_codes = CodeSpace::new(&body[at..], dim, metric, codes.params.scale);
        let on_rows = RowSpace::new(rows, metric);
        let params = HnswConfig {
            m: 12,
            ef_construct: 80,
            ..HnswConfig::default()
        };
        // Pairs ordered alike: d(0, i) < d(0, j) on codes iff on f32, but for near ties.
        let (mut agree, mut pairs) = (0, 0);
        for i in (1..4000u32).step_by(37) {
            for j in (2..4000u32).step_by(41) {
                let exact = on_rows.between(0, i) - on_rows.between(0, j);
                if exact.abs() > 0.02 * on_rows.between(0, i).abs().max(0.1) {
                    pairs += 1;
                    agree += usize::from(
                        (on_codes.between(0, i) < on_codes.between(0, j)) == (exact < 0.0),
                    );
                }
            }
        }
        assert!(
            agree * 100 >= pairs * 99,
            "{metric:?}: {agree} of {pairs} pairs ordered alike"
        );
        let g_codes = build(&on_codes, &params, 1, &|| false);
        let g_rows = build(&on_rows, &params, 1, &|| false);
        // Searched on the f32 rows, against an exact scan.
        let recall = |g: &Graph| g.self_check(&on_rows, 64, 100, 3);
        let (by_codes, by_rows) = (recall(&g_codes), recall(&g_rows));
        assert!(
            by_codes >= 0.95,
            "{metric:?}: recall {by_codes} built on codes"
        );
        assert!(
            by_codes >= by_rows - 0.02,
            "{metric:?}: recall {by_codes} built on codes, {by_rows} on f32"
        );
    }
}
