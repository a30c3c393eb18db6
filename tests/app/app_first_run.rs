//! The first five minutes, through the real app (egui_kittest): the empty window says what to
//! do in two lines; the first study shows the five-key overlay once (its dismissal remembered);
//! Esc closes the topmost window (help, settings, the weights dialog, the overlay) before it
//! means "reject the prediction"; the shortcut list fits a small window by scrolling.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on setup failure"
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use m2c::app::{FIRST_STEP_OPEN, FIRST_STEP_WEIGHTS, LaunchOptions, M2cApp, first_run};
use m2c::engine::device::DevicePreference;

const REJECT_TOAST: &str = "Only a model's prediction can be rejected";

fn launch(paths: Vec<PathBuf>) -> LaunchOptions {
    LaunchOptions {
        paths,
        weights: Some(PathBuf::from("missing-weights/model.safetensors")),
        device: DevicePreference::Cpu,
    }
}

fn harness(app: M2cApp, size: egui::Vec2) -> Harness<'static, M2cApp> {
    Harness::builder()
        .with_size(size)
        .build_ui_state(|ui, app: &mut M2cApp| app.frame_ui(ui), app)
}

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

/// A folder of two gray PNGs.
fn png_study(root: &Path) -> PathBuf {
    let study = root.join("study");
    std::fs::create_dir(&study).unwrap();
    for (name, shade) in [("a.png", 60u8), ("b.png", 120u8)] {
        image::GrayImage::from_fn(32, 24, |x, _| image::Luma([shade.saturating_add(x as u8)]))
            .save(study.join(name))
            .unwrap();
    }
    study
}

/// The app on `study`, its projects in `root/data`, the overlay's memory in `ui_file`.
fn app_on(study: &Path, root: &Path, ui_file: &Path) -> Harness<'static, M2cApp> {
    let mut app = M2cApp::new(launch(vec![study.to_path_buf()]));
    app.set_data_dir(Some(root.join("data")));
    app.use_ui_file(ui_file.to_path_buf());
    let mut h = harness(app, egui::vec2(1100.0, 720.0));
    h.step();
    wait_until(&mut h, |app| {
        app.study().shown().is_some() && app.session().is_some()
    });
    h
}

fn press(h: &mut Harness<'static, M2cApp>, key: Key) {
    h.key_press(key);
    h.run_steps(2);
}

fn rejected(h: &Harness<'static, M2cApp>) -> bool {
    h.query_by_label_contains(REJECT_TOAST).is_some()
}

#[test]
fn the_empty_window_says_what_to_do_in_two_lines() {
    let mut h = harness(M2cApp::new(launch(Vec::new())), egui::vec2(1100.0, 720.0));
    h.run_steps(2);
    h.get_by_label(FIRST_STEP_OPEN);
    h.get_by_label(FIRST_STEP_WEIGHTS);
    // The second line points to the Help entry, which is there.
    assert!(FIRST_STEP_WEIGHTS.contains("Help > Get SAM3 weights…"));
    h.get_by_label("Help").click();
    h.run_steps(2);
    h.get_by_label("Get SAM3 weights…").click();
    h.run_steps(2);
    assert!(h.state().weights_dialog().open);
}

#[test]
fn the_key_overlay_shows_once_and_esc_closes_the_topmost_window_before_rejecting() {
    let dir = tempfile::tempdir().unwrap();
    let study = png_study(dir.path());
    let ui_file = dir.path().join("config").join(first_run::UI_FILE);
    let mut h = app_on(&study, dir.path(), &ui_file);
    assert!(
        h.state().key_tips_open(),
        "the overlay shows over the first study"
    );
    h.get_by_label(first_run::KEY_TIPS_TITLE);
    for key in ["B", "W", "L", "Shift+D", "Enter"] {
        assert!(
            h.query_all_by_label(key).count() >= 1,
            "{key} is not listed"
        );
    }

    // Settings, then the shortcut list on top of it: Esc closes the list first.
    h.key_press_modifiers(Modifiers::COMMAND, Key::Comma);
    h.run_steps(2);
    press(&mut h, Key::F1);
    assert_eq!(h.state().open_windows(), (true, true, false, true));
    press(&mut h, Key::Escape);
    assert_eq!(h.state().open_windows(), (false, true, false, true));
    press(&mut h, Key::Escape);
    assert_eq!(h.state().open_windows(), (false, false, false, true));
    // The weights dialog too.
    h.get_by_label("Help").click();
    h.run_steps(2);
    h.get_by_label("Get SAM3 weights…").click();
    h.run_steps(2);
    assert_eq!(h.state().open_windows(), (false, false, true, true));
    press(&mut h, Key::Escape);
    assert_eq!(h.state().open_windows(), (false, false, false, true));
    // Then the overlay, whose dismissal is remembered.
    press(&mut h, Key::Escape);
    assert_eq!(h.state().open_windows(), (false, false, false, false));
    assert!(!rejected(&h), "Esc rejected while a window was open");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&ui_file).unwrap()).unwrap();
    assert_eq!(saved["key_tips_dismissed"], true);
    // With every window closed, Esc means reject (nothing to reject on this image: it says so).
    press(&mut h, Key::Escape);
    assert!(rejected(&h), "Esc no longer reaches Reject prediction");
    drop(h);

    // The next session (same memory) opens the study without the overlay.
    let mut h = app_on(&study, dir.path(), &ui_file);
    h.run_steps(3);
    assert!(!h.state().key_tips_open());
    assert!(h.query_by_label(first_run::KEY_TIPS_TITLE).is_none());
}

#[test]
fn the_overlay_button_dismisses_it() {
    let dir = tempfile::tempdir().unwrap();
    let study = png_study(dir.path());
    let ui_file = dir.path().join(first_run::UI_FILE);
    let mut h = app_on(&study, dir.path(), &ui_file);
    assert!(h.state().key_tips_open());
    h.get_by_label(first_run::DISMISS).click();
    h.run_steps(2);
    assert!(!h.state().key_tips_open());
    assert!(ui_file.is_file());
}

#[test]
fn the_shortcut_list_fits_a_small_window() {
    let mut h = harness(M2cApp::new(launch(Vec::new())), egui::vec2(640.0, 420.0));
    h.run_steps(1);
    press(&mut h, Key::F1);
    h.run_steps(2);
    assert!(h.state().open_windows().0, "F1 opened the list");
    // The list is longer than the window: it scrolls, and its last row is reachable.
    let quit = h.get_by_label("Quit");
    quit.scroll_to_me();
    h.run_steps(3);
    let quit = h.get_by_label("Quit").rect();
    assert!(
        quit.bottom() <= 420.0 && quit.top() >= 0.0,
        "last row at {quit:?}, outside the 420-point-high window"
    );
}
