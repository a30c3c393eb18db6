//! Helpers shared by the integration tests: locating the committed SAM3 fixtures and
//! `../shared` (real data and the shared reference fixtures, present on developer machines and
//! in CI, absent on a bare clone) and comparing numbers with a stated tolerance.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

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
/// parity tests never skip). `tests/model/model_parity.rs` checks that they agree with
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

/// The tiny SAM3 fixture folder (random weights, reference tensors): the committed copy under
/// `tests/fixtures/sam3-tiny` when present, else `shared/fixtures/sam3-tiny`, else `None` with
/// a skip message.
pub fn tiny_fixtures() -> Option<PathBuf> {
    let committed = tiny_fixture_dir();
    if committed.join("sam3_model.safetensors").is_file() {
        return Some(committed);
    }
    shared_path("fixtures/sam3-tiny")
}

/// A checkpoint folder in `dir` as a user would have it: the tiny weights as
/// `model.safetensors`, their `config.json`, and a letter-level `tokenizer.json` that fits the
/// tiny model's 512-entry vocabulary (BOS 510, EOS 511). Returns the weights file.
#[allow(clippy::expect_used, reason = "test setup fails loudly")]
pub fn tiny_checkpoint(dir: &Path) -> Option<PathBuf> {
    let fixtures = tiny_fixtures()?;
    let ckpt = dir.join("ckpt");
    std::fs::create_dir_all(&ckpt).expect("checkpoint folder");
    std::fs::copy(
        fixtures.join("sam3_model.safetensors"),
        ckpt.join("model.safetensors"),
    )
    .expect("copy weights");
    std::fs::copy(fixtures.join("sam3_config.json"), ckpt.join("config.json"))
        .expect("copy config");
    let mut vocab = serde_json::Map::new();
    for (i, c) in ('a'..='z').enumerate() {
        vocab.insert(c.to_string(), i.into());
        vocab.insert(format!("{c}</w>"), (26 + i).into());
    }
    vocab.insert("<|startoftext|>".to_owned(), 510.into());
    vocab.insert("<|endoftext|>".to_owned(), 511.into());
    let json = serde_json::json!({ "model": { "vocab": vocab, "merges": [] } });
    std::fs::write(ckpt.join("tokenizer.json"), json.to_string()).expect("tokenizer");
    Some(ckpt.join("model.safetensors"))
}

/// [`tiny_checkpoint`] plus the interactive head's weights and config beside it (the fixture
/// layout `Segmenter::load_tracker` accepts).
#[allow(clippy::expect_used, reason = "test setup fails loudly")]
pub fn tiny_checkpoint_with_tracker(dir: &Path) -> Option<PathBuf> {
    let weights = tiny_checkpoint(dir)?;
    let fixtures = tiny_fixtures()?;
    let ckpt = weights.parent().expect("checkpoint folder");
    for name in ["sam3_tracker_model.safetensors", "sam3_tracker_config.json"] {
        std::fs::copy(fixtures.join(name), ckpt.join(name)).expect("copy tracker file");
    }
    Some(weights)
}
