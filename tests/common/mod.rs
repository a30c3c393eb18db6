//! Helpers shared by the integration tests: locating the committed SAM3 fixtures and
//! `../shared` (real data and the shared reference fixtures, present on developer machines and
//! in CI, absent on a bare clone) and comparing numbers with a stated tolerance.
#![allow(dead_code)]

use std::path::PathBuf;

/// The `shared/` folder beside the repository, or `M2C_SHARED` when set.
///
/// Returns `None` (and prints why) when it is absent, so a test can skip with a clear message
/// instead of failing on a fresh clone. A test that skips must `return` right after.
pub fn shared_dir(what: &str) -> Option<PathBuf> {
    let candidate = match std::env::var_os("M2C_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("shared"),
    };
    if candidate.is_dir() {
        Some(candidate)
    } else {
        eprintln!(
            "SKIP {what}: shared data folder not found at {} (set M2C_SHARED to run this test)",
            candidate.display()
        );
        None
    }
}

/// The committed tiny SAM3 reference fixtures, `tests/fixtures/sam3-tiny` (made by
/// `tests/reference/make_reference.py --preset tiny`; always present in a checkout, so the
/// parity tests never skip). `tests/model_parity.rs` checks that they agree with
/// `shared/fixtures/sam3-tiny` when that folder is present.
pub fn tiny_fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join("sam3-tiny")
}

/// A sub-path of `shared/` that a test needs, or `None` with a skip message.
pub fn shared_path(rel: &str) -> Option<PathBuf> {
    let dir = shared_dir(rel)?;
    let path = dir.join(rel);
    if path.exists() {
        Some(path)
    } else {
        eprintln!("SKIP: {} is missing from the shared folder", path.display());
        None
    }
}

/// Largest absolute difference between two equally long slices, with its index.
pub fn max_abs_diff(actual: &[f32], expected: &[f32]) -> (f32, usize) {
    assert_eq!(actual.len(), expected.len(), "length mismatch");
    let mut worst = (0.0f32, 0usize);
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let d = (a - e).abs();
        if d > worst.0 || d.is_nan() {
            worst = (d, i);
        }
    }
    worst
}

/// Asserts `|actual - expected| <= atol` element-wise; the message names the worst element.
pub fn assert_close(name: &str, actual: &[f32], expected: &[f32], atol: f32) {
    let (err, idx) = max_abs_diff(actual, expected);
    assert!(
        err <= atol,
        "{name}: max abs err {err:e} at index {idx} (actual {}, expected {}) exceeds atol {atol:e}",
        actual[idx],
        expected[idx]
    );
}
