//! `m2c weights install PATH`, run as the real binary in an empty home: the tiny SAM3 fixture
//! is checked, installed into the data folder (then found by `m2c doctor` without --weights) or
//! recorded in the settings with --in-place; wrong files (truncated, SAM 2's, a web page, a
//! PyTorch checkpoint, a Git LFS pointer, a missing path) are refused with a clear error and
//! leave nothing behind. An ignored helper writes a full-size placeholder checkpoint for timing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on setup failure"
)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use burn::store::{BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot as _, SafetensorsStore};
use m2c::engine::device::{DevicePreference, open, plan_for};
use m2c::engine::weights::check_checkpoint;
use m2c::model::Sam3Config;

/// An empty home: data, config and Hugging Face cache folders inside `home`.
fn m2c(home: &Path, args: &[&std::ffi::OsStr]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_m2c"))
        .args(args)
        .env_remove("M2C_WEIGHTS")
        .env_remove("M2C_DEVICE")
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_RUNTIME_DIR", home)
        .env("HF_HOME", home.join("hf"))
        .env("CUBECL_AUTOTUNE_LEVEL", "minimal")
        .output()
        .expect("m2c runs");
    eprintln!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn install(home: &Path, path: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> =
        vec!["weights".as_ref(), "install".as_ref(), path.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    m2c(home, &args)
}

fn installed_folder(home: &Path) -> PathBuf {
    home.join("data").join("m2c").join("sam3")
}

/// The tiny fixture laid out as a download: `model.safetensors` and `config.json`, or `None`
/// (with a skip message) when the fixtures are absent.
fn tiny_download(dir: &Path) -> Option<PathBuf> {
    let fixtures = common::tiny_fixtures()?;
    std::fs::create_dir_all(dir).unwrap();
    let weights = dir.join("model.safetensors");
    std::fs::copy(fixtures.join("sam3_model.safetensors"), &weights).unwrap();
    std::fs::copy(fixtures.join("sam3_config.json"), dir.join("config.json")).unwrap();
    Some(weights)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn installs_the_tiny_checkpoint_where_doctor_finds_it() {
    let home = tempfile::tempdir().unwrap();
    let Some(weights) = tiny_download(&home.path().join("Downloads")) else {
        return;
    };
    let out = install(home.path(), &weights, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("SAM3 checkpoint: 394 tensors"), "{text}");
    assert!(text.contains("F32"), "{text}");
    assert!(text.contains("tracker: absent"), "{text}");
    assert!(
        text.contains("config.json (the tensors match it)"),
        "{text}"
    );
    let folder = installed_folder(home.path());
    assert_eq!(
        std::fs::read(&weights).unwrap(),
        std::fs::read(folder.join("model.safetensors")).unwrap()
    );
    assert!(folder.join("config.json").is_file());
    let leftovers: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "staging files left: {leftovers:?}");

    let out = m2c(
        home.path(),
        &[
            "doctor".as_ref(),
            "--no-check".as_ref(),
            "--device".as_ref(),
            "cpu".as_ref(),
        ],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "weights: found {}",
            folder.join("model.safetensors").display()
        )),
        "{text}"
    );
    assert!(!text.contains("unusable"), "{text}");

    // Installing the installed file again changes nothing.
    let out = install(home.path(), &folder, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("already the installed checkpoint"));
}

#[test]
fn in_place_records_the_file_in_the_settings_the_app_and_doctor_read() {
    let home = tempfile::tempdir().unwrap();
    let Some(weights) = tiny_download(&home.path().join("models")) else {
        return;
    };
    let out = install(home.path(), &weights, &["--in-place"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("where it is"), "{}", stdout(&out));
    assert!(!installed_folder(home.path()).exists(), "nothing copied");
    let settings_file = home.path().join("config").join("m2c").join("settings.json");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&settings_file).unwrap()).unwrap();
    assert_eq!(saved["weights"], weights.display().to_string());
    let out = m2c(
        home.path(),
        &[
            "doctor".as_ref(),
            "--no-check".as_ref(),
            "--device".as_ref(),
            "cpu".as_ref(),
        ],
    );
    let text = stdout(&out);
    assert!(
        text.contains(&format!("weights: found {}", weights.display())),
        "{text}"
    );
}

/// Refused with `expected` in the error; no data folder content and no settings are written.
fn assert_refused(home: &Path, path: &Path, expected: &str) {
    let out = install(home, path, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
    let folder = installed_folder(home);
    let files = std::fs::read_dir(&folder).map_or(0, |rd| rd.count());
    assert_eq!(files, 0, "{} is not empty", folder.display());
    assert!(
        !home
            .join("config")
            .join("m2c")
            .join("settings.json")
            .exists()
    );
}

#[test]
fn wrong_files_are_refused_and_leave_nothing_behind() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("wrong");
    std::fs::create_dir_all(&dir).unwrap();

    assert_refused(
        home.path(),
        &dir.join("nowhere.safetensors"),
        "could not read the SAM3 checkpoint",
    );

    let page = dir.join("page.safetensors");
    std::fs::write(&page, b"<!DOCTYPE html><html><body>Sign in</body></html>").unwrap();
    assert_refused(home.path(), &page, "web page");

    let lfs = dir.join("lfs.safetensors");
    std::fs::write(
        &lfs,
        b"version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 3440000000\n",
    )
    .unwrap();
    assert_refused(home.path(), &lfs, "Git LFS pointer");

    let pt = dir.join("sam3.pt");
    std::fs::write(&pt, b"PK\x03\x04archive/data.pkl").unwrap();
    assert_refused(home.path(), &pt, "is a PyTorch checkpoint");
    assert_refused(home.path(), &pt, "huggingface.co/facebook/sam3");

    let sam2 = dir.join("sam2.safetensors");
    let header = br#"{"image_encoder.trunk.pos_embed":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"sam_mask_decoder.iou_token.weight":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0; 8]);
    std::fs::write(&sam2, bytes).unwrap();
    assert_refused(home.path(), &sam2, "SAM 2");

    let Some(weights) = tiny_download(&home.path().join("tiny")) else {
        return;
    };
    let full = std::fs::read(&weights).unwrap();
    let cut_dir = dir.join("cut");
    std::fs::create_dir_all(&cut_dir).unwrap();
    std::fs::write(cut_dir.join("model.safetensors"), &full[..full.len() / 2]).unwrap();
    assert_refused(home.path(), &cut_dir, "truncated download?");

    // The tiny tensors without their config: checked against the full-size model.
    let bare = dir.join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    std::fs::copy(&weights, bare.join("model.safetensors")).unwrap();
    assert_refused(home.path(), &bare, "does not match its config");
}

/// Not a check: writes a full-size SAM3 detector checkpoint with placeholder weights, named as
/// the hub's bare `Sam3Model` file, so that weights load time can be measured without the gated
/// download (`m2c segment --weights FILE` prints "loaded in N s"). 3.4 GB; run on purpose:
/// `M2C_FULL_CKPT_OUT=target/full/model.safetensors cargo test --test cli cli_weights -- --ignored`
#[test]
#[ignore = "writes a 3.4 GB file; run by hand to measure weights load time"]
fn write_full_size_placeholder_checkpoint() {
    let Some(out) = std::env::var_os("M2C_FULL_CKPT_OUT").map(PathBuf::from) else {
        eprintln!("SKIP: set M2C_FULL_CKPT_OUT to the file to write");
        return;
    };
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    let device = open(&plan_for(DevicePreference::Cpu)).unwrap();
    let start = Instant::now();
    let config = Sam3Config::full();
    config.validate().unwrap();
    let model = config.init(&device);
    eprintln!("init: {:.1} s", start.elapsed().as_secs_f64());
    // The loader's remap table backwards; the adapter turns gamma/beta into weight/bias and
    // transposes Linear weights back to PyTorch's layout.
    let remap =
        KeyRemapper::from_patterns(vec![(r"\.scale_layers_(\d+)\.", ".scale_layers.$1.")]).unwrap();
    let mut store = SafetensorsStore::from_file(&out)
        .with_to_adapter(BurnToPyTorchAdapter)
        .remap(remap)
        .overwrite(true);
    let start = Instant::now();
    model.save_into(&mut store).unwrap();
    eprintln!(
        "saved {} in {:.1} s",
        out.display(),
        start.elapsed().as_secs_f64()
    );
    let summary = check_checkpoint(&out, None).unwrap();
    eprintln!(
        "{} tensors, {:.2} GB, bare names: {}",
        summary.tensors,
        summary.file_bytes as f64 / 1e9,
        summary.bare
    );
}
