//! `m2c segment` with the tiny fixture checkpoint (`tests/fixtures/sam3-tiny`, random weights)
//! on generated images, and its errors for wrong weights files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on setup failure"
)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn m2c(args: &[&std::ffi::OsStr]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_m2c"))
        .args(args)
        .output()
        .expect("m2c runs");
    eprintln!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn segment(weights: &Path, config: Option<&Path>, images: &[PathBuf], out: &Path) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "segment".as_ref(),
        "--device".as_ref(),
        "cpu".as_ref(),
        "--weights".as_ref(),
        weights.as_os_str(),
        "--text".as_ref(),
        "polyp".as_ref(),
        "--threshold".as_ref(),
        "0".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ];
    if let Some(config) = config {
        args.extend(["--config".as_ref(), config.as_os_str()]);
    }
    args.extend(images.iter().map(|p| p.as_os_str()));
    m2c(&args)
}

/// An RGB test image with a bright disc on a gradient.
fn write_image(path: &Path, width: u32, height: u32) {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        let (dx, dy) = (
            x as f32 - width as f32 / 2.0,
            y as f32 - height as f32 / 2.0,
        );
        if dx * dx + dy * dy < (width.min(height) as f32 / 4.0).powi(2) {
            image::Rgb([230, 120, 110])
        } else {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 60])
        }
    });
    img.save(path).unwrap();
}

/// The tiny model's text vocabulary has 512 entries (BOS 510, EOS 511): a letter-level
/// `tokenizer.json` that fits it.
fn write_toy_tokenizer(dir: &Path) {
    let mut vocab = serde_json::Map::new();
    for (i, c) in ('a'..='z').enumerate() {
        vocab.insert(c.to_string(), i.into());
        vocab.insert(format!("{c}</w>"), (26 + i).into());
    }
    vocab.insert("<|startoftext|>".to_owned(), 510.into());
    vocab.insert("<|endoftext|>".to_owned(), 511.into());
    let json = serde_json::json!({ "model": { "vocab": vocab, "merges": [] } });
    std::fs::write(dir.join("tokenizer.json"), json.to_string()).unwrap();
}

#[test]
fn segments_generated_images_with_the_tiny_checkpoint() {
    let fixtures = common::tiny_fixture_dir();
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = tmp.path().join("ckpt");
    std::fs::create_dir_all(&ckpt).unwrap();
    let weights = ckpt.join("sam3_model.safetensors");
    std::fs::copy(fixtures.join("sam3_model.safetensors"), &weights).unwrap();
    write_toy_tokenizer(&ckpt);
    let sizes = [(200u32, 150u32), (140, 180)];
    let images: Vec<PathBuf> = ["wide", "tall"]
        .iter()
        .zip(sizes)
        .map(|(name, (w, h))| {
            let path = tmp.path().join(format!("{name}.png"));
            write_image(&path, w, h);
            path
        })
        .collect();
    let out_dir = tmp.path().join("out");
    let config = fixtures.join("sam3_config.json");
    let out = segment(&weights, Some(&config), &images, &out_dir);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("tokenizer.json"), "{stdout}");
    for (name, (w, h)) in ["wide", "tall"].iter().zip(sizes) {
        let mask = image::open(out_dir.join(format!("{name}.png")))
            .unwrap()
            .to_luma8();
        assert_eq!(mask.dimensions(), (w, h), "{name} mask size");
        assert!(mask.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("instances.json")).unwrap()).unwrap();
    assert_eq!(json["text"], "polyp");
    let reports = json["images"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    for (report, (w, h)) in reports.iter().zip(sizes) {
        assert!(report["mask"].as_str().unwrap().ends_with(".png"));
        assert_eq!(report["width"], w);
        assert_eq!(report["height"], h);
        let instances = report["instances"].as_array().unwrap();
        // threshold 0 keeps every query of the tiny model (10)
        assert_eq!(instances.len(), 10, "{report}");
        for inst in instances {
            let score = inst["score"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&score), "{inst}");
            let b: Vec<f64> = inst["box_xyxy"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(b.len(), 4);
            // boxes are the model's, unclamped: a random model may place them past the border
            assert!(b.iter().all(|v| v.is_finite()), "{inst}");
            assert!(b[0] <= b[2] && b[1] <= b[3], "{inst}");
        }
    }
}

#[test]
fn bundled_vocabulary_is_refused_by_a_model_with_a_smaller_one() {
    let fixtures = common::tiny_fixture_dir();
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("a.png");
    write_image(&image, 64, 48);
    // no tokenizer files beside the fixture checkpoint: the bundled 49408-entry vocabulary
    let out = segment(
        &fixtures.join("sam3_model.safetensors"),
        Some(&fixtures.join("sam3_config.json")),
        &[image],
        &tmp.path().join("out"),
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("outside the model's text vocabulary of 512"),
        "{stderr}"
    );
}

#[test]
fn wrong_weights_files_fail_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("a.png");
    write_image(&image, 32, 32);
    let out_dir = tmp.path().join("out");
    let garbage = tmp.path().join("model.safetensors");
    std::fs::write(&garbage, b"this is not a checkpoint").unwrap();
    let out = segment(&garbage, None, std::slice::from_ref(&image), &out_dir);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not a valid safetensors checkpoint"),
        "{stderr}"
    );
    let missing = tmp.path().join("nowhere").join("model.safetensors");
    let out = segment(&missing, None, std::slice::from_ref(&image), &out_dir);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("weights not found"), "{stderr}");
    // a real safetensors file of another model (the tracker head, no detector tensors)
    let fixtures = common::tiny_fixture_dir();
    let tracker = fixtures.join("sam3_tracker_model.safetensors");
    let out = segment(
        &tracker,
        Some(&fixtures.join("sam3_config.json")),
        &[image],
        &out_dir,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a SAM3 checkpoint"), "{stderr}");
}

/// A checkpoint folder laid out like the fixtures: detector weights, the tracker's
/// `Sam3TrackerModel` file and config beside them (when `with_tracker`), a toy tokenizer.
fn tiny_checkpoint(fixtures: &Path, dir: &Path, with_tracker: bool) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let weights = dir.join("sam3_model.safetensors");
    std::fs::copy(fixtures.join("sam3_model.safetensors"), &weights).unwrap();
    if with_tracker {
        for file in ["sam3_tracker_model.safetensors", "sam3_tracker_config.json"] {
            std::fs::copy(fixtures.join(file), dir.join(file)).unwrap();
        }
    }
    write_toy_tokenizer(dir);
    weights
}

fn segment_args(weights: &Path, config: &Path, out: &Path, extra: &[&str], image: &Path) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "segment".as_ref(),
        "--device".as_ref(),
        "cpu".as_ref(),
        "--weights".as_ref(),
        weights.as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ];
    args.extend(extra.iter().map(|s| std::ffi::OsStr::new(*s)));
    args.push(image.as_os_str());
    m2c(&args)
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn box_prompt_segments_with_the_tracker_head() {
    let fixtures = common::tiny_fixture_dir();
    let tmp = tempfile::tempdir().unwrap();
    let weights = tiny_checkpoint(&fixtures, &tmp.path().join("ckpt"), true);
    let config = fixtures.join("sam3_config.json");
    let image = tmp.path().join("wide.png");
    write_image(&image, 200, 150);

    // box alone: the box mask is <stem>.png
    let out_dir = tmp.path().join("box");
    let out = segment_args(
        &weights,
        &config,
        &out_dir,
        &["--box", "40,30,160,120"],
        &image,
    );
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("sam3_tracker_model.safetensors"),
        "{stdout}"
    );
    let mask = image::open(out_dir.join("wide.png")).unwrap().to_luma8();
    assert_eq!(mask.dimensions(), (200, 150));
    assert!(mask.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));
    let json = read_json(&out_dir.join("instances.json"));
    assert!(json.get("text").is_none(), "{json}");
    let report = &json["images"][0];
    assert_eq!(report["width"], 200);
    assert_eq!(report["height"], 150);
    let boxed = &report["box"];
    let ious: Vec<f64> = boxed["candidate_iou"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(ious.len(), 3, "{boxed}");
    // the predicted IoU is a sigmoid, and the returned candidate is the best one
    assert!(ious.iter().all(|v| (0.0..=1.0).contains(v)), "{boxed}");
    let best = usize::try_from(boxed["candidate"].as_u64().unwrap()).unwrap();
    let iou = boxed["iou"].as_f64().unwrap();
    assert_eq!(iou, ious[best]);
    assert!(ious.iter().all(|v| *v <= iou), "{boxed}");
    let foreground = mask.pixels().filter(|p| p.0[0] == 255).count() as u64;
    assert_eq!(boxed["foreground_px"].as_u64().unwrap(), foreground);

    // text and box: one ViT pass, two masks
    let out_dir = tmp.path().join("both");
    let out = segment_args(
        &weights,
        &config,
        &out_dir,
        &[
            "--text",
            "polyp",
            "--threshold",
            "0",
            "--box",
            "40,30,160,120",
        ],
        &image,
    );
    assert_eq!(out.status.code(), Some(0));
    for name in ["wide.png", "wide_box.png"] {
        let mask = image::open(out_dir.join(name)).unwrap().to_luma8();
        assert_eq!(mask.dimensions(), (200, 150), "{name}");
    }
    let json = read_json(&out_dir.join("instances.json"));
    assert_eq!(json["text"], "polyp");
    let report = &json["images"][0];
    assert_eq!(report["instances"].as_array().unwrap().len(), 10);
    assert!(
        report["box"]["mask"]
            .as_str()
            .unwrap()
            .ends_with("wide_box.png")
    );
}

#[test]
fn box_prompt_errors_are_clear() {
    let fixtures = common::tiny_fixture_dir();
    let tmp = tempfile::tempdir().unwrap();
    let config = fixtures.join("sam3_config.json");
    let image = tmp.path().join("a.png");
    write_image(&image, 64, 48);
    let out_dir = tmp.path().join("out");
    let weights = tiny_checkpoint(&fixtures, &tmp.path().join("with"), true);
    for (bad, needle) in [
        ("1,2,3", "expected 4 comma-separated numbers"),
        ("1,2,x,4", "is not a number"),
        ("30,2,10,40", "need x1 < x2 and y1 < y2"),
    ] {
        let out = segment_args(&weights, &config, &out_dir, &["--box", bad], &image);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{bad}: {stderr}");
    }
    // a box outside the image is refused by the model wrapper
    let out = segment_args(
        &weights,
        &config,
        &out_dir,
        &["--box", "100,100,200,200"],
        &image,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("overlap the 64×48 image"), "{stderr}");
    // a detector-only checkpoint has no tracker weights
    let weights = tiny_checkpoint(&fixtures, &tmp.path().join("without"), false);
    let out = segment_args(&weights, &config, &out_dir, &["--box", "1,2,30,40"], &image);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("has no tracker weights"), "{stderr}");
    // neither --text nor --box
    let out = segment_args(&weights, &config, &out_dir, &[], &image);
    assert_eq!(out.status.code(), Some(2));
}
