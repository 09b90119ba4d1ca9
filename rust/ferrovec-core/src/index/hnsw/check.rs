//! The self-check after every build: recall@10 of the graph against an exact scan.

use rayon::prelude::*;

use super::space::{BuildSpace, FromNode};
use super::{Graph, Item};

impl Graph {
    /// Estimated recall@10 of searches at `ef`, leave-one-out: the neighbours of sampled nodes
    /// (the node itself excluded) against an exact scan, both in the `space` the graph was built
    /// on. The self-check after every build.
    pub fn self_check<S: BuildSpace>(
        &self,
        space: &S,
        ef: usize,
        samples: usize,
        seed: u64,
    ) -> f32 {
        let n = self.n.min(space.len());
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
                    let mut exact: Vec<Item> = (0..n as u32)
                        .filter(|&i| i != a)
                        .map(|i| Item {
                            d: space.between(a, i),
                            id: i,
                        })
                        .collect();
                    exact.select_nth_unstable(k - 1);
                    let truth: Vec<u32> = exact[..k].iter().map(|i| i.id).collect();
                    let from = FromNode { space, q: a };
                    let got = self.search_in(&from, ef.max(k), &|i| i != a, true);
                    got[..got.len().min(k)]
                        .iter()
                        .filter(|g| truth.contains(&g.id))
                        .count()
                })
                .sum()
        });
        hits as f32 / (samples * k) as f32
    }
}
