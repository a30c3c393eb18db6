//! Annotating a DICOM series through the real app: slices of one series are separate items,
//! D moves within the series, and the NIfTI export stacks the slices on the series' grid.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dicom_gen;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::Key;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use m2c::app::{LaunchOptions, M2cApp};
use m2c::engine::device::DevicePreference;
use nifti::{IntoNdArray as _, NiftiObject as _, ReaderOptions};

fn harness(study: &Path) -> Harness<'static, M2cApp> {
    let app = M2cApp::new(LaunchOptions {
        paths: vec![study.to_path_buf()],
        weights: Some(PathBuf::from("missing-weights/model.safetensors")),
        device: DevicePreference::Cpu,
    });
    Harness::builder()
        .with_size(egui::vec2(1100.0, 720.0))
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

/// A click (press and release) on the centre of image pixel `px`.
fn dab(h: &mut Harness<'static, M2cApp>, px: [f32; 2]) {
    let at = h.state().study().ui_from_image([px[0] + 0.5, px[1] + 0.5]);
    h.hover_at(at);
    h.step();
    h.drag_at(at);
    h.step();
    h.drop_at(at);
    h.step();
    h.run_steps(2);
}

#[test]
fn slices_are_annotated_separately_and_export_as_one_volume() {
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("ct");
    std::fs::create_dir(&study).unwrap();
    let positions = dicom_gen::axial_positions(&[0.0, 2.0, 4.0]);
    dicom_gen::ct_series(
        &study,
        "1.2.3.44",
        &positions,
        [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
    );
    let mut h = harness(&study);
    h.step();
    wait_until(&mut h, |app| {
        app.study().shown().is_some() && app.session().is_some()
    });
    h.get_by_label_contains("0/3 slices annotated");
    // A one-pixel brush: 8 → 1 px in six steps.
    for _ in 0..6 {
        h.key_press(Key::OpenBracket);
    }
    h.run_steps(1);
    assert_eq!(h.state().tools().radius_px, 1.0);

    dab(&mut h, [1.0, 1.0]);
    h.key_press(Key::D);
    h.step();
    wait_until(&mut h, |app| app.study().shown() == Some((0, 1)));
    dab(&mut h, [3.0, 2.0]);
    h.get_by_label_contains("2/3 slices annotated");

    h.key_press_modifiers(egui::Modifiers::COMMAND, Key::E);
    h.run_steps(2);
    h.get_by_label("NIfTI (one volume per series)").click();
    h.run_steps(1);
    let out = dir.path().join("out");
    h.state_mut().export_dialog_mut().folder = out.display().to_string();
    h.run_steps(1);
    h.get_by_label("Export").click();
    h.step();
    wait_until(&mut h, |app| {
        !app.export_dialog().running && app.session().is_some()
    });
    let summary = h.state().export_dialog().result.clone().unwrap().unwrap();
    assert_eq!(
        (summary.files, summary.failures.len()),
        (1, 0),
        "{}",
        summary.line()
    );

    let nii = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".nii.gz"))
        .expect("a NIfTI file");
    let labels = ReaderOptions::new()
        .read_file(&nii)
        .unwrap()
        .into_volume()
        .into_ndarray::<f32>()
        .unwrap();
    assert_eq!(labels.shape(), &[5, 4, 3]);
    assert_eq!(
        labels[[1, 1, 0]],
        1.0,
        "first slice, where the first dab went"
    );
    assert_eq!(labels[[3, 2, 1]], 1.0, "second slice");
    assert_eq!(labels[[3, 2, 0]], 0.0);
    assert_eq!(labels[[1, 1, 1]], 0.0);
    let third_slice_labelled = (0..5).any(|x| (0..4).any(|y| labels[[x, y, 2]] != 0.0));
    assert!(!third_slice_labelled, "third slice untouched");
}
