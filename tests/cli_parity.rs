//! `m2c parity` on the tiny reference fixtures (`shared/fixtures/sam3-tiny`), on the CPU.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on setup failure"
)]

mod common;

use std::process::{Command, Output};

fn m2c_parity(extra: &[&str]) -> Option<Output> {
    let dir = common::shared_path("fixtures/sam3-tiny")?;
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
    Some(out)
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
    let Some(out) = m2c_parity(&[]) else { return };
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
    let Some(out) = m2c_parity(&["--tolerance", "1e-9"]) else {
        return;
    };
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

#[test]
fn parity_includes_the_tracker_scenario_or_says_it_skips_it() {
    let Some(out) = m2c_parity(&["--table"]) else {
        return;
    };
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for key in [
        "tracker_box:tracker.multimask.pred_masks",
        "tracker_box:tracker.single.pred_masks",
        "tracker_e2e:tracker.multimask.iou_scores",
    ] {
        assert!(stdout.contains(key), "{key}: {stdout}");
    }
    assert!(!stdout.contains("tracker: skipped"), "{stdout}");
    // the same folder without the tracker files
    let dir = common::shared_path("fixtures/sam3-tiny").expect("fixtures");
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_file() && !name.contains("tracker") {
            std::fs::copy(&path, tmp.path().join(&name)).unwrap();
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_m2c"))
        .args(["parity", "--device", "cpu", "--fixtures"])
        .arg(tmp.path())
        .output()
        .expect("m2c runs");
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("tracker: skipped"), "{stdout}");
    assert!(!stdout.contains("tracker_box:"), "{stdout}");
}
