//! The core's thread pool. `set_num_threads` (Python: `ferrovec.set_num_threads`) and the
//! `FERROVEC_NUM_THREADS` environment variable bound it; every parallel step runs inside it.

use std::sync::{Arc, LazyLock};

use parking_lot::RwLock;
use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};

static POOL: LazyLock<RwLock<Arc<ThreadPool>>> = LazyLock::new(|| {
    let n = std::env::var("FERROVEC_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    RwLock::new(Arc::new(build(n).unwrap_or_else(|_| fallback())))
});

fn build(n: usize) -> std::result::Result<ThreadPool, rayon::ThreadPoolBuildError> {
    ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("ferrovec-{i}"))
        .build()
}

fn fallback() -> ThreadPool {
    // One thread always builds; if even that failed the process could not spawn threads at all.
    match build(1) {
        Ok(p) => p,
        Err(e) => panic!("cannot start a thread pool: {e}"),
    }
}

/// Use `n` threads for parallel work from now on (0: one per CPU).
pub fn set_num_threads(n: usize) -> Result<()> {
    let pool = build(n).map_err(|e| Error::invalid(format!("cannot start {n} threads: {e}")))?;
    *POOL.write() = Arc::new(pool);
    Ok(())
}

pub fn num_threads() -> usize {
    POOL.read().current_num_threads()
}

/// Run `f` inside the pool, so that its rayon calls use the pool's threads.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let pool = POOL.read().clone();
    pool.install(f)
}
