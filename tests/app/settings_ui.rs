//! The Settings dialog driven headless through egui_kittest: a bad weights path shows a clear
//! message and disables Apply (a renamed video, a truncated file, SAM 2's weights, a config
//! that disagrees with the tensors), a valid checkpoint (the committed tiny SAM3 fixture in a
//! folder with its config, with hub-style and bare names) is accepted, and Apply hands back the
//! edited settings.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on setup failure"
)]

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use m2c::app::settings::{self, SettingsDialog};
use m2c::engine::device::DevicePreference;
use m2c::engine::settings::{ModelSettings, Precision, WeightsCheck};

const DEVICE_INFO: &str = "device: CPU (burn flex backend, pure Rust)";

/// The dialog and what its last Apply returned.
struct State {
    dialog: SettingsDialog,
    applied: Option<ModelSettings>,
}

fn harness(current: &ModelSettings) -> Harness<'static, State> {
    let mut dialog = SettingsDialog::new(current);
    dialog.show(current);
    Harness::builder()
        .with_size(egui::vec2(640.0, 560.0))
        .build_ui_state(
            |ui, state: &mut State| {
                let ctx = ui.ctx().clone();
                if let Some(s) = state.dialog.ui(&ctx, DEVICE_INFO) {
                    state.applied = Some(s);
                }
            },
            State {
                dialog,
                applied: None,
            },
        )
}

/// Steps until the background weights check for the current text has answered.
fn wait_for_check(h: &mut Harness<'static, State>) {
    let start = Instant::now();
    h.run_steps(2);
    while h.state().dialog.is_checking() || h.state().dialog.weights_check().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "weights check did not finish"
        );
        std::thread::sleep(Duration::from_millis(10));
        h.step();
    }
    h.run_steps(2);
}

/// Replaces the weights field's text with `text`.
fn type_weights(h: &mut Harness<'static, State>, text: &str) {
    h.get_by_role_and_label(Role::TextInput, settings::WEIGHTS_FIELD)
        .focus();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.key_press(egui::Key::Backspace);
    h.step();
    h.get_by_role_and_label(Role::TextInput, settings::WEIGHTS_FIELD)
        .type_text(text);
    wait_for_check(h);
}

fn apply_enabled(h: &Harness<'static, State>) -> bool {
    !h.get_by_label(settings::APPLY)
        .accesskit_node()
        .is_disabled()
}

/// A safetensors file whose tensors carry `names`.
fn safetensors(path: &Path, names: &[&str]) {
    let mut header = serde_json::Map::new();
    for (i, n) in names.iter().enumerate() {
        header.insert(
            (*n).to_owned(),
            serde_json::json!({"dtype": "F32", "shape": [1], "data_offsets": [i * 4, i * 4 + 4]}),
        );
    }
    let header = serde_json::to_vec(&header).unwrap();
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&header);
    bytes.extend(std::iter::repeat_n(0u8, names.len() * 4));
    std::fs::write(path, bytes).unwrap();
}

/// The committed tiny SAM3 fixture as `dir/model.safetensors` (names prefixed with
/// `detector_model.` when `prefixed`, as in the hub's file) with its config as `config.json`.
fn tiny_folder(dir: &Path, prefixed: bool) -> PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sam3-tiny");
    let bytes = std::fs::read(fixtures.join("sam3_model.safetensors")).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    let header: serde_json::Map<String, serde_json::Value> = header
        .into_iter()
        .map(|(k, v)| match prefixed && k != "__metadata__" {
            true => (format!("detector_model.{k}"), v),
            false => (k, v),
        })
        .collect();
    let header = serde_json::to_vec(&header).unwrap();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend_from_slice(&bytes[8 + len..]);
    let path = dir.join("model.safetensors");
    std::fs::write(&path, out).unwrap();
    std::fs::copy(fixtures.join("sam3_config.json"), dir.join("config.json")).unwrap();
    path
}

#[test]
fn broken_and_foreign_weights_are_explained_and_block_apply() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(&ModelSettings::default());
    wait_for_check(&mut h);
    let video = dir.path().join("video.safetensors");
    let mut mp4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41".to_vec();
    mp4.extend(std::iter::repeat_n(7u8, 4096));
    std::fs::write(&video, mp4).unwrap();
    type_weights(&mut h, &video.display().to_string());
    h.get_by_label_contains("it is an MP4/MOV video");
    assert!(!apply_enabled(&h));

    let good = tempfile::tempdir().unwrap();
    let full = std::fs::read(tiny_folder(good.path(), true)).unwrap();
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &full[..full.len() * 2 / 3]).unwrap();
    type_weights(&mut h, &cut.display().to_string());
    h.get_by_label_contains("truncated download?");
    assert!(!apply_enabled(&h));

    let sam2 = dir.path().join("sam2.safetensors");
    safetensors(
        &sam2,
        &[
            "image_encoder.trunk.blocks.0.attn.qkv.weight",
            "sam_mask_decoder.iou_prediction_head.layers.0.weight",
        ],
    );
    type_weights(&mut h, &sam2.display().to_string());
    h.get_by_label_contains("named like SAM 2's");
    assert!(!apply_enabled(&h));

    let other = tempfile::tempdir().unwrap();
    let weights = tiny_folder(other.path(), false);
    let config = other.path().join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["detr_decoder_config"]["num_layers"] = 6.into();
    std::fs::write(&config, serde_json::to_vec(&json).unwrap()).unwrap();
    type_weights(&mut h, &weights.display().to_string());
    h.get_by_label_contains("DETR decoder has 2 layers, the config says 6");
    assert!(!apply_enabled(&h));
}

#[test]
fn a_bad_path_is_explained_and_blocks_apply() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(&ModelSettings::default());
    wait_for_check(&mut h);
    h.get_by_label_contains("without one the app is a manual annotator");
    assert!(
        apply_enabled(&h),
        "an empty path (manual annotation) is valid"
    );

    let missing = dir.path().join("nowhere").join("model.safetensors");
    type_weights(&mut h, &missing.display().to_string());
    h.get_by_label_contains("No file at");
    assert!(!apply_enabled(&h));

    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"PK\x03\x04 a zip, not weights").unwrap();
    type_weights(&mut h, &junk.display().to_string());
    h.get_by_label_contains("is not a valid safetensors checkpoint");
    assert!(!apply_enabled(&h));

    let bert = dir.path().join("bert.safetensors");
    safetensors(&bert, &["encoder.layer.0.weight"]);
    type_weights(&mut h, &bert.display().to_string());
    h.get_by_label_contains("not a SAM3 checkpoint");
    assert!(!apply_enabled(&h));

    // Pressing the disabled button applies nothing.
    h.get_by_label(settings::APPLY).click();
    h.run_steps(2);
    assert!(h.state().applied.is_none());
    assert!(h.state().dialog.open);
    // The how-to text is one click away.
    h.get_by_label("How to get the weights").click();
    h.run_steps(2);
    h.get_by_label_contains("Accept the licence on Hugging Face for facebook/sam3");
}

#[test]
fn a_valid_checkpoint_is_accepted_and_apply_returns_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    tiny_folder(dir.path(), true);
    let mut h = harness(&ModelSettings::default());
    wait_for_check(&mut h);
    // Its folder stands for its model.safetensors, as on the command line.
    type_weights(&mut h, &dir.path().display().to_string());
    assert!(matches!(
        h.state().dialog.weights_check(),
        Some(WeightsCheck::Sam3(_))
    ));
    h.get_by_label_contains("SAM3 checkpoint: 394 tensors (394 detector, 0 tracker)");
    assert!(apply_enabled(&h));
    h.get_by_label_contains(DEVICE_INFO);
    h.get_by_label("CPU").click();
    h.get_by_label("f16").click();
    h.run_steps(2);
    h.get_by_label(settings::APPLY).click();
    h.run_steps(2);
    let applied = h
        .state()
        .applied
        .clone()
        .expect("Apply returns the settings");
    assert_eq!(
        applied,
        ModelSettings {
            weights: Some(dir.path().to_path_buf()),
            device: DevicePreference::Cpu,
            precision: Precision::F16,
            // Left at its default (every core but one), which follows the machine.
            cpu_threads: None,
        }
    );
    assert!(!h.state().dialog.open, "Apply closes the dialog");
}

#[test]
fn the_tiny_fixture_in_a_folder_with_its_config_is_usable() {
    // As the engine loads it: a folder holding model.safetensors (bare Sam3Model names) and
    // its config.json.
    let dir = tempfile::tempdir().unwrap();
    tiny_folder(dir.path(), false);
    let current = ModelSettings {
        weights: Some(dir.path().to_path_buf()),
        ..ModelSettings::default()
    };
    let mut h = harness(&current);
    wait_for_check(&mut h);
    assert!(matches!(
        h.state().dialog.weights_check(),
        Some(WeightsCheck::BareSam3 { tensors: 394, .. })
    ));
    h.get_by_label_contains("a bare Sam3Model export, 394 tensors) matching");
    h.get_by_label_contains("config.json: usable");
    assert!(apply_enabled(&h));
    h.get_by_label(settings::APPLY).click();
    h.run_steps(2);
    assert_eq!(h.state().applied.as_ref(), Some(&current));
}

#[test]
fn the_bare_fixture_file_alone_is_refused_for_want_of_its_config() {
    // Without config.json beside it the engine would build the full-size model, which these
    // tensors do not fit: said so, before any load.
    let Some(path) = common::shared_path("fixtures/sam3-tiny/sam3_model.safetensors") else {
        return;
    };
    let mut h = harness(&ModelSettings {
        weights: Some(PathBuf::from(&path)),
        ..ModelSettings::default()
    });
    wait_for_check(&mut h);
    h.get_by_label_contains("full-size preset");
    assert!(!apply_enabled(&h));
}

#[test]
fn cancel_closes_without_applying() {
    let mut h = harness(&ModelSettings::default());
    wait_for_check(&mut h);
    h.get_by_label("GPU").click();
    h.get_by_label("Cancel").click();
    h.run_steps(2);
    assert!(!h.state().dialog.open);
    assert!(h.state().applied.is_none());
    // Reopening starts again from the current settings.
    h.state_mut().dialog.show(&ModelSettings::default());
    assert_eq!(h.state().dialog.draft(), ModelSettings::default());
}

#[test]
fn dialog_snapshot_with_a_missing_weights_file() {
    let current = ModelSettings {
        // A relative path that does not exist: deterministic text in the snapshot.
        weights: Some(PathBuf::from("missing-weights/model.safetensors")),
        device: DevicePreference::Auto,
        precision: Precision::F32,
        // Fixed, so that the snapshot does not depend on this machine's cores.
        cpu_threads: Some(1),
    };
    let mut h = harness(&current);
    wait_for_check(&mut h);
    h.get_by_label("No file at missing-weights/model.safetensors.");
    assert!(!apply_enabled(&h));
    h.snapshot("settings_dialog");
}
