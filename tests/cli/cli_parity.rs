//! `m2c parity` on the committed tiny reference fixtures (`tests/fixtures/sam3-tiny`), on the CPU.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on setup failure"
)]

use crate::common;

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

/// Rewrites the safetensors file `path` without the tensor `drop` (header: 8-byte
/// little-endian length, JSON name → dtype, shape, data_offsets; then the data).
fn drop_tensor(path: &std::path::Path, drop: &str) {
    let bytes = std::fs::read(path).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    let data = &bytes[8 + len..];
    let mut kept = serde_json::Map::new();
    let mut out_data = Vec::new();
    for (name, mut info) in header {
        if name == drop {
            continue;
        }
        if name != "__metadata__" {
            let offsets = &info["data_offsets"];
            let (a, b) = (
                offsets[0].as_u64().unwrap() as usize,
                offsets[1].as_u64().unwrap() as usize,
            );
            let start = out_data.len();
            out_data.extend_from_slice(&data[a..b]);
            info["data_offsets"] = serde_json::json!([start, out_data.len()]);
        }
        kept.insert(name, info);
    }
    let mut head = serde_json::to_vec(&kept).unwrap();
    while !head.len().is_multiple_of(8) {
        head.push(b' ');
    }
    let mut out = (head.len() as u64).to_le_bytes().to_vec();
    out.extend(head);
    out.extend(out_data);
    std::fs::write(path, out).unwrap();
}

/// A folder that stores only some ViT layers (as the full-size one does): the layers it lacks,
/// and the layer whose input it lacks, are listed as "not in fixtures", the rest passes.
#[test]
fn parity_skips_reference_tensors_the_folder_lacks() {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(common::tiny_fixture_dir()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).unwrap();
    }
    drop_tensor(&tmp.path().join("vision.safetensors"), "vision.layer1");
    let out = Command::new(env!("CARGO_BIN_EXE_m2c"))
        .args(["parity", "--device", "cpu", "--fixtures"])
        .arg(tmp.path())
        .output()
        .expect("m2c runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout
            .contains("skipped vision.layer1: not in fixtures (vision.safetensors: vision.layer1)"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("skipped vision.layer2: not in fixtures (vision.safetensors: vision.layer1)"),
        "{stdout}"
    );
    assert!(stdout.contains("stage backbone: 5 tensors"), "{stdout}");
    let full = m2c_parity(&[]);
    let count = |s: &str| -> usize {
        s.lines()
            .last()
            .and_then(|l| l.strip_prefix("parity ok: "))
            .and_then(|l| l.split_once(' '))
            .and_then(|(n, _)| n.parse().ok())
            .unwrap()
    };
    assert_eq!(
        count(&stdout) + 2,
        count(&String::from_utf8_lossy(&full.stdout))
    );
}

#[test]
fn parity_includes_the_tracker_scenario_or_says_it_skips_it() {
    let out = m2c_parity(&["--table"]);
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
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(common::tiny_fixture_dir()).unwrap() {
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
