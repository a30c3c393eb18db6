//! `m2c doctor` and `m2c --help`, run as the real binary: on the wgpu path (a Vulkan driver,
//! Mesa's lavapipe in CI) and on a machine without any Vulkan driver (CPU fallback).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on setup failure"
)]

use std::path::Path;
use std::process::{Command, Output};

fn m2c(args: &[&str], env: &[(&str, &str)]) -> Output {
    let runtime = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_m2c"));
    cmd.args(args)
        .env_remove("M2C_DEVICE")
        .env_remove("M2C_WEIGHTS")
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env("CUBECL_AUTOTUNE_LEVEL", "minimal")
        // Keep the user's own checkpoint out of the test: look in an empty home.
        .env("HOME", runtime.path())
        .env("XDG_DATA_HOME", runtime.path().join("data"))
        .env("XDG_CONFIG_HOME", runtime.path().join("config"))
        .env("HF_HOME", runtime.path().join("hf"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("m2c binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn device_line(text: &str) -> &str {
    text.lines()
        .find(|l| l.starts_with("device: "))
        .unwrap_or_else(|| panic!("no device line in:\n{text}"))
}

/// Env that hides every Vulkan driver from the loader.
const NO_VULKAN: &[(&str, &str)] = &[
    ("VK_ICD_FILENAMES", "/nonexistent/m2c-no-icd.json"),
    ("VK_DRIVER_FILES", "/nonexistent/m2c-no-icd.json"),
];

#[test]
fn help_lists_subcommands() {
    let out = m2c(&["--help"], &[]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("doctor"), "{text}");
    assert!(text.contains("--weights"), "{text}");
}

#[test]
fn doctor_without_any_vulkan_driver_falls_back_to_cpu_and_says_so() {
    let out = m2c(&["doctor"], NO_VULKAN);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "exit {:?}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(device_line(&text).contains("CPU"), "{text}");
    assert!(text.contains("adapters: none"), "{text}");
    assert!(text.contains("no GPU adapter found"), "{text}");
    assert!(text.contains("check: ok"), "{text}");
}

#[test]
fn doctor_gpu_preference_without_driver_still_works_on_cpu() {
    let out = m2c(&["doctor", "--device", "gpu"], NO_VULKAN);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(device_line(&text).contains("CPU"), "{text}");
    assert!(text.contains("no adapter was found"), "{text}");
}

#[test]
fn doctor_on_the_wgpu_path_uses_the_vulkan_adapter() {
    let out = m2c(&["doctor"], &[("M2C_DEVICE", "gpu")]);
    let text = stdout(&out);
    if text.contains("adapters: none") {
        assert!(
            std::env::var_os("M2C_REQUIRE_GPU_ADAPTER").is_none(),
            "M2C_REQUIRE_GPU_ADAPTER is set but no Vulkan adapter was found:\n{text}"
        );
        eprintln!("SKIP doctor wgpu path: no Vulkan driver here (install mesa-vulkan-drivers)");
        return;
    }
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = device_line(&text);
    assert!(line.contains("GPU (wgpu/"), "{text}");
    assert!(line.contains("f16 "), "{text}");
    assert!(text.contains("check: ok"), "{text}");
}

#[test]
fn doctor_cpu_preference_skips_the_gpu() {
    let out = m2c(&["doctor"], &[("M2C_DEVICE", "cpu")]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(device_line(&text).contains("CPU"), "{text}");
    assert!(text.contains("M2C_DEVICE=cpu"), "{text}");
}

#[test]
fn doctor_rejects_an_unknown_device() {
    let out = m2c(&["doctor"], &[("M2C_DEVICE", "cuda")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cuda") && err.contains("gpu, cpu or auto"),
        "{err}"
    );
}

#[test]
fn doctor_reports_missing_and_wrong_weights() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere").join("model.safetensors");
    let missing_s = missing.to_string_lossy().into_owned();
    let out = m2c(
        &["doctor", "--no-check", "--weights", &missing_s],
        &[("M2C_DEVICE", "cpu")],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("weights: not found"), "{text}");
    assert!(text.contains(&missing_s), "{text}");

    let wrong = dir.path().join("model.safetensors");
    std::fs::write(&wrong, b"this is not a checkpoint at all").unwrap();
    let wrong_s = wrong.to_string_lossy().into_owned();
    let out = m2c(
        &["doctor", "--no-check", "--weights", &wrong_s],
        &[("M2C_DEVICE", "cpu")],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("unusable"), "{text}");
    assert!(Path::new(&wrong_s).exists());
}

/// The committed tiny SAM3 fixture as `dir/model.safetensors` (bare names) with its config as
/// `config.json`: how the engine loads it.
fn tiny_folder(dir: &Path) -> std::path::PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sam3-tiny");
    let path = dir.join("model.safetensors");
    std::fs::copy(fixtures.join("sam3_model.safetensors"), &path).unwrap();
    std::fs::copy(fixtures.join("sam3_config.json"), dir.join("config.json")).unwrap();
    path
}

fn doctor_on(weights: &Path) -> String {
    let w = weights.to_string_lossy().into_owned();
    let out = m2c(
        &["doctor", "--no-check", "--weights", &w],
        &[("M2C_DEVICE", "cpu")],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    text
}

#[test]
fn doctor_explains_broken_foreign_and_mismatched_weights_and_accepts_the_tiny_folder() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny");
    std::fs::create_dir(&tiny).unwrap();
    let weights = tiny_folder(&tiny);
    let text = doctor_on(&tiny);
    assert!(text.contains("weights: found"), "{text}");
    assert!(!text.contains("unusable"), "{text}");
    assert!(text.contains("bare Sam3Model export"), "{text}");
    assert!(
        text.contains("config.json (the tensors match it)"),
        "{text}"
    );

    // A video renamed to model.safetensors.
    let video = dir.path().join("video.safetensors");
    let mut mp4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41".to_vec();
    mp4.extend(std::iter::repeat_n(1u8, 8192));
    std::fs::write(&video, mp4).unwrap();
    let text = doctor_on(&video);
    assert!(
        text.contains("unusable") && text.contains("MP4/MOV video"),
        "{text}"
    );

    // A truncated download.
    let full = std::fs::read(&weights).unwrap();
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let text = doctor_on(&cut);
    assert!(
        text.contains("unusable") && text.contains("truncated download?"),
        "{text}"
    );

    // SAM 2's weights.
    let sam2 = dir.path().join("sam2.safetensors");
    let header = br#"{"image_encoder.trunk.pos_embed":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"sam_mask_decoder.iou_token.weight":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0; 8]);
    std::fs::write(&sam2, bytes).unwrap();
    let text = doctor_on(&sam2);
    assert!(
        text.contains("unusable") && text.contains("SAM 2"),
        "{text}"
    );

    // A config that disagrees with the tensors.
    let config = tiny.join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    json["vision_config"]["backbone_config"]["hidden_size"] = 128.into();
    std::fs::write(&config, serde_json::to_vec(&json).unwrap()).unwrap();
    let text = doctor_on(&tiny);
    assert!(
        text.contains("does not match its config")
            && text.contains("image encoder is 96 wide, the config says 128"),
        "{text}"
    );
}
