//! `m2c search`, `m2c annotate` and `m2c loop` end to end on the tiny random-weight SAM3
//! checkpoint (committed `tests/fixtures/sam3-tiny`, else `shared/fixtures/sam3-tiny`), on
//! generated images with known masks, on the CPU; and their errors for bad input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on setup failure"
)]

use crate::common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn m2c<S: AsRef<OsStr>>(args: &[S]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_m2c"))
        .args(args)
        .env_remove("M2C_WEIGHTS")
        .output()
        .expect("m2c runs");
    eprintln!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn checkpoint(dir: &Path) -> Option<PathBuf> {
    common::tiny_checkpoint(dir)
}

/// `n` images with one or two bright discs (the "concept") on a textured background, their
/// masks, and a manifest (first two rows `support`, the rest `query`).
fn dataset(dir: &Path, n: usize) -> PathBuf {
    for sub in ["images", "masks"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let mut manifest = String::from("file\tmask\tsplit\n");
    for k in 0..n {
        let (w, h) = (120 + 10 * k as u32, 100 + 7 * k as u32);
        let discs: Vec<(f32, f32, f32)> = (0..=(k % 2))
            .map(|d| {
                let cx = w as f32 * (0.3 + 0.4 * d as f32);
                (cx, h as f32 * 0.5, 14.0 + k as f32)
            })
            .collect();
        let inside = |x: u32, y: u32| {
            discs
                .iter()
                .any(|&(cx, cy, r)| (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) <= r * r)
        };
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            if inside(x, y) {
                image::Rgb([235, 110, 100])
            } else {
                image::Rgb([((x * 7 + y * 3) % 200) as u8, ((y * 5) % 180) as u8, 70])
            }
        });
        let mask = image::GrayImage::from_fn(w, h, |x, y| {
            image::Luma([if inside(x, y) { 255 } else { 0 }])
        });
        let name = format!("img{k:02}");
        img.save(dir.join(format!("images/{name}.png"))).unwrap();
        mask.save(dir.join(format!("masks/{name}.png"))).unwrap();
        let split = if k < 2 { "support" } else { "query" };
        manifest.push_str(&format!("images/{name}.png\tmasks/{name}.png\t{split}\n"));
    }
    let path = dir.join("manifest.tsv");
    std::fs::write(&path, manifest).unwrap();
    path
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn search_then_annotate_writes_a_concept_masks_and_hue_table() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(weights) = checkpoint(tmp.path()) else {
        return;
    };
    let manifest = dataset(&tmp.path().join("data"), 4);
    let concept = tmp.path().join("polyp.m2c");
    let out = m2c(&[
        "search".as_ref(),
        "--device".as_ref(),
        "cpu".as_ref(),
        "--weights".as_ref(),
        weights.as_os_str(),
        "--support".as_ref(),
        manifest.as_os_str(),
        "--steps".as_ref(),
        "4".as_ref(),
        "--lr".as_ref(),
        "0.05".as_ref(),
        "--name".as_ref(),
        "disc".as_ref(),
        "--out".as_ref(),
        concept.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    // the two `support` rows, one loss line per step, falling from the first to the last
    assert!(text.contains("encoded 2 labelled image(s)"), "{text}");
    let losses: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("step "))
        .map(|l| l.split_whitespace().nth(3).unwrap().parse().unwrap())
        .collect();
    assert_eq!(losses.len(), 4, "{text}");
    assert!(losses[3] < losses[0], "{losses:?}");
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&concept).unwrap()).unwrap();
    assert_eq!(file["name"], "disc");
    assert_eq!(file["training_masks"].as_array().unwrap().len(), 2);
    assert!(file["checkpoint"].as_str().unwrap().starts_with("sha256:"));
    let phi = file["phi"].as_array().unwrap();
    assert!(phi.iter().any(|v| v.as_f64().unwrap() != 0.0), "φ moved");

    let out_dir = tmp.path().join("pred");
    let out = m2c(&[
        "annotate".as_ref(),
        "--device".as_ref(),
        "cpu".as_ref(),
        "--weights".as_ref(),
        weights.as_os_str(),
        "--concept".as_ref(),
        concept.as_os_str(),
        "--threshold".as_ref(),
        "0".as_ref(),
        "--probability".as_ref(),
        "--out".as_ref(),
        out_dir.as_os_str(),
        tmp.path().join("data/images").as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let csv = std::fs::read_to_string(out_dir.join("hue.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 5, "{csv}");
    assert!(rows[0].starts_with("image,mask,instances"), "{csv}");
    for (k, row) in rows[1..].iter().enumerate() {
        let cells: Vec<&str> = row.split(',').collect();
        // threshold 0 keeps every one of the tiny model's 10 queries: never empty
        assert_eq!(cells[2], "10", "{row}");
        let (entropy, iou, score): (f64, f64, f64) = (
            cells[4].parse().unwrap(),
            cells[5].parse().unwrap(),
            cells[6].parse().unwrap(),
        );
        assert!(
            (0.0..=std::f64::consts::LN_2 + 1e-6).contains(&entropy),
            "{row}"
        );
        assert!((0.0..=1.0).contains(&iou), "{row}");
        assert!((score - (entropy + 1.0 - iou)).abs() < 1e-5, "{row}");
        let name = format!("img{k:02}");
        let mask = image::open(out_dir.join(format!("{name}.png")))
            .unwrap()
            .to_luma8();
        let src = image::open(tmp.path().join(format!("data/images/{name}.png"))).unwrap();
        assert_eq!(mask.dimensions(), (src.width(), src.height()));
        assert!(mask.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));
        let prob = image::open(out_dir.join(format!("{name}_prob.png")))
            .unwrap()
            .to_luma8();
        // the mask is exactly where the probability exceeds one half
        for (m, p) in mask.pixels().zip(prob.pixels()) {
            if m.0[0] == 255 {
                assert!(p.0[0] >= 127, "mask pixel with probability {}", p.0[0]);
            } else {
                assert!(
                    p.0[0] <= 128,
                    "background pixel with probability {}",
                    p.0[0]
                );
            }
        }
    }
}

#[test]
fn a_concept_from_another_checkpoint_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(weights) = checkpoint(tmp.path()) else {
        return;
    };
    let concept = tmp.path().join("other.m2c");
    let file = serde_json::json!({
        "format_version": 1, "name": "x", "base_text": "a", "site": "text_input",
        "shape": [16, 80], "phi": vec![0.0f32; 16 * 80],
        "checkpoint": "sha256:0000", "training_masks": [],
        "settings": {"steps": 1, "lr_start": 0.1, "lr_end": 0.0, "weight_decay": 0.0,
                     "grad_clip": 1.0, "seed": 1},
        "final_loss": null
    });
    std::fs::write(&concept, file.to_string()).unwrap();
    let image = tmp.path().join("a.png");
    image::RgbImage::new(40, 30).save(&image).unwrap();
    let out = m2c(&[
        "annotate".as_ref(),
        "--device".as_ref(),
        "cpu".as_ref(),
        "--weights".as_ref(),
        weights.as_os_str(),
        "--concept".as_ref(),
        concept.as_os_str(),
        "--out".as_ref(),
        tmp.path().join("out").as_os_str(),
        image.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("was learned with SAM3 checkpoint sha256:0000"),
        "{stderr}"
    );
    assert!(stderr.contains("learn the concept again"), "{stderr}");
}

#[test]
fn bad_support_sets_fail_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nowhere.tsv");
    let out = m2c(&[
        "search".as_ref(),
        "--support".as_ref(),
        missing.as_os_str(),
        "--out".as_ref(),
        tmp.path().join("c.m2c").as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read") && stderr.contains("nowhere.tsv"),
        "{stderr}"
    );
    // a folder without images/ and masks/
    let out = m2c(&[
        "loop".as_ref(),
        "--manifest".as_ref(),
        tmp.path().as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`images/` and `masks/`"), "{stderr}");
}

fn run_loop(weights: &Path, manifest: &Path, steps: &str, extra: &[&str]) -> Vec<Vec<String>> {
    let mut args: Vec<&OsStr> = vec![
        "loop".as_ref(),
        "--device".as_ref(),
        "cpu".as_ref(),
        "--weights".as_ref(),
        weights.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
        "--shots".as_ref(),
        "2".as_ref(),
        "--flag".as_ref(),
        "2".as_ref(),
        "--rounds".as_ref(),
        "2".as_ref(),
        "--steps".as_ref(),
        steps.as_ref(),
        "--lr".as_ref(),
        "0.05".as_ref(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let out = m2c(&args);
    assert_eq!(out.status.code(), Some(0));
    stdout(&out)
        .lines()
        .filter(|l| l.starts_with("round "))
        .map(|l| l.split(", ").map(str::to_owned).collect())
        .collect()
}

#[test]
fn the_loop_prints_one_line_per_round_and_labels_the_flagged_images() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(weights) = checkpoint(tmp.path()) else {
        return;
    };
    let manifest = dataset(&tmp.path().join("data"), 7);
    // nothing is easy at these thresholds: 2 labelled, then 2 more flagged and labelled
    let rounds = run_loop(&weights, &manifest, "2", &["--easy-score=-1", "--augment"]);
    assert_eq!(rounds.len(), 2, "{rounds:?}");
    assert!(
        rounds[0][0].starts_with("round 1: labelled 2"),
        "{rounds:?}"
    );
    assert!(
        rounds[1][0].starts_with("round 2: labelled 4"),
        "{rounds:?}"
    );
    for r in &rounds {
        assert_eq!(r[3], "auto-accepted 0", "{r:?}");
        let dice: f64 = r[1]
            .trim_start_matches("mean Dice ")
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        // labelled images count as 1: at least 2 (then 4) of 7 are perfect
        // (printed to 4 decimals)
        assert!((2.0 / 7.0 - 1e-4..=1.0).contains(&dice), "{r:?}");
    }
}

#[test]
fn easy_images_are_auto_accepted_and_end_the_loop() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(weights) = checkpoint(tmp.path()) else {
        return;
    };
    // Real photographs: on the generated images the random tiny model's mask logits are
    // negative everywhere (an empty prediction is never easy); on these it predicts regions.
    let Some(manifest) = common::shared_path("data/kvasir/manifest.tsv") else {
        return;
    };
    let rounds = run_loop(
        &weights,
        &manifest,
        "2",
        &[
            "--limit",
            "7",
            "--cascade",
            "--threshold",
            "0",
            "--easy-score=10",
            "--easy-iou=-1",
        ],
    );
    assert_eq!(rounds.len(), 1, "{rounds:?}");
    assert_eq!(rounds[0][3], "auto-accepted 5", "{rounds:?}");
    assert_eq!(rounds[0][4], "pool 0", "{rounds:?}");
}

#[test]
fn hue_consistency_from_the_interactive_head_is_reported_beside_the_detectors() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(weights) = common::tiny_checkpoint_with_tracker(tmp.path()) else {
        return;
    };
    let manifest = dataset(&tmp.path().join("data"), 3);
    let concept = tmp.path().join("c.m2c");
    let out = m2c(&[
        "search".as_ref(),
        "--device".as_ref(),
        "cpu".as_ref(),
        "--weights".as_ref(),
        weights.as_os_str(),
        "--support".as_ref(),
        manifest.as_os_str(),
        "--steps".as_ref(),
        "1".as_ref(),
        "--out".as_ref(),
        concept.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let annotate = |weights: &Path, mode: &str, out_dir: &Path| {
        m2c(&[
            "annotate".as_ref(),
            "--device".as_ref(),
            "cpu".as_ref(),
            "--weights".as_ref(),
            weights.as_os_str(),
            "--concept".as_ref(),
            concept.as_os_str(),
            "--threshold".as_ref(),
            "0".as_ref(),
            "--consistency".as_ref(),
            mode.as_ref(),
            "--out".as_ref(),
            out_dir.as_os_str(),
            tmp.path().join("data/images").as_os_str(),
        ])
    };
    let out_dir = tmp.path().join("both");
    assert_eq!(annotate(&weights, "both", &out_dir).status.code(), Some(0));
    let csv = std::fs::read_to_string(out_dir.join("hue.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    for row in csv.lines().skip(1) {
        let cells: Vec<&str> = row.split(',').collect();
        let entropy: f64 = cells[col("entropy")].parse().unwrap();
        let t_iou: f64 = cells[col("tracker_iou")].parse().unwrap();
        let t_hue: f64 = cells[col("tracker_hue")].parse().unwrap();
        assert!((0.0..=1.0).contains(&t_iou), "{row}");
        // same entropy term, the head's inconsistency
        assert!((t_hue - (entropy + 1.0 - t_iou)).abs() < 1e-5, "{row}");
    }
    // without the head's weights: a clear refusal
    let plain = tempfile::tempdir().unwrap();
    let bare = common::tiny_checkpoint(plain.path()).unwrap();
    let out = annotate(&bare, "tracker", &tmp.path().join("t"));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs SAM3's interactive head"), "{stderr}");
}

#[test]
fn search_with_the_authors_resize_augmentation() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(weights) = checkpoint(tmp.path()) else {
        return;
    };
    let manifest = dataset(&tmp.path().join("data"), 2);
    let concept = tmp.path().join("aug.m2c");
    let out = m2c(&[
        "search".as_ref(),
        "--device".as_ref(),
        "cpu".as_ref(),
        "--weights".as_ref(),
        weights.as_os_str(),
        "--support".as_ref(),
        manifest.as_os_str(),
        "--steps".as_ref(),
        "3".as_ref(),
        "--lr".as_ref(),
        "0.05".as_ref(),
        "--augment".as_ref(),
        "--seed".as_ref(),
        "9".as_ref(),
        "--out".as_ref(),
        concept.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&concept).unwrap()).unwrap();
    assert_eq!(file["settings"]["resize_augment"], true);
    assert_eq!(file["settings"]["seed"], 9);
    let losses = stdout(&out)
        .lines()
        .filter(|l| l.starts_with("step "))
        .count();
    assert_eq!(losses, 3);
}
