//! `m2c bench` on the tiny random-weight model on the CPU backend: every stage of the table is
//! present and measured, with positive times and memory. No timing is asserted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on setup failure"
)]

use std::process::Command;

#[test]
fn bench_prints_every_stage_with_positive_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let json_path = tmp.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_m2c"))
        .args([
            "bench", "--preset", "tiny", "--runs", "1", "--k", "1,2", "--device", "cpu", "--json",
        ])
        .arg(&json_path)
        .env_remove("M2C_WEIGHTS")
        .output()
        .expect("m2c runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");

    let stages = [
        "build model",
        "encode_image, 1 image",
        "decode, text prompt, cached features",
        "search step, K=1, cached features",
        "search step, K=2, cached features",
        "search step, K=1, re-encoding",
        "search step, K=2, re-encoding",
        "search 60 steps, K=1, cached features",
    ];
    assert!(stdout.contains("median ms"), "{stdout}");
    for stage in stages {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(stage))
            .unwrap_or_else(|| panic!("no row {stage:?} in\n{stdout}"));
        assert!(line.trim_end().ends_with("ok"), "{line}");
        // the stage column is 52 characters wide; then runs, median, min, max
        let median: f64 = line
            .get(52..)
            .unwrap_or_default()
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no median in {line:?}"));
        assert!(median > 0.0, "{line}");
    }

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(json["preset"], "tiny");
    assert!(json["weight_bytes"].as_u64().unwrap() > 0);
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), stages.len(), "{json}");
    for (row, stage) in rows.iter().zip(stages) {
        assert!(row["stage"].as_str().unwrap().starts_with(stage), "{row}");
        assert_eq!(row["status"], "measured", "{row}");
        assert_eq!(row["runs"], 1, "{row}");
        for key in ["median_ms", "min_ms", "max_ms"] {
            assert!(row[key].as_f64().unwrap() > 0.0, "{key} in {row}");
        }
        assert!(row["peak_rss_bytes"].as_u64().unwrap() > 0, "{row}");
        assert!(row["min_ms"].as_f64() <= row["max_ms"].as_f64(), "{row}");
    }
}
