//! How many CPU threads the engine computes with (the `flex` CPU backend parallelises through
//! rayon). The app leaves the UI thread a core: its engine runs its jobs inside a pool of
//! `cores − 1` threads by default ([`app_default_threads`]); the command line uses every core
//! unless `--threads` / `M2C_THREADS` says otherwise ([`use_threads_globally`]).
//!
//! burn-flex sizes its work from `rayon::current_num_threads()` and hands gemm
//! `Parallelism::Rayon(0)` (all threads of the current pool), so running a job inside a pool's
//! `install` caps every kernel of that job, matmuls included. A GPU device is not affected.

use std::sync::Arc;

/// Environment variable for the command line's thread count (`--threads` reads it too).
pub const THREADS_ENV: &str = "M2C_THREADS";

/// The cores this process may use (1 when the platform cannot say).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The app's default: every core but one for the UI, at least one.
pub fn app_default_threads() -> usize {
    available_cores().saturating_sub(1).max(1)
}

/// A fixed-size pool the engine runs its jobs in.
#[derive(Debug, Clone)]
pub struct ComputePool {
    pool: Arc<rayon::ThreadPool>,
    threads: usize,
}

/// The pool could not be started (the OS refused a thread).
#[derive(Debug, thiserror::Error)]
#[error("could not start {threads} compute threads")]
pub struct ComputePoolError {
    pub threads: usize,
    #[source]
    source: rayon::ThreadPoolBuildError,
}

impl ComputePool {
    /// A pool of `threads` threads (0 is taken as 1).
    pub fn new(threads: usize) -> Result<Self, ComputePoolError> {
        let threads = threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("m2c-compute-{i}"))
            .build()
            .map_err(|source| ComputePoolError { threads, source })?;
        Ok(Self {
            pool: Arc::new(pool),
            threads,
        })
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` with every CPU kernel it starts limited to this pool.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }
}

/// Sizes rayon's global pool for this process (the command line): `threads`, or every core
/// when `None`. Must run before the first parallel kernel; a second call changes nothing and
/// says so.
pub fn use_threads_globally(threads: Option<usize>) -> Result<usize, ComputePoolError> {
    let threads = threads.unwrap_or_else(available_cores).max(1);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("m2c-compute-{i}"))
        .build_global()
        .map_err(|source| ComputePoolError { threads, source })?;
    Ok(threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_caps_the_threads_its_jobs_see() {
        let pool = ComputePool::new(1).expect("one thread starts");
        assert_eq!(pool.install(rayon::current_num_threads), 1);
        let pool = ComputePool::new(3).expect("three threads start");
        assert_eq!(pool.install(rayon::current_num_threads), 3);
        assert_eq!(ComputePool::new(0).expect("starts").threads(), 1);
    }

    #[test]
    fn the_app_leaves_a_core_for_the_ui() {
        let cores = available_cores();
        assert_eq!(app_default_threads(), cores.saturating_sub(1).max(1));
    }
}
