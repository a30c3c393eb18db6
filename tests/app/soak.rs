//! Soak run through the real app (egui_kittest, tiny random-weight SAM3 on the CPU): strokes,
//! undo and redo, image changes, exports and learn/predict cycles for ten minutes, measuring
//! every frame and the resident memory. A figure for the notes, not a CI test (ignored):
//!
//! ```text
//! cargo test --test app soak -- --ignored --nocapture
//! ```
//!
//! `M2C_SOAK_SECS` (default 600) and `M2C_SOAK_STROKES` (default 10 000) set the length: it
//! runs until both are reached (at most three times the seconds). It fails when the resident
//! memory at the end exceeds the memory after the first minute by more than 10 %, or when a
//! frame after that first minute took over 100 ms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::{Key, Modifiers, Pos2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use m2c::app::learning::{Activity, EngineStatus};
use m2c::app::{LaunchOptions, M2cApp};
use m2c::engine::device::{DevicePreference, plan_for};

/// Six RGB PNGs with a bright disc each.
fn study(root: &Path) -> PathBuf {
    let study = root.join("study");
    std::fs::create_dir(&study).unwrap();
    for k in 0..6u32 {
        let (w, h) = (160 + 8 * k, 120 + 4 * k);
        let (cx, cy, r) = (w as f32 * 0.45, h as f32 * 0.5, 20.0 + k as f32);
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

/// Resident memory of this process (kB), from /proc.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Frame times, split at the end of the warm-up.
struct Frames {
    begun: Instant,
    warm_up: Duration,
    after: Vec<Duration>,
    during_warm_up: usize,
}

impl Frames {
    fn step(&mut self, h: &mut Harness<'static, M2cApp>) {
        let t = Instant::now();
        h.step();
        let took = t.elapsed();
        if self.begun.elapsed() > self.warm_up {
            self.after.push(took);
        } else {
            self.during_warm_up += 1;
        }
    }
}

/// xorshift64*: deterministic stroke positions.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Undo steps held and the bytes they take (the history keeps up to its budget by design).
fn undo_bytes(app: &M2cApp) -> (usize, usize) {
    app.session().map_or((0, 0), |s| s.project.undo_steps())
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
#[ignore = "a ten-minute soak for the notes; run with --ignored"]
fn soak_strokes_undo_slices_exports_and_learning() {
    let secs = env_u64("M2C_SOAK_SECS", 600);
    let target_strokes = env_u64("M2C_SOAK_STROKES", 10_000);
    let dir = tempfile::tempdir().unwrap();
    let weights = common::tiny_checkpoint(dir.path()).expect("the tiny fixtures");
    let mut app = M2cApp::new(LaunchOptions {
        paths: vec![study(dir.path())],
        weights: None,
        device: DevicePreference::Cpu,
    });
    app.set_data_dir(Some(dir.path().join("data")));
    app.load_model(weights, plan_for(DevicePreference::Cpu));
    let mut h = Harness::builder()
        .with_size(egui::vec2(1100.0, 720.0))
        .build_ui_state(|ui, app: &mut M2cApp| app.frame_ui(ui), app);
    h.step();
    let start = Instant::now();
    while !(h.state().study().shown().is_some()
        && h.state().session().is_some()
        && matches!(h.state().learning().status, EngineStatus::Ready { .. }))
    {
        assert!(start.elapsed() < Duration::from_secs(300), "never ready");
        std::thread::sleep(Duration::from_millis(5));
        h.step();
    }

    let mut frames = Frames {
        begun: Instant::now(),
        warm_up: Duration::from_secs(60.min(secs / 10 + 1)),
        after: Vec::new(),
        during_warm_up: 0,
    };
    let mut rng = Rng(0x50a4_2026_1206_0001);
    let (mut strokes, mut undos, mut redos, mut slides, mut exports, mut learns) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut rss_after_warm_up = None;
    let mut undo_after_warm_up = (0, 0);
    let out = dir.path().join("export");
    let begun = Instant::now();
    while strokes < target_strokes || begun.elapsed() < Duration::from_secs(secs) {
        assert!(
            begun.elapsed() < Duration::from_secs(3 * secs.max(60)),
            "the soak is far too slow: {strokes} strokes in {:?}",
            begun.elapsed()
        );
        if rss_after_warm_up.is_none() && begun.elapsed() > frames.warm_up {
            rss_after_warm_up = Some(rss_kib());
            undo_after_warm_up = undo_bytes(h.state());
        }
        // One stroke of three points somewhere on the image.
        let (w, hgt) = (150.0, 110.0);
        let p0 = [5.0 + rng.unit() * w, 5.0 + rng.unit() * hgt];
        let pts = [p0, [p0[0] + 6.0, p0[1] + 3.0], [p0[0] + 9.0, p0[1] - 2.0]];
        let to_ui = |h: &Harness<'static, M2cApp>, p: [f32; 2]| -> Pos2 {
            h.state().study().ui_from_image(p)
        };
        let first = to_ui(&h, pts[0]);
        h.hover_at(first);
        frames.step(&mut h);
        h.drag_at(first);
        frames.step(&mut h);
        for p in &pts[1..] {
            let at = to_ui(&h, *p);
            h.hover_at(at);
            frames.step(&mut h);
        }
        h.drop_at(to_ui(&h, pts[2]));
        frames.step(&mut h);
        strokes += 1;

        if strokes % 7 == 0 {
            h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
            frames.step(&mut h);
            undos += 1;
        }
        if strokes % 14 == 0 {
            h.key_press_modifiers(Modifiers::COMMAND, Key::Y);
            frames.step(&mut h);
            redos += 1;
        }
        if strokes % 25 == 0 {
            h.key_press(if strokes % 50 == 0 { Key::A } else { Key::D });
            frames.step(&mut h);
            slides += 1;
        }
        if strokes % 1_000 == 0 {
            h.state_mut().export_dialog_mut().open = true;
            frames.step(&mut h);
            h.state_mut().export_dialog_mut().folder = out.display().to_string();
            frames.step(&mut h);
            h.get_by_label("Export").click();
            frames.step(&mut h);
            while h.state().export_dialog().running || h.state().session().is_none() {
                std::thread::sleep(Duration::from_millis(2));
                frames.step(&mut h);
            }
            let result = h.state().export_dialog().result.clone();
            assert!(
                matches!(result, Some(Ok(_))),
                "export {exports} failed: {result:?}"
            );
            h.state_mut().export_dialog_mut().open = false;
            frames.step(&mut h);
            exports += 1;
        }
        if strokes % 2_500 == 0 {
            h.key_press(Key::L);
            frames.step(&mut h);
            let t = Instant::now();
            while h.state().learning().activity() != Activity::Idle {
                assert!(
                    t.elapsed() < Duration::from_secs(600),
                    "learning never ends"
                );
                std::thread::sleep(Duration::from_millis(2));
                frames.step(&mut h);
            }
            learns += 1;
        }
    }
    let elapsed = begun.elapsed();
    let rss_end = rss_kib();
    let rss_warm = rss_after_warm_up.unwrap_or(rss_end);
    let mut after = frames.after.clone();
    after.sort();
    let pct = |q: f64| {
        after
            .get(((after.len() as f64 * q) as usize).min(after.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let max = after.last().map_or(0.0, |d| d.as_secs_f64() * 1e3);
    let over = after
        .iter()
        .filter(|d| **d > Duration::from_millis(100))
        .count();
    eprintln!(
        "soak: {:.0} s, {strokes} strokes, {undos} undos, {redos} redos, {slides} image changes, \
         {exports} exports, {learns} learn/predict cycles",
        elapsed.as_secs_f64()
    );
    eprintln!(
        "soak: RSS {} MiB after the {} s warm-up, {} MiB at the end ({:+.1} %)",
        rss_warm / 1024,
        frames.warm_up.as_secs(),
        rss_end / 1024,
        (rss_end as f64 / rss_warm.max(1) as f64 - 1.0) * 100.0
    );
    let undo_end = undo_bytes(h.state());
    eprintln!(
        "soak: undo history {} steps / {} KiB after warm-up, {} steps / {} KiB at the end",
        undo_after_warm_up.0,
        undo_after_warm_up.1 / 1024,
        undo_end.0,
        undo_end.1 / 1024
    );
    eprintln!(
        "soak: {} frames after warm-up ({} during it): median {:.2} ms, p99 {:.2} ms, max {max:.2} \
         ms, {over} over 100 ms",
        after.len(),
        frames.during_warm_up,
        pct(0.5),
        pct(0.99)
    );
    assert!(
        rss_end as f64 <= rss_warm as f64 * 1.10,
        "resident memory grew more than 10 %"
    );
    assert_eq!(
        over, 0,
        "frames over 100 ms after warm-up (max {max:.1} ms)"
    );
}
