//! The self-check after every build: recall@10 of the graph against an exact scan.

use rayon::prelude::*;

use super::{dist, Graph, Item, Rows};
use crate::config::Distance;

impl Graph {
    /// Estimated recall@10 of searches at `ef`, leave-one-out: the neighbours of sampled rows
    /// (the row itself excluded) against an exact scan. The self-check after every build.
    pub fn self_check(
        &self,
        rows: Rows<'_>,
        metric: Distance,
        ef: usize,
        samples: usize,
        seed: u64,
    ) -> f32 {
        let n = self.n.min(rows.len());
        if n < 20 {
            return 1.0;
        }
        let k = 10;
        let mut x = seed | 1;
        let picks: Vec<u32> = (0..samples)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % n as u64) as u32
            })
            .collect();
        let hits: usize = crate::pool::install(|| {
            picks
                .par_iter()
                .map(|&a| {
                    let q = rows.get(a);
                    let mut exact: Vec<Item> = (0..n as u32)
                        .filter(|&i| i != a)
                        .map(|i| Item {
                            d: dist(metric, q, rows.get(i)),
                            id: i,
                        })
                        .collect();
                    exact.select_nth_unstable(k - 1);
                    let truth: Vec<u32> = exact[..k].iter().map(|i| i.id).collect();
                    let got = self.search(rows, metric, q, k, ef, &|i| i != a, true);
                    got.iter().filter(|g| truth.contains(&g.id)).count()
                })
                .sum()
        });
        hits as f32 / (samples * k) as f32
    }
}
