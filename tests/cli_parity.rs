//! `m2c parity` on the committed tiny reference fixtures (`tests/fixtures/sam3-tiny`), on the CPU.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on setup failure"
)]

mod common;

use std::process::{Command, Output};

fn m2c_parity(extra: &[&str]) -> Output {
    let dir = common::tiny_fixture_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_m2c"))
        .args(["parity", "--device", "cpu", "--fixtures"])
        .arg(dir)
        .args(extra)
        .output()
        .expect("m2c runs");
    eprintln!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn last_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn parity_passes_on_the_tiny_fixtures() {
    let out = m2c_parity(&[]);
    assert_eq!(out.status.code(), Some(0));
    let last = last_line(&out);
    let rest = last.strip_prefix("parity ok: ").expect("ok line");
    let (count, err) = rest.split_once(" tensors, max abs err ").expect("format");
    assert!(count.parse::<usize>().unwrap() >= 60, "{last}");
    assert!(err.parse::<f32>().unwrap() <= 1e-4, "{last}");
    // within tolerance: no table
    assert!(!String::from_utf8_lossy(&out.stdout).contains("FAIL"));
}

#[test]
fn parity_prints_the_table_and_exits_1_beyond_tolerance() {
    let out = m2c_parity(&["--tolerance", "1e-9"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAIL  det_text:out.pred_masks"), "{stdout}");
    assert!(stdout.contains("max abs"), "table header: {stdout}");
    assert!(last_line(&out).starts_with("parity FAILED: "), "{stdout}");
}

#[test]
fn parity_reports_a_missing_fixture_folder() {
    let out = Command::new(env!("CARGO_BIN_EXE_m2c"))
        .args([
            "parity",
            "--device",
            "cpu",
            "--fixtures",
            "/nonexistent/fixtures",
        ])
        .output()
        .expect("m2c runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/fixtures"), "{stderr}");
}
