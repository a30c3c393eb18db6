//! Annotating a DICOM series through the real app: slices of one series are separate items,
//! D moves within the series, the NIfTI export stacks the slices on the series' grid, and a
//! DICOM SEG exported from the dialog comes back by drag-and-drop, while File → Import labels…
//! refuses masks of the wrong size with the file named.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::dicom_gen;
use crate::labels;

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

#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn labels_of_first_slice(h: &mut Harness<'static, M2cApp>) -> Vec<u16> {
    let session = h.state_mut().session_mut().unwrap();
    let item = session.item_at(0, 0).unwrap();
    session.project.label_map(item).unwrap().labels
}

#[test]
fn a_seg_exported_from_the_dialog_comes_back_by_drag_and_drop() {
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("ct");
    labels::ct_study(
        &study,
        "1.2.826.0.1.3680043.10.543.70",
        4,
        16,
        12,
        labels::oblique(),
    );
    let mut h = harness(&study);
    h.step();
    wait_until(&mut h, |app| {
        app.study().shown().is_some() && app.session().is_some()
    });
    dab(&mut h, [5.0, 5.0]);
    let painted = labels_of_first_slice(&mut h);
    assert!(painted.contains(&1));

    h.key_press_modifiers(egui::Modifiers::COMMAND, Key::E);
    h.run_steps(2);
    h.get_by_label("DICOM SEG (one per DICOM series)").click();
    h.run_steps(1);
    let out = dir.path().join("seg");
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
    let seg = summary.written[0].clone();

    // Undo the stroke, then drop the SEG on the window: the mask comes back, as labelled work.
    h.key_press_modifiers(egui::Modifiers::COMMAND, Key::Z);
    h.run_steps(2);
    assert!(!labels_of_first_slice(&mut h).contains(&1));
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(seg.clone())));
    h.step();
    wait_until(&mut h, |app| {
        !app.import_dialog().running && app.session().is_some()
    });
    let result = h.state().import_dialog().result.clone().unwrap();
    let summary = result.unwrap();
    assert_eq!(summary.masks, 1, "{}", summary.line());
    assert_eq!(labels_of_first_slice(&mut h), painted);
    assert_eq!(
        h.state().opened(),
        std::slice::from_ref(&study),
        "the SEG did not open as a study"
    );
    let session = h.state().session().unwrap();
    let state = session
        .project
        .item(session.item_at(0, 0).unwrap())
        .unwrap()
        .state();
    assert_eq!(state, m2c::annotation::ReviewState::Corrected);

    // File → Import labels… with a PNG of the wrong size: refused in the dialog, app usable.
    let pngs = dir.path().join("pngs");
    std::fs::create_dir(&pngs).unwrap();
    image::GrayImage::from_pixel(10, 10, image::Luma([255u8]))
        .save(pngs.join("ct002.png"))
        .unwrap();
    h.key_press_modifiers(egui::Modifiers::COMMAND, Key::I);
    h.run_steps(2);
    h.state_mut().import_dialog_mut().path = pngs.display().to_string();
    h.run_steps(1);
    h.get_by_label("Import").click();
    h.step();
    wait_until(&mut h, |app| {
        !app.import_dialog().running && app.session().is_some()
    });
    let err = h
        .state()
        .import_dialog()
        .result
        .clone()
        .unwrap()
        .unwrap_err();
    assert!(err.contains("ct002.png") && err.contains("10x10"), "{err}");
    assert!(
        h.query_all_by_label_contains("Import failed").count() >= 2,
        "in the dialog and as a toast"
    );
    assert_eq!(labels_of_first_slice(&mut h), painted);
}
