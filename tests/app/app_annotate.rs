//! Manual annotation through the real app (egui_kittest): open a generated PNG study, paint
//! with the pointer, undo and redo, move on with D, reopen the project and find the stroke,
//! export PNG masks that read back identically, and the annotated view as a snapshot.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::{Key, Modifiers, Pos2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use m2c::annotation::{Project, ProjectOptions};
use m2c::app::{LaunchOptions, M2cApp, overlay};
use m2c::engine::device::DevicePreference;
use m2c::study::LabelMap;

const W: u32 = 64;
const H: u32 = 48;

/// A study folder of two gray PNGs, `a.png` and `b.png`.
fn png_study(root: &Path) -> PathBuf {
    let study = root.join("study");
    std::fs::create_dir(&study).unwrap();
    for (name, shade) in [("a.png", 60u8), ("b.png", 120u8)] {
        image::GrayImage::from_fn(W, H, |x, y| {
            image::Luma([shade.saturating_add(((x + y) % 32) as u8)])
        })
        .save(study.join(name))
        .unwrap();
    }
    study
}

fn app_for(study: &Path, data: &Path) -> M2cApp {
    let mut app = M2cApp::new(LaunchOptions {
        paths: vec![study.to_path_buf()],
        weights: Some(PathBuf::from("missing-weights/model.safetensors")),
        device: DevicePreference::Cpu,
    });
    app.set_data_dir(Some(data.to_path_buf()));
    app
}

fn harness(app: M2cApp) -> Harness<'static, M2cApp> {
    Harness::builder()
        .with_size(egui::vec2(1100.0, 720.0))
        .build_ui_state(|ui, app: &mut M2cApp| app.frame_ui(ui), app)
}

/// Steps the UI until `done` holds (background discovery, decoding, project opening).
fn wait_until<S>(
    h: &mut Harness<'static, S>,
    app: impl Fn(&S) -> &M2cApp,
    done: impl Fn(&M2cApp) -> bool,
) {
    let start = Instant::now();
    while !done(app(h.state())) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "background work did not finish"
        );
        std::thread::sleep(Duration::from_millis(10));
        h.step();
    }
    h.run_steps(2);
}

fn ready(app: &M2cApp) -> bool {
    app.study().shown().is_some() && app.session().is_some()
}

/// Drags with the primary button through `points_image` (image pixels), one frame per point.
fn paint<S>(h: &mut Harness<'static, S>, app: impl Fn(&S) -> &M2cApp, points_image: &[[f32; 2]]) {
    let to_ui =
        |h: &Harness<'static, S>, p: [f32; 2]| -> Pos2 { app(h.state()).study().ui_from_image(p) };
    let first = to_ui(h, points_image[0]);
    h.hover_at(first);
    h.step();
    h.drag_at(first);
    h.step();
    for &p in &points_image[1..] {
        let at = to_ui(h, p);
        h.hover_at(at);
        h.step();
    }
    let last = to_ui(h, *points_image.last().unwrap());
    h.drop_at(last);
    h.step();
    h.run_steps(2);
}

fn label_map_of(app: &mut M2cApp, key: &str) -> LabelMap {
    let session = app.session_mut().expect("a project is open");
    let item = session
        .project
        .find_item(key)
        .expect("the slice is an item");
    session.project.label_map(item).unwrap()
}

fn labelled(map: &LabelMap) -> usize {
    map.labels.iter().filter(|&&v| v != 0).count()
}

#[test]
fn painting_undo_redo_next_image_and_reopening_keep_the_stroke() {
    let dir = tempfile::tempdir().unwrap();
    let study = png_study(dir.path());
    let mut h = harness(app_for(&study, &dir.path().join("data")));
    h.step();
    wait_until(&mut h, |a| a, ready);
    assert_eq!(h.state().study().shown(), Some((0, 0)));
    h.get_by_label_contains("All changes saved");

    paint(&mut h, |a| a, &[[10.0, 10.0], [20.0, 12.0], [30.0, 24.0]]);
    let painted = label_map_of(h.state_mut(), "a.png");
    assert!(
        labelled(&painted) > 100,
        "the drag painted {} pixels",
        labelled(&painted)
    );
    assert_eq!(painted.get(20, 12), Some(1), "label 1 under the stroke");
    assert_eq!(painted.get(60, 44), Some(0), "nothing far from it");
    assert!(
        h.state().session().unwrap().project.is_saved(),
        "the stroke is journaled at once"
    );
    h.get_by_label_contains("annotated");

    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run_steps(2);
    assert_eq!(
        labelled(&label_map_of(h.state_mut(), "a.png")),
        0,
        "one undo removes the whole drag"
    );

    h.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z);
    h.run_steps(2);
    assert_eq!(
        label_map_of(h.state_mut(), "a.png"),
        painted,
        "redo re-applies it"
    );

    h.key_press(Key::D);
    h.step();
    wait_until(&mut h, |a| a, |app| app.study().shown() == Some((1, 0)));
    h.key_press(Key::A);
    h.step();
    wait_until(&mut h, |a| a, |app| app.study().shown() == Some((0, 0)));

    let project_dir = h.state().session().unwrap().project.root().to_path_buf();
    assert_eq!(project_dir, Project::default_dir_for_study(&study));
    drop(h);
    let mut project = Project::open(&project_dir, ProjectOptions::default()).unwrap();
    let item = project.find_item("a.png").unwrap();
    assert_eq!(
        project.label_map(item).unwrap(),
        painted,
        "the stroke survived closing the app"
    );
}

#[test]
fn eraser_size_keys_and_label_keys_shape_the_stroke() {
    let dir = tempfile::tempdir().unwrap();
    let study = png_study(dir.path());
    let mut h = harness(app_for(&study, &dir.path().join("data")));
    h.step();
    wait_until(&mut h, |a| a, ready);
    let before = h.state().tools().radius_px;
    h.key_press(Key::CloseBracket);
    h.run_steps(1);
    assert!(h.state().tools().radius_px > before, "] grows the brush");
    h.key_press(Key::OpenBracket);
    h.run_steps(1);
    assert_eq!(h.state().tools().radius_px, before, "[ shrinks it back");

    // A second label, selected with key 2.
    h.get_by_label("Add label").click();
    h.run_steps(2);
    h.key_press(Key::Num1);
    h.run_steps(1);
    assert_eq!(h.state().tools().class, 1);
    h.key_press(Key::Num2);
    h.run_steps(1);
    assert_eq!(h.state().tools().class, 2);
    paint(&mut h, |a| a, &[[32.0, 24.0], [33.0, 24.0]]);
    assert_eq!(label_map_of(h.state_mut(), "a.png").get(32, 24), Some(2));

    h.key_press(Key::E);
    h.run_steps(1);
    paint(&mut h, |a| a, &[[32.0, 24.0], [33.0, 24.0]]);
    assert_eq!(
        labelled(&label_map_of(h.state_mut(), "a.png")),
        0,
        "the eraser removed it"
    );
}

#[test]
fn export_writes_png_masks_that_read_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    let study = png_study(dir.path());
    let mut h = harness(app_for(&study, &dir.path().join("data")));
    h.step();
    wait_until(&mut h, |a| a, ready);
    paint(&mut h, |a| a, &[[5.0, 5.0], [40.0, 30.0]]);
    let painted = label_map_of(h.state_mut(), "a.png");

    h.key_press_modifiers(Modifiers::COMMAND, Key::E);
    h.run_steps(2);
    h.get_by_label("Write label values (else 0/255)").click();
    h.run_steps(1);
    let out = dir.path().join("masks");
    h.state_mut().export_dialog_mut().folder = out.display().to_string();
    h.run_steps(1);
    h.get_by_label("Export").click();
    h.step();
    wait_until(
        &mut h,
        |a| a,
        |app| !app.export_dialog().running && app.session().is_some(),
    );
    let summary = h.state().export_dialog().result.clone().unwrap().unwrap();
    assert_eq!(summary.files, 2, "{}", summary.line());
    assert!(
        h.query_all_by_label_contains("Wrote 2 files").count() >= 1,
        "summary in the dialog"
    );

    let back = m2c::study::read_mask_png(&out.join("a.png")).unwrap();
    assert_eq!(back, painted);
    let empty = m2c::study::read_mask_png(&out.join("b.png")).unwrap();
    assert_eq!(labelled(&empty), 0);
    assert!(out.join("m2c_masks.json").is_file(), "provenance sidecar");
}

#[test]
fn a_read_only_study_is_annotated_in_the_data_folder() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let study = png_study(dir.path());
    std::fs::set_permissions(&study, std::fs::Permissions::from_mode(0o555)).unwrap();
    let data = dir.path().join("data");
    let mut h = harness(app_for(&study, &data));
    h.step();
    wait_until(&mut h, |a| a, ready);
    let root = h.state().session().unwrap().project.root().to_path_buf();
    assert!(root.starts_with(&data), "{root:?}");
    assert!(!Project::default_dir_for_study(&study).exists());
    h.get_by_label_contains("read-only");
    std::fs::set_permissions(&study, std::fs::Permissions::from_mode(0o755)).unwrap();
}

struct Windowed(M2cApp);

impl eframe::App for Windowed {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.0.frame_ui(ui);
    }
}

#[test]
fn annotated_view_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let study = png_study(dir.path());
    let data = dir.path().join("data");
    let mut h = Harness::builder()
        .with_size(egui::vec2(1100.0, 720.0))
        .with_pixels_per_point(1.0)
        .wgpu()
        .build_eframe(|cc| {
            let rs = cc
                .wgpu_render_state
                .as_ref()
                .expect("kittest provides a wgpu render state");
            overlay::register(rs);
            let app = app_for(&study, &data);
            app.start_environment_probe(None);
            Windowed(app)
        });
    h.step();
    wait_until(
        &mut h,
        |w| &w.0,
        |app| ready(app) && *app.model_status() != m2c::app::ModelStatus::Detecting,
    );
    paint(&mut h, |w| &w.0, &[[8.0, 8.0], [24.0, 20.0], [40.0, 16.0]]);
    h.hover_at(h.state().0.study().ui_from_image([50.0, 36.0]));
    h.run_steps(3);
    h.snapshot("annotated_view");
}

#[test]
fn nifti_export_writes_one_volume_per_series() {
    let dir = tempfile::tempdir().unwrap();
    let study = png_study(dir.path());
    let mut h = harness(app_for(&study, &dir.path().join("data")));
    h.step();
    wait_until(&mut h, |a| a, ready);
    paint(&mut h, |a| a, &[[10.0, 10.0], [12.0, 10.0]]);
    h.key_press_modifiers(Modifiers::COMMAND, Key::E);
    h.run_steps(2);
    h.get_by_label("NIfTI (one volume per series)").click();
    h.run_steps(1);
    let out = dir.path().join("nifti");
    h.state_mut().export_dialog_mut().folder = out.display().to_string();
    h.run_steps(1);
    h.get_by_label("Export").click();
    h.step();
    wait_until(
        &mut h,
        |a| a,
        |app| !app.export_dialog().running && app.session().is_some(),
    );
    let summary = h.state().export_dialog().result.clone().unwrap().unwrap();
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    assert_eq!(summary.files, 2, "each PNG is its own series");
    assert!(out.join("a_labels.nii.gz").is_file());
    assert!(
        out.join("a_labels.json").is_file(),
        "sidecar with label names"
    );
    // The app is still usable after the export: the session came back.
    paint(&mut h, |a| a, &[[40.0, 40.0], [41.0, 40.0]]);
    assert_eq!(label_map_of(h.state_mut(), "a.png").get(40, 40), Some(1));
}

#[test]
fn a_project_locked_by_another_window_is_shown_read_only_and_the_app_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let study = png_study(dir.path());
    let data = dir.path().join("data");
    let mut first = harness(app_for(&study, &data));
    first.step();
    wait_until(&mut first, |a| a, ready);
    paint(&mut first, |a| a, &[[40.0, 40.0], [41.0, 40.0]]);
    let painted = label_map_of(first.state_mut(), "a.png");
    assert!(labelled(&painted) > 0, "the first window's stroke landed");
    let session = first.state_mut().session_mut().expect("a project is open");
    session
        .project
        .flush()
        .expect("the first window saves its stroke");

    // The second window on the same study: the project is shown, read-only, and it says why.
    let mut second = harness(app_for(&study, &data));
    second.step();
    wait_until(
        &mut second,
        |a| a,
        |app| app.study().shown().is_some() && app.session().is_some(),
    );
    let reason = second
        .state()
        .session()
        .and_then(|s| s.project.read_only_reason().map(str::to_owned))
        .expect("the second window holds the project read-only");
    assert!(reason.contains("another M2C window"), "{reason}");
    second.get_by_label("Read-only: the project is open in another window");
    second.get_by_label("Read-only project");
    assert!(
        second
            .state()
            .toasts()
            .texts()
            .any(|t| t.contains("refuses edits")),
        "a toast says edits are refused here"
    );
    // It shows the first window's work.
    assert_eq!(label_map_of(second.state_mut(), "a.png"), painted);

    // Painting there changes nothing, here or on disk, and nothing panics.
    paint(&mut second, |a| a, &[[10.0, 10.0], [20.0, 10.0]]);
    assert_eq!(label_map_of(second.state_mut(), "a.png"), painted);
    assert_eq!(label_map_of(first.state_mut(), "a.png"), painted);
    second.key_press(Key::D);
    second.step();
    wait_until(
        &mut second,
        |a| a,
        |app| app.study().shown() == Some((1, 0)),
    );
    // The first window still edits.
    paint(&mut first, |a| a, &[[10.0, 10.0], [11.0, 10.0]]);
    assert_eq!(
        label_map_of(first.state_mut(), "a.png").get(10, 10),
        Some(1)
    );
}

#[test]
fn renaming_and_recolouring_a_label_is_saved_in_the_project() {
    let dir = tempfile::tempdir().unwrap();
    let study = png_study(dir.path());
    let mut h = harness(app_for(&study, &dir.path().join("data")));
    h.step();
    wait_until(&mut h, |a| a, ready);
    let name = h.get_by_role_and_label(egui::accesskit::Role::TextInput, "Name");
    name.focus();
    name.type_text(" (lesion)");
    h.run_steps(1);
    // Keys typed into the field must not trigger single-key shortcuts (E = eraser).
    h.key_press(Key::E);
    h.run_steps(1);
    assert_eq!(h.state().tools().kind, m2c::app::tools::ToolKind::Brush);
    h.key_press(Key::Enter);
    h.run_steps(2);
    h.get_by_label("Colour 3").click();
    h.run_steps(2);
    let class = h
        .state()
        .session()
        .unwrap()
        .project
        .class(1)
        .cloned()
        .unwrap();
    assert!(class.name.ends_with("(lesion)"), "{:?}", class.name);
    assert_eq!(class.colour, m2c::app::session::CLASS_COLOURS[2]);
}
