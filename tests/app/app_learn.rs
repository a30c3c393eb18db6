//! Learning and review through the real app (egui_kittest) with the tiny random-weight SAM3 on
//! the CPU: paint one image, L learns the concept and predicts the others (flagged or
//! auto-accepted, each with a HUE score), Shift+D walks the review queue from the most
//! uncertain image, Enter accepts and starts a warm re-search after the debounce, Esc rejects
//! a prediction, Cancel stops a search; the UI keeps drawing throughout (frame times printed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::{Key, Modifiers, Pos2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use m2c::annotation::ReviewState;
use m2c::app::learning::{Activity, EngineStatus};
use m2c::app::{LaunchOptions, M2cApp};
use m2c::engine::device::{DevicePreference, plan_for};

/// A study of four RGB PNGs with a bright disc each.
fn study(root: &Path) -> PathBuf {
    let study = root.join("study");
    std::fs::create_dir(&study).unwrap();
    for k in 0..4u32 {
        let (w, h) = (80 + 8 * k, 60 + 4 * k);
        let (cx, cy, r) = (w as f32 * 0.45, h as f32 * 0.5, 12.0 + k as f32);
        image::RgbImage::from_fn(w, h, |x, y| {
            if (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) <= r * r {
                image::Rgb([235, 110, 100])
            } else {
                image::Rgb([((x * 7 + y * 3) % 200) as u8, ((y * 5) % 180) as u8, 70])
            }
        })
        .save(study.join(format!("img{k}.png")))
        .unwrap();
    }
    study
}

fn harness(app: M2cApp) -> Harness<'static, M2cApp> {
    Harness::builder()
        .with_size(egui::vec2(1100.0, 720.0))
        .build_ui_state(|ui, app: &mut M2cApp| app.frame_ui(ui), app)
}

/// Steps the UI until `done` holds; returns each step's duration.
fn wait_until(
    h: &mut Harness<'static, M2cApp>,
    what: &str,
    done: impl Fn(&M2cApp) -> bool,
) -> Vec<Duration> {
    let start = Instant::now();
    let mut frames = Vec::new();
    while !done(h.state()) {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
        let t = Instant::now();
        h.step();
        frames.push(t.elapsed());
    }
    h.run_steps(2);
    frames
}

fn state_of(app: &M2cApp, key: &str) -> ReviewState {
    let s = app.session().unwrap();
    let item = s.project.find_item(key).unwrap();
    s.project.item(item).unwrap().state()
}

fn shown_key(app: &M2cApp) -> String {
    let (series, index) = app.study().shown().unwrap();
    let s = app.session().unwrap();
    let item = s.item_at(series, index).unwrap();
    s.project.item(item).unwrap().key().to_owned()
}

fn paint_disc(h: &mut Harness<'static, M2cApp>) {
    let to_ui =
        |h: &Harness<'static, M2cApp>, p: [f32; 2]| -> Pos2 { h.state().study().ui_from_image(p) };
    let points = [[30.0f32, 30.0], [36.0, 28.0], [42.0, 32.0], [36.0, 34.0]];
    let first = to_ui(h, points[0]);
    h.hover_at(first);
    h.step();
    h.drag_at(first);
    h.step();
    for p in &points[1..] {
        let at = to_ui(h, *p);
        h.hover_at(at);
        h.step();
    }
    let last = to_ui(h, points[3]);
    h.drop_at(last);
    h.run_steps(3);
}

fn p99_ms(frames: &mut [Duration]) -> f64 {
    frames.sort();
    let i = ((frames.len() as f64 * 0.99).ceil() as usize).clamp(1, frames.len()) - 1;
    frames[i].as_secs_f64() * 1e3
}

#[test]
fn learn_predict_review_accept_and_reject() {
    let dir = tempfile::tempdir().unwrap();
    let Some(weights) = common::tiny_checkpoint(dir.path()) else {
        return;
    };
    let study = study(dir.path());
    let mut app = M2cApp::new(LaunchOptions {
        paths: vec![study],
        weights: None,
        device: DevicePreference::Cpu,
    });
    app.set_data_dir(Some(dir.path().join("data")));
    app.load_model(weights, plan_for(DevicePreference::Cpu));
    let mut h = harness(app);
    h.step();
    wait_until(&mut h, "the study, the project and SAM3", |a| {
        a.study().shown().is_some()
            && a.session().is_some()
            && matches!(a.learning().status, EngineStatus::Ready { .. })
    });
    h.get_by_label_contains("SAM3 ready");

    // L without any label: a message, no job
    h.key_press(Key::L);
    h.run_steps(2);
    assert_eq!(h.state().learning().activity(), Activity::Idle);
    assert!(
        h.state()
            .toasts()
            .texts()
            .any(|t| t.contains("at least one image")),
        "{:?}",
        h.state().toasts().texts().collect::<Vec<_>>()
    );

    paint_disc(&mut h);
    assert_eq!(state_of(h.state(), "img0.png"), ReviewState::Corrected);
    h.key_press(Key::L);
    h.step();
    assert!(matches!(
        h.state().learning().activity(),
        Activity::Learning { class: 1, .. }
    ));
    let mut frames = wait_until(&mut h, "learning and prediction", |a| {
        a.learning().activity() == Activity::Idle && a.learning().concept(1).is_some()
    });
    eprintln!(
        "UI frames while learning and predicting: {} frames, p99 {:.2} ms, max {:.2} ms",
        frames.len(),
        p99_ms(&mut frames),
        frames.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
    );
    let counts = h.state().review_counts();
    eprintln!("after learning: {counts:?}");
    assert_eq!(counts.accepted, 1, "{counts:?}");
    assert_eq!(counts.flagged + counts.auto_accepted, 3, "{counts:?}");
    assert_eq!(counts.unlabelled, 0, "{counts:?}");
    // every prediction carries its HUE score; the concept file was saved in the project
    for k in 1..4 {
        let s = h.state().session().unwrap();
        let item = s.project.find_item(&format!("img{k}.png")).unwrap();
        let hue = s.project.item(item).unwrap().hue().expect("a HUE score");
        assert!((0.0..=3.0).contains(&hue), "{hue}");
    }
    let concept = h
        .state()
        .session()
        .unwrap()
        .project
        .class(1)
        .unwrap()
        .concept
        .clone();
    assert!(concept.expect("the label links its concept").is_file());
    h.get_by_label_contains("1 accepted");

    let queue = h.state().review_queue();
    if queue.is_empty() {
        // the random model found everything easy: nothing to review
        return;
    }
    // Shift+D shows the most uncertain image first
    h.key_press_modifiers(Modifiers::SHIFT, Key::D);
    wait_until(&mut h, "the flagged image", |a| {
        a.study()
            .shown()
            .is_some_and(|(s, i)| a.session().unwrap().item_at(s, i) == Some(queue[0]))
    });
    let first = shown_key(h.state());
    // Esc rejects the prediction: unlabelled, masks cleared
    h.key_press(Key::Escape);
    h.run_steps(2);
    assert_eq!(state_of(h.state(), &first), ReviewState::Unlabelled);
    assert!(!h.state().review_queue().contains(&queue[0]));

    if let Some(&second) = h.state().review_queue().first() {
        h.key_press_modifiers(Modifiers::SHIFT, Key::D);
        wait_until(&mut h, "the next flagged image", |a| {
            a.study()
                .shown()
                .is_some_and(|(s, i)| a.session().unwrap().item_at(s, i) == Some(second))
        });
        let key = shown_key(h.state());
        // Enter accepts; after the debounce a warm re-search starts by itself
        h.key_press(Key::Enter);
        h.run_steps(2);
        assert_eq!(state_of(h.state(), &key), ReviewState::Accepted);
        wait_until(&mut h, "the automatic re-search", |a| {
            matches!(a.learning().activity(), Activity::Learning { .. })
        });
        // Cancel stops it; the previous concept stays
        h.get_by_label("Cancel").click();
        wait_until(&mut h, "the cancelled search to end", |a| {
            a.learning().activity() == Activity::Idle
        });
        assert!(h.state().learning().concept(1).is_some());
        eprintln!("accept, re-search and cancel exercised");
    }
}

/// Opens the study with SAM3 loaded; returns the harness once everything is ready.
fn ready_app(dir: &Path) -> Option<Harness<'static, M2cApp>> {
    let weights = common::tiny_checkpoint(dir)?;
    let study = study(dir);
    let mut app = M2cApp::new(LaunchOptions {
        paths: vec![study],
        weights: None,
        device: DevicePreference::Cpu,
    });
    app.set_data_dir(Some(dir.join("data")));
    app.load_model(weights, plan_for(DevicePreference::Cpu));
    let mut h = harness(app);
    h.step();
    wait_until(&mut h, "the study, the project and SAM3", |a| {
        a.study().shown().is_some()
            && a.session().is_some()
            && matches!(a.learning().status, EngineStatus::Ready { .. })
    });
    Some(h)
}

fn labelled_pixels(app: &mut M2cApp, key: &str) -> Vec<(u32, u32)> {
    let session = app.session_mut().unwrap();
    let item = session.project.find_item(key).unwrap();
    let map = session.project.label_map(item).unwrap();
    (0..map.height)
        .flat_map(|y| (0..map.width).map(move |x| (x, y)))
        .filter(|&(x, y)| map.get(x, y).is_some_and(|v| v != 0))
        .collect()
}

#[test]
fn the_box_tool_adds_one_object_inside_the_box() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut h) = ready_app(dir.path()) else {
        return;
    };
    h.key_press(Key::W);
    h.step();
    let to_ui = |h: &Harness<'static, M2cApp>, p: [f32; 2]| h.state().study().ui_from_image(p);
    let (a, b) = ([20.0f32, 15.0], [60.0f32, 45.0]);
    h.hover_at(to_ui(&h, a));
    h.step();
    h.drag_at(to_ui(&h, a));
    h.step();
    h.hover_at(to_ui(&h, [40.0, 30.0]));
    h.step();
    h.hover_at(to_ui(&h, b));
    h.step();
    h.drop_at(to_ui(&h, b));
    h.step();
    let is_result = |t: &str| t.contains("Segmented with") || t.contains("Nothing was found");
    wait_until(&mut h, "the box result", |a| {
        a.toasts().texts().any(is_result)
    });
    let toast = h
        .state()
        .toasts()
        .texts()
        .find(|t| is_result(t))
        .unwrap()
        .to_owned();
    eprintln!("box result: {toast}");
    let pixels = labelled_pixels(h.state_mut(), "img0.png");
    if toast.contains("Nothing was found") {
        assert!(pixels.is_empty(), "{toast}");
    } else {
        assert!(toast.contains("Segmented with SAM3 detector"), "{toast}");
        assert!(!pixels.is_empty(), "{toast}");
        // only inside the drawn box
        assert!(
            pixels
                .iter()
                .all(|&(x, y)| (20..60).contains(&x) && (15..45).contains(&y)),
            "{pixels:?}"
        );
        assert_eq!(state_of(h.state(), "img0.png"), ReviewState::Corrected);
        // one undo step
        h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
        h.run_steps(2);
        assert!(labelled_pixels(h.state_mut(), "img0.png").is_empty());
    }
}

#[test]
fn heatmap_legend_and_settings_dialog_open_from_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut h) = ready_app(dir.path()) else {
        return;
    };
    // U without a prediction: the legend area says how to get one
    h.key_press(Key::U);
    h.run_steps(2);
    assert!(h.state().learning().heatmap);
    h.get_by_label_contains("No uncertainty map for this image");
    paint_disc(&mut h);
    h.key_press(Key::L);
    wait_until(&mut h, "learning and prediction", |a| {
        a.learning().activity() == Activity::Idle && a.learning().concept(1).is_some()
    });
    // a predicted image has its map: the legend shows the scale
    h.key_press(Key::D);
    wait_until(&mut h, "the next image", |a| {
        a.study().shown() == Some((1, 0))
    });
    h.get_by_label_contains("Uncertainty (HUE)");
    // Ctrl+, opens Settings on the settings in effect; Cancel keeps them
    h.key_press_modifiers(Modifiers::COMMAND, Key::Comma);
    h.run_steps(2);
    h.get_by_label(m2c::app::settings::APPLY);
    h.get_by_label("Cancel").click();
    h.run_steps(2);
    assert!(h.query_by_label(m2c::app::settings::APPLY).is_none());
    assert!(matches!(
        h.state().learning().status,
        EngineStatus::Ready { .. }
    ));
}
