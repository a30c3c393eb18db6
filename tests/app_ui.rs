//! The real app driven headless through egui_kittest: empty state, start-up status, opening a
//! study by drag and drop, the shortcut help. Renders through wgpu (lavapipe in CI) for the
//! snapshot.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use m2c::app::{LaunchOptions, M2cApp, ModelStatus, WeightsStatus};
use m2c::engine::device::DevicePreference;

fn launch() -> LaunchOptions {
    LaunchOptions {
        paths: Vec::new(),
        // A relative path that does not exist: deterministic text in the snapshot.
        weights: Some(PathBuf::from("missing-weights/model.safetensors")),
        device: DevicePreference::Cpu,
    }
}

fn harness(app: M2cApp) -> Harness<'static, M2cApp> {
    Harness::builder()
        .with_size(egui::vec2(1100.0, 720.0))
        .build_ui_state(|ui, app: &mut M2cApp| app.frame_ui(ui), app)
}

/// Steps the UI until the background device probe has reported.
fn wait_for_probe(h: &mut Harness<'static, M2cApp>) {
    let start = Instant::now();
    while *h.state().model_status() == ModelStatus::Detecting {
        assert!(start.elapsed() < Duration::from_secs(60), "device probe did not finish");
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    h.run_steps(3);
}

#[test]
fn empty_state_invites_to_open_a_study_and_shows_model_status() {
    let app = M2cApp::new(launch());
    app.start_environment_probe(None);
    let mut h = harness(app);
    h.run_steps(2);
    h.get_by_label("Drop a study folder or DICOM/PNG/JPEG files here");
    h.get_by_label_contains("Open folder…");
    h.get_by_label_contains("Open files…");
    wait_for_probe(&mut h);
    match h.state().model_status() {
        ModelStatus::Ready {
            device_line,
            weights,
            ..
        } => {
            assert!(device_line.contains("CPU"), "{device_line}");
            assert!(matches!(weights, WeightsStatus::Missing { .. }), "{weights:?}");
        }
        other => panic!("unexpected status {other:?}"),
    }
    h.get_by_label("SAM3 weights: not found");
    h.get_by_label("device: CPU (burn flex backend, pure Rust)");
    h.snapshot("empty_state");
}

#[test]
fn dropping_a_folder_opens_it() {
    let mut h = harness(M2cApp::new(launch()));
    h.run_steps(1);
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("ct-study");
    std::fs::create_dir(&study).unwrap();
    h.input_mut().dropped_files.push(egui::DroppedFile {
        path: Some(study.clone()),
        ..Default::default()
    });
    h.run_steps(2);
    assert_eq!(h.state().opened(), &[study]);
    h.get_by_label("ct-study");
    h.get_by_label("Drop more studies here");
}

#[test]
fn f1_toggles_the_shortcut_list_built_from_the_action_table() {
    let mut h = harness(M2cApp::new(launch()));
    h.run_steps(1);
    assert!(h.query_by_label("Keyboard shortcuts").is_none() || h.query_all_by_label("Keyboard shortcuts").count() <= 1);
    h.key_press(egui::Key::F1);
    h.run_steps(2);
    // The window title plus the Quit row prove the list is drawn from the table.
    h.get_by_label("Quit");
    h.get_by_label("Open files…");
}
