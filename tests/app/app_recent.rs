//! Recently opened studies: opening a study remembers it (in the file given), the start screen
//! lists it after a restart, and clicking it opens it again; a study that has gone is dropped
//! from the list with a message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use m2c::app::{LaunchOptions, M2cApp};
use m2c::engine::device::DevicePreference;

fn app(paths: Vec<PathBuf>, recent: PathBuf, data: PathBuf) -> Harness<'static, M2cApp> {
    let mut app = M2cApp::new(LaunchOptions {
        paths,
        weights: None,
        device: DevicePreference::Cpu,
    });
    app.set_data_dir(Some(data));
    app.use_recent_file(recent);
    Harness::builder()
        .with_size(egui::vec2(1100.0, 720.0))
        .build_ui_state(|ui, app: &mut M2cApp| app.frame_ui(ui), app)
}

#[test]
fn recent_studies_reopen_from_the_start_screen() {
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("colon-study");
    std::fs::create_dir(&study).unwrap();
    image::GrayImage::new(32, 24)
        .save(study.join("a.png"))
        .unwrap();
    let gone = dir.path().join("moved-away");
    std::fs::create_dir(&gone).unwrap();
    let recent = dir.path().join("cfg").join("recent.json");
    let data = dir.path().join("data");

    // a first session opens both; the list keeps the newest first
    let mut h = app(
        vec![gone.clone(), study.clone()],
        recent.clone(),
        data.clone(),
    );
    h.run_steps(3);
    assert_eq!(h.state().recent(), [study.clone(), gone.clone()]);
    drop(h);
    std::fs::remove_dir(&gone).unwrap();

    // a new session starts empty and offers both
    let mut h = app(Vec::new(), recent, data);
    h.run_steps(2);
    h.get_by_label("Recent");
    h.get_by_label("moved-away").click();
    h.run_steps(2);
    assert!(h.state().opened().is_empty());
    assert!(
        h.state()
            .toasts()
            .texts()
            .any(|t| t.contains("no longer exists")),
        "{:?}",
        h.state().toasts().texts().collect::<Vec<_>>()
    );
    assert_eq!(h.state().recent(), std::slice::from_ref(&study));
    h.get_by_label("colon-study").click();
    let start = Instant::now();
    while h.state().study().shown().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the study did not open"
        );
        std::thread::sleep(Duration::from_millis(10));
        h.step();
    }
    assert_eq!(h.state().opened(), [study]);
}
