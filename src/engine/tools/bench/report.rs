//! What a benchmark run reports: one [`BenchRow`] per stage, the [`BenchReport`] around them,
//! and the rows derived from others instead of run.

use serde::Serialize;

use super::BenchPreset;

/// How a row was obtained.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RowStatus {
    /// Timed as described.
    Measured,
    /// Computed from other rows, not run.
    Estimated { basis: String },
    /// The stage ran out of memory (caught).
    OutOfMemory { message: String },
    /// Not run on request.
    Skipped { reason: String },
    /// Not run: the extrapolated need exceeds the limit.
    DoesNotFit { need_bytes: u64, limit_bytes: u64 },
    /// The stage failed for another reason.
    Failed { message: String },
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchRow {
    pub stage: String,
    /// Images the stage works on (0 where it does not apply).
    pub images: usize,
    /// Timed runs behind the figures.
    pub runs: usize,
    pub median_ms: Option<f64>,
    pub min_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Peak resident set of the process during the stage (see the module doc).
    pub peak_rss_bytes: Option<u64>,
    /// wgpu allocator reservation after the stage; `None` where the backend does not report it.
    pub device_reserved_bytes: Option<u64>,
    #[serde(flatten)]
    pub status: RowStatus,
}

impl BenchRow {
    pub(super) fn new(stage: String, images: usize) -> Self {
        Self {
            stage,
            images,
            runs: 0,
            median_ms: None,
            min_ms: None,
            max_ms: None,
            peak_rss_bytes: None,
            device_reserved_bytes: None,
            status: RowStatus::Measured,
        }
    }

    pub(super) fn with_status(mut self, status: RowStatus) -> Self {
        self.status = status;
        self
    }
}

/// Everything a benchmark run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// `m2c doctor`'s device line.
    pub device: String,
    /// Cargo profile the binary was built with (`dev` or `release`).
    pub profile: &'static str,
    pub preset: BenchPreset,
    /// Where the weights came from.
    pub weights: String,
    /// Input side S.
    pub image_size: usize,
    pub warmup: usize,
    /// Float parameters of the model and the bytes they occupy.
    pub weight_params: u64,
    pub weight_bytes: u64,
    /// Whether the peak RSS was reset before each stage (else: since the process started).
    pub rss_peak_per_stage: bool,
    pub memory_limit_bytes: u64,
    pub rows: Vec<BenchRow>,
}

/// The Cargo profile of this build.
pub const fn build_profile() -> &'static str {
    if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    }
}

/// A re-encoding step derived as K encodes plus the cached step of the same K.
pub(super) fn estimated_reencode_row(
    stage: String,
    k: usize,
    encode_ms: Option<f64>,
    cached_ms: &[(usize, f64)],
) -> BenchRow {
    let cached = cached_ms.iter().find(|(m, _)| *m == k).map(|(_, ms)| *ms);
    match (encode_ms, cached) {
        (Some(encode), Some(cached)) => {
            let ms = k as f64 * encode + cached;
            let mut row = BenchRow::new(stage, k).with_status(RowStatus::Estimated {
                basis: format!("{k} × encode_image median + cached step K={k}"),
            });
            row.median_ms = Some(ms);
            row
        }
        _ => BenchRow::new(stage, k).with_status(RowStatus::Failed {
            message: "not measured, and the encode or cached-step figure to derive it is missing"
                .to_owned(),
        }),
    }
}

/// A whole search derived as `steps` × the cached step of the same K.
pub(super) fn estimated_search_row(
    stage: String,
    k: usize,
    steps: u32,
    cached_ms: &[(usize, f64)],
) -> BenchRow {
    match cached_ms.iter().find(|(m, _)| *m == k) {
        Some((_, step)) => {
            let mut row = BenchRow::new(stage, k).with_status(RowStatus::Estimated {
                basis: format!("{steps} × cached step K={k}"),
            });
            row.median_ms = Some(f64::from(steps) * step);
            row
        }
        None => BenchRow::new(stage, k).with_status(RowStatus::Failed {
            message: format!("not run, and no measured cached step K={k} to derive it from"),
        }),
    }
}

pub(super) fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), 3.0);
    }
}
