//! Build and sweep our HNSW on raw f32 files (a development probe; the real benchmark is
//! benches/bench_ann.py). Usage: hnsw_probe BASE.f32 QUERIES.f32 GT.i32 DIM M EF_CONSTRUCT

#![allow(clippy::print_stdout)] // a command-line probe: printing is its job

use std::time::Instant;

use ferrovec_core::index::hnsw::{self, Rows};
use ferrovec_core::{Distance, HnswConfig};

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
    let g = hnsw::build(
        rows,
        Distance::Cosine,
        &HnswConfig {
            m,
            ef_construct: efc,
            ..HnswConfig::default()
        },
        1,
        &|| false,
    );
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
