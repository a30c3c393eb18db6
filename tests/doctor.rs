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
