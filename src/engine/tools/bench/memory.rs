//! Memory figures of the process and the device: peak and current resident set from
//! `/proc/self/status`, the default limit from `/proc/meminfo`, and the extrapolation that keeps a
//! search step that would not fit from running (an allocation failure on the CPU aborts).

use burn::tensor::Device;

use super::report::RowStatus;
use crate::model::ImageFeatures;

/// `Ok` when a step on `k` images should fit in `limit`, judged from the peaks measured on
/// smaller K (see [`extrapolate_need`]).
pub(super) fn fits(
    k: usize,
    measured: &[(usize, u64)],
    resident_per_image: Option<u64>,
    limit: u64,
) -> Result<(), RowStatus> {
    let baseline = current_rss().unwrap_or(0);
    let Some(need) = extrapolate_need(k, measured, baseline, resident_per_image) else {
        return Ok(());
    };
    if need > limit {
        Err(RowStatus::DoesNotFit {
            need_bytes: need,
            limit_bytes: limit,
        })
    } else {
        Ok(())
    }
}

/// The memory a step on `k` images needs, from peaks measured at other K; `None` when nothing
/// was measured or `k` is not above every measured K (those run anyway). Linear in K: through
/// the last two points; from one point, each further image adds `resident_per_image` when given
/// (a cached search step differentiates one image at a time, so only the images' features and
/// targets accumulate), else everything above `baseline` scales with K (a re-encoding step
/// runs the ViT on all K at once).
pub(super) fn extrapolate_need(
    k: usize,
    measured: &[(usize, u64)],
    baseline: u64,
    resident_per_image: Option<u64>,
) -> Option<u64> {
    let mut points: Vec<(usize, u64)> = measured.iter().copied().filter(|&(m, _)| m < k).collect();
    points.sort_unstable();
    let &(k1, p1) = points.last()?;
    let per_image = match (points.len(), resident_per_image) {
        (1, Some(bytes)) => bytes as f64,
        (1, None) => p1.saturating_sub(baseline) as f64 / k1 as f64,
        (n, _) => {
            let (k0, p0) = points[n - 2];
            (p1 as f64 - p0 as f64).max(0.0) / (k1 - k0) as f64
        }
    };
    Some((p1 as f64 + per_image * (k - k1) as f64) as u64)
}

/// What one more image keeps resident during a cached search step: its features (counted
/// twice: the bench's repeated copy and the search's lifted slice) and three mask-sized
/// targets (semantic and instances, S² floats each).
pub(super) fn resident_bytes_per_image(features: &ImageFeatures, size: usize) -> u64 {
    let floats: usize = features
        .fpn
        .iter()
        .map(|t| t.dims().iter().skip(1).product::<usize>())
        .sum();
    (2 * floats * 4 + 3 * size * size * 4) as u64
}

pub(super) fn device_reserved(device: &Device) -> Option<u64> {
    device.memory_pool_usage().map(|u| u.bytes_reserved)
}

/// Resets the kernel's peak-RSS counter of this process to its current RSS (Linux ≥ 4.0).
pub(super) fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// `VmHWM`: the process's peak resident set, in bytes.
pub(super) fn peak_rss() -> Option<u64> {
    status_kib("VmHWM:").map(|kib| kib * 1024)
}

/// `VmRSS`: the current resident set, in bytes.
pub(super) fn current_rss() -> Option<u64> {
    status_kib("VmRSS:").map(|kib| kib * 1024)
}

pub(super) fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    kib_field(&status, key)
}

pub(super) fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// 80 % of (available memory + what this process already holds).
pub(super) fn default_memory_limit() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let available = kib_field(&meminfo, "MemAvailable:")? * 1024;
    let own = current_rss().unwrap_or(0);
    Some((available + own) / 5 * 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extrapolates_memory_linearly_in_k() {
        // Nothing measured below K: run it.
        assert_eq!(extrapolate_need(1, &[], 100, None), None);
        assert_eq!(extrapolate_need(1, &[(1, 500)], 100, None), None);
        // One point: everything above the baseline scales with K …
        assert_eq!(
            extrapolate_need(5, &[(1, 500)], 100, None),
            Some(500 + 4 * 400)
        );
        // … or, when known, only each image's resident data.
        assert_eq!(
            extrapolate_need(5, &[(1, 500)], 100, Some(30)),
            Some(500 + 4 * 30)
        );
        // Two points: the line through them.
        assert_eq!(
            extrapolate_need(10, &[(1, 500), (5, 900)], 100, Some(30)),
            Some(900 + 5 * 100)
        );
    }

    #[test]
    fn reads_kib_fields() {
        let text = "Name:\tm2c\nVmHWM:\t  123456 kB\nVmRSS:\t 42 kB\n";
        assert_eq!(kib_field(text, "VmHWM:"), Some(123_456));
        assert_eq!(kib_field(text, "VmSwap:"), None);
    }
}
