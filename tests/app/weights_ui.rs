//! Help → Get SAM3 weights… driven headless through egui_kittest, without the system file
//! dialog (the path typed into the field): the tiny SAM3 fixture is checked (what was found is
//! shown), installed into a temporary data folder, and the app then finds and loads it; a wrong
//! file shows why and keeps Install disabled.
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
use m2c::app::weights_dialog::{self, WeightsDialog};
use m2c::app::{LaunchOptions, M2cApp, ModelStatus, WeightsStatus};
use m2c::engine::InstallTarget;
use m2c::engine::device::DevicePreference;

/// The tiny fixture laid out as a download (`model.safetensors`, `config.json`), or `None`
/// with a skip message when the fixtures are absent.
fn tiny_download(dir: &Path) -> Option<PathBuf> {
    let fixtures = common::tiny_fixtures()?;
    std::fs::create_dir_all(dir).unwrap();
    let weights = dir.join("model.safetensors");
    std::fs::copy(fixtures.join("sam3_model.safetensors"), &weights).unwrap();
    std::fs::copy(fixtures.join("sam3_config.json"), dir.join("config.json")).unwrap();
    Some(weights)
}

fn target(root: &Path) -> InstallTarget {
    InstallTarget {
        folder: root.join("data").join("m2c").join("sam3"),
        settings_file: Some(root.join("config").join("m2c").join("settings.json")),
    }
}

/// Steps until `done` holds.
fn wait_for<S>(h: &mut Harness<'static, S>, what: &str, done: impl Fn(&S) -> bool) {
    let start = Instant::now();
    h.run_steps(2);
    while !done(h.state()) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what} did not finish"
        );
        std::thread::sleep(Duration::from_millis(10));
        h.step();
    }
    h.run_steps(2);
}

/// Types `text` into the path field (replacing what is there).
fn type_path<S>(h: &mut Harness<'static, S>, text: &str) {
    h.get_by_role_and_label(Role::TextInput, weights_dialog::FILE_FIELD)
        .focus();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.key_press(egui::Key::Backspace);
    h.step();
    h.get_by_role_and_label(Role::TextInput, weights_dialog::FILE_FIELD)
        .type_text(text);
    h.run_steps(2);
}

fn install_enabled<S>(h: &Harness<'static, S>) -> bool {
    !h.get_by_label(weights_dialog::INSTALL)
        .accesskit_node()
        .is_disabled()
}

#[test]
fn the_dialog_checks_and_installs_the_tiny_checkpoint() {
    let root = tempfile::tempdir().unwrap();
    let Some(weights) = tiny_download(&root.path().join("Downloads")) else {
        return;
    };
    let target = target(root.path());
    let mut dialog = WeightsDialog::new(Some(target.clone()));
    dialog.show();
    let mut h = Harness::builder()
        .with_size(egui::vec2(720.0, 620.0))
        .build_ui_state(
            |ui, state: &mut (WeightsDialog, Option<PathBuf>)| {
                let ctx = ui.ctx().clone();
                if let Some(done) = state.0.ui(&ctx) {
                    state.1 = Some(done.weights);
                }
            },
            (dialog, None),
        );
    h.run_steps(2);
    h.get_by_label_contains("facebook/sam3");
    assert!(!install_enabled(&h), "Install before any file was checked");

    // A web page saved instead of the weights: why, and no Install.
    let page = root.path().join("page.safetensors");
    std::fs::write(&page, b"<!DOCTYPE html><html>Sign in to continue</html>").unwrap();
    type_path(&mut h, &page.display().to_string());
    wait_for(&mut h, "the check", |s| s.0.check().is_some());
    h.get_by_label_contains("web page");
    assert!(!install_enabled(&h));

    type_path(&mut h, &weights.display().to_string());
    wait_for(&mut h, "the check", |s| s.0.check().is_some());
    h.get_by_label_contains("SAM3 checkpoint: 394 tensors");
    h.get_by_label_contains("tracker: absent");
    assert!(install_enabled(&h));
    h.get_by_label(weights_dialog::INSTALL).click();
    wait_for(&mut h, "the installation", |s| s.1.is_some());
    let installed = h.state().1.clone().unwrap();
    assert_eq!(installed, target.checkpoint());
    assert_eq!(
        std::fs::read(&weights).unwrap(),
        std::fs::read(&installed).unwrap()
    );
    assert!(target.folder.join("config.json").is_file());
    h.get_by_label_contains("The model is loading");
}

#[test]
fn installing_from_the_help_menu_makes_the_app_find_the_weights() {
    let root = tempfile::tempdir().unwrap();
    let Some(weights) = tiny_download(&root.path().join("Downloads")) else {
        return;
    };
    let target = target(root.path());
    let mut app = M2cApp::new(LaunchOptions {
        paths: Vec::new(),
        weights: Some(PathBuf::from("missing-weights/model.safetensors")),
        device: DevicePreference::Cpu,
    });
    app.use_weights_target(Some(target.clone()));
    app.start_environment_probe(None);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1100.0, 720.0))
        .build_ui_state(|ui, app: &mut M2cApp| app.frame_ui(ui), app);
    wait_for(&mut h, "the device probe", |app| {
        *app.model_status() != ModelStatus::Detecting
    });
    h.get_by_label("Help").click();
    h.run_steps(2);
    h.get_by_label("Get SAM3 weights…").click();
    // The action runs at the end of the frame; a new window's first frame is a sizing pass.
    h.run_steps(4);
    assert!(h.state().weights_dialog().open);
    // In place: nothing is copied, the settings name the file.
    h.get_by_label(weights_dialog::IN_PLACE).click();
    type_path(&mut h, &weights.display().to_string());
    wait_for(&mut h, "the check", |app| {
        app.weights_dialog().check().is_some()
    });
    h.get_by_label(weights_dialog::INSTALL).click();
    wait_for(&mut h, "the installation and the new probe", |app| {
        matches!(
            app.model_status(),
            ModelStatus::Ready {
                weights: WeightsStatus::Found { .. },
                ..
            }
        )
    });
    assert_eq!(
        h.state().model_settings().weights.as_deref(),
        Some(weights.as_path())
    );
    assert!(!target.folder.exists(), "in place copies nothing");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(target.settings_file.unwrap()).unwrap()).unwrap();
    assert_eq!(saved["weights"], weights.display().to_string());
}
