//! `m2c eval` on generated masks with hand-computed scores, and on the real Kvasir ground truth.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on setup failure"
)]

use crate::common;

use std::process::Command;

fn m2c(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_m2c"))
        .args(args)
        .output()
        .expect("m2c runs")
}

fn write_mask(path: &std::path::Path, w: u32, h: u32, fg: impl Fn(u32, u32) -> bool) {
    let img = image::GrayImage::from_fn(w, h, |x, y| image::Luma([if fg(x, y) { 255 } else { 0 }]));
    img.save(path).unwrap();
}

#[test]
fn eval_reports_hand_computed_dice_and_iou() {
    let dir = tempfile::tempdir().unwrap();
    let (pred, gt) = (dir.path().join("pred"), dir.path().join("gt"));
    std::fs::create_dir_all(&pred).unwrap();
    std::fs::create_dir_all(&gt).unwrap();
    // a on a 10x10 image: pred x < 5 (50 px), gt x < 8 (80 px): inter 50, union 80,
    // dice 100/130, iou 50/80.
    write_mask(&pred.join("a.png"), 10, 10, |x, _| x < 5);
    write_mask(&gt.join("a.png"), 10, 10, |x, _| x < 8);
    // b: both empty -> 1, 1 (a JPEG ground truth paired by stem).
    write_mask(&pred.join("b.png"), 10, 10, |_, _| false);
    write_mask(&gt.join("b.jpg"), 10, 10, |_, _| false);
    let csv = dir.path().join("scores.csv");
    let out = m2c(&[
        "eval",
        "--pred",
        pred.to_str().unwrap(),
        "--gt",
        gt.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dice_a = 100.0 / 130.0;
    let iou_a = 50.0 / 80.0;
    assert!(
        text.contains(&format!("a\t{dice_a:.4}\t{iou_a:.4}")),
        "{text}"
    );
    assert!(text.contains("b\t1.0000\t1.0000"), "{text}");
    assert!(
        text.contains(&format!(
            "mean\t{:.4}\t{:.4}",
            (dice_a + 1.0) / 2.0,
            (iou_a + 1.0) / 2.0
        )),
        "{text}"
    );
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(rows.lines().count(), 3, "{rows}");
}

#[test]
fn eval_fails_clearly_on_missing_folder_and_size_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let out = m2c(&[
        "eval",
        "--pred",
        missing.to_str().unwrap(),
        "--gt",
        missing.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read mask folder"));

    let (pred, gt) = (dir.path().join("p"), dir.path().join("g"));
    std::fs::create_dir_all(&pred).unwrap();
    std::fs::create_dir_all(&gt).unwrap();
    write_mask(&pred.join("x.png"), 4, 4, |_, _| true);
    write_mask(&gt.join("x.png"), 5, 4, |_, _| true);
    write_mask(&pred.join("y.png"), 4, 4, |_, _| true);
    write_mask(&gt.join("y.png"), 4, 4, |_, _| true);
    let out = m2c(&[
        "eval",
        "--pred",
        pred.to_str().unwrap(),
        "--gt",
        gt.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("skipped: x: prediction is 4x4, ground truth 5x4"),
        "{text}"
    );
}

#[test]
fn eval_of_real_ground_truth_against_itself_is_perfect() {
    let Some(masks) = common::shared_path("data/kvasir/masks") else {
        return;
    };
    let m = masks.to_str().unwrap();
    let out = m2c(&["eval", "--pred", m, "--gt", m]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("images: 200  mean Dice 1.0000 ± 0.0000"),
        "{text}"
    );
}
