//! The real app driven headless through egui_kittest: empty state, start-up status, opening a
//! study by drag and drop, the shortcut help. Renders through wgpu (lavapipe in CI) for the
//! snapshot.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on setup failure"
)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use m2c::app::{LaunchOptions, M2cApp, ModelStatus, WeightsStatus};
use m2c::engine::device::DevicePreference;

/// A file or folder dropped on the window.
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

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
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "device probe did not finish"
        );
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
            assert!(
                matches!(weights, WeightsStatus::Missing { .. }),
                "{weights:?}"
            );
        }
        other => panic!("unexpected status {other:?}"),
    }
    h.get_by_label("SAM3 weights: not found");
    // Shown in the model panel and the status bar.
    assert_eq!(
        h.query_all_by_label("device: CPU (burn flex backend, pure Rust)")
            .count(),
        2
    );
    h.snapshot("empty_state");
}

/// Steps the UI until `done` holds (background discovery and decoding finish).
fn wait_until(h: &mut Harness<'static, M2cApp>, done: impl Fn(&M2cApp) -> bool) {
    let start = Instant::now();
    while !done(h.state()) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "background work did not finish"
        );
        std::thread::sleep(Duration::from_millis(10));
        h.step();
    }
    h.run_steps(2);
}

#[test]
fn dropping_a_folder_discovers_its_images_and_shows_the_first() {
    let mut h = harness(M2cApp::new(launch()));
    h.run_steps(1);
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("pngs");
    std::fs::create_dir(&study).unwrap();
    for (name, shade) in [("a.png", 40u8), ("b.png", 200u8)] {
        image::GrayImage::from_fn(16, 12, |x, _| image::Luma([shade.saturating_add(x as u8)]))
            .save(study.join(name))
            .unwrap();
    }
    std::fs::write(study.join("notes.txt"), b"not an image").unwrap();
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(study.clone())));
    h.step();
    wait_until(&mut h, |app| app.study().shown().is_some());
    assert_eq!(h.state().opened(), &[study]);
    assert_eq!(h.state().study().series().len(), 2);
    assert_eq!(h.state().study().shown(), Some((0, 0)));
    assert_eq!(
        h.state().study().skipped().len(),
        1,
        "the text file is skipped with a reason"
    );
    h.get_by_label_contains("a.png");
    h.get_by_label_contains("1 files skipped");
    h.get_by_label_contains("slice 1/1");
    // Selecting the second image shows it.
    h.get_by_label_contains("b.png").click();
    h.step();
    wait_until(&mut h, |app| app.study().shown() == Some((1, 0)));
}

#[test]
fn opening_a_folder_without_images_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = launch();
    options.paths = vec![dir.path().to_path_buf()];
    let mut h = harness(M2cApp::new(options));
    h.step();
    wait_until(&mut h, |app| !app.study().is_discovering());
    h.get_by_label("No images found in what was opened.");
}

#[test]
fn window_presets_apply_from_the_keyboard() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("ct.png");
    image::GrayImage::from_fn(8, 8, |x, y| image::Luma([(x * 30 + y) as u8]))
        .save(&png)
        .unwrap();
    let mut options = launch();
    options.paths = vec![png];
    let mut h = harness(M2cApp::new(options));
    h.step();
    wait_until(&mut h, |app| app.study().shown().is_some());
    h.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::Num3);
    h.run_steps(2);
    let w = h.state().study().window().unwrap();
    assert_eq!(
        (w.center, w.width),
        (-600.0, 1500.0),
        "Shift+3 is the lung preset"
    );
}

#[test]
fn f1_toggles_the_shortcut_list_built_from_the_action_table() {
    let mut h = harness(M2cApp::new(launch()));
    h.run_steps(1);
    assert!(
        h.query_by_label("Next slice").is_none(),
        "shortcut list shown before F1"
    );
    h.key_press(egui::Key::F1);
    h.run_steps(2);
    // Rows come from the action table, with every shortcut of an action.
    h.get_by_label("Next slice");
    h.get_by_label("Lung");
    h.get_by_label_contains("PageDown");
}
