//! `m2c segment` with the tiny fixture checkpoint (`tests/fixtures/sam3-tiny`, random weights)
//! on generated images, and its errors for wrong weights files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on setup failure"
)]

mod common;

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
