//! Build and sweep our HNSW on raw f32 files (a development probe; the real benchmark is
//! benches/bench_ann.py). Usage: hnsw_probe BASE.f32 QUERIES.f32 GT.i32 DIM M EF_CONSTRUCT
//! [f32|int8]: the graph is built on the f32 rows (the default) or on their int8 codes, as a
//! merge builds it; either way it is searched on the f32 rows.

#![allow(clippy::print_stdout)] // a command-line probe: printing is its job

use std::time::Instant;

use ferrovec_core::index::hnsw::{self, CodeSpace, RowSpace, Rows};
use ferrovec_core::index::quant::{self, Codes};
use ferrovec_core::{CodeKind, Distance, HnswConfig};

fn read_f32(p: &str) -> Vec<f32> {
    let b = std::fs::read(p).expect("read");
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let dim: usize = a[4].parse().expect("dim");
    let m: usize = a[5].parse().expect("m");
    let efc: usize = a[6].parse().expect("efc");
    let base = read_f32(&a[1]);
    let qs = read_f32(&a[2]);
    let gt: Vec<i32> = std::fs::read(&a[3])
        .expect("gt")
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let rows = Rows::dense(&base, dim);
    let t = Instant::now();
    let params = HnswConfig {
        m,
        ef_construct: efc,
        ..HnswConfig::default()
    };
    let on_codes = a.get(7).is_some_and(|s| s == "int8");
    let g = if on_codes {
        let body = quant::encode(CodeKind::Int8, &base, dim);
        let n = base.len() / dim;
        let codes = Codes::parse(CodeKind::Int8, dim, n, &body).expect("codes");
        let rows_at = quant::prefix_len(CodeKind::Int8, dim);
        let space = CodeSpace::new(&body[rows_at..], dim, Distance::Cosine, codes.params.scale);
        hnsw::build(&space, &params, 1, &|| false)
    } else {
        hnsw::build(&RowSpace::new(rows, Distance::Cosine), &params, 1, &|| {
            false
        })
    };
    println!("build {:.2}s", t.elapsed().as_secs_f64());
    let nq = qs.len() / dim;
    for ef in [16, 24, 32, 48, 64, 96, 128] {
        let t = Instant::now();
        let mut hits = 0;
        for i in 0..nq {
            let q = &qs[i * dim..(i + 1) * dim];
            let r = g.search(rows, Distance::Cosine, q, 10, ef, &|_| true, false);
            let truth = &gt[i * 10..(i + 1) * 10];
            hits += r.iter().filter(|x| truth.contains(&(x.id as i32))).count();
        }
        let dt = t.elapsed().as_secs_f64();
        println!(
            "ef={ef} recall={:.4} qps={:.0}",
            hits as f64 / (nq * 10) as f64,
            nq as f64 / dt
        );
    }
}
