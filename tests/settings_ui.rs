//! The Settings dialog driven headless through egui_kittest: a bad weights path shows a clear
//! message and disables Apply, a valid checkpoint (synthetic, and the tiny SAM3 fixture with
//! bare names) is accepted, and Apply hands back the edited settings.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on setup failure"
)]

mod common;

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
    let weights = dir.path().join("model.safetensors");
    safetensors(
        &weights,
        &["detector_model.vision_encoder.w", "tracker_model.w"],
    );
    let mut h = harness(&ModelSettings::default());
    wait_for_check(&mut h);
    // Its folder stands for its model.safetensors, as on the command line.
    type_weights(&mut h, &dir.path().display().to_string());
    assert!(matches!(
        h.state().dialog.weights_check(),
        Some(WeightsCheck::Sam3(_))
    ));
    h.get_by_label_contains("SAM3 checkpoint: 2 tensors (1 detector, 1 tracker)");
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
        }
    );
    assert!(!h.state().dialog.open, "Apply closes the dialog");
}

#[test]
fn the_tiny_fixture_with_bare_names_is_accepted_with_a_warning() {
    let Some(path) = common::shared_path("fixtures/sam3-tiny/sam3_model.safetensors") else {
        return;
    };
    let current = ModelSettings {
        weights: Some(PathBuf::from(&path)),
        ..ModelSettings::default()
    };
    let mut h = harness(&current);
    wait_for_check(&mut h);
    assert!(matches!(
        h.state().dialog.weights_check(),
        Some(WeightsCheck::BareSam3 { .. })
    ));
    h.get_by_label_contains("names without the detector_model. prefix: will be tried");
    assert!(apply_enabled(&h));
    h.get_by_label(settings::APPLY).click();
    h.run_steps(2);
    assert_eq!(h.state().applied.as_ref(), Some(&current));
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
    };
    let mut h = harness(&current);
    wait_for_check(&mut h);
    h.get_by_label("No file at missing-weights/model.safetensors.");
    assert!(!apply_enabled(&h));
    h.snapshot("settings_dialog");
}
