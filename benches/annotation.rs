//! Annotation store benchmarks: a brush stamp on a 2048 × 2048 mask (target < 1 ms), a whole
//! drag committed to the journal, and opening a 1 000-image project (target < 1 s; masks load
//! lazily).
//!
//! Run: `cargo bench --bench annotation`.

use std::path::Path;

use m2c::annotation::{Brush, ImageSize, LabelClass, Mask, Project, ProjectOptions};

fn main() {
    divan::main();
}

const RADII_PX: [f32; 3] = [8.0, 32.0, 128.0];

/// One round stamp on the raw mask.
#[divan::bench(args = RADII_PX)]
fn stamp_2048(bencher: divan::Bencher, radius_px: f32) {
    let Some(size) = ImageSize::new(2048, 2048) else {
        return;
    };
    let mut mask = Mask::empty(size);
    let mut x = 100.0f32;
    bencher.bench_local(|| {
        x = if x > 1900.0 { 100.0 } else { x + 1.0 };
        mask.stamp_disc(divan::black_box([x, 1024.0]), radius_px, 1);
    });
}

/// One pointer move of a quarter radius during a drag (one stamp plus the undo bookkeeping),
/// as the app sees it.
#[divan::bench(args = RADII_PX)]
fn stroke_move_2048(bencher: divan::Bencher, radius_px: f32) {
    let Ok(dir) = tempfile::tempdir() else { return };
    let Some(mut project) = project_with_items(dir.path(), 1, 2048) else {
        return;
    };
    let Some(item) = project.find_item("img-0") else {
        return;
    };
    let brush = Brush {
        radius_px,
        erase: false,
    };
    if project.begin_stroke(item, 1, brush).is_err() {
        return;
    }
    let mut x = 100.0f32;
    bencher.bench_local(|| {
        x = if x > 1900.0 {
            100.0
        } else {
            x + radius_px * 0.25
        };
        let _ = project.stroke_to(divan::black_box([x, 1024.0]));
    });
    let _ = project.end_stroke();
}

/// A whole drag committed: 20 pointer moves of a 32-pixel brush, then `end_stroke` (undo step,
/// journal record, fsync). This is what the UI thread waits for when the pointer is released.
#[divan::bench(sample_count = 50)]
fn drag_commit_2048(bencher: divan::Bencher) {
    let Ok(dir) = tempfile::tempdir() else { return };
    let Some(mut project) = project_with_items(dir.path(), 1, 2048) else {
        return;
    };
    let Some(item) = project.find_item("img-0") else {
        return;
    };
    let brush = Brush {
        radius_px: 32.0,
        erase: false,
    };
    let mut y = 100.0f32;
    bencher.bench_local(|| {
        y = if y > 1900.0 { 100.0 } else { y + 40.0 };
        let _ = project.begin_stroke(item, 1, brush);
        for step in 0..20 {
            let _ = project.stroke_to([100.0 + 40.0 * step as f32, y]);
        }
        let _ = project.end_stroke();
    });
}

/// Opening a project of 1 000 images of 512 × 512 pixels, each with a saved mask.
#[divan::bench(sample_count = 20)]
fn open_1000_images(bencher: divan::Bencher) {
    let Ok(dir) = tempfile::tempdir() else { return };
    let Some(mut project) = project_with_items(dir.path(), 1000, 512) else {
        return;
    };
    let brush = Brush {
        radius_px: 20.0,
        erase: false,
    };
    let ids: Vec<_> = project.items().iter().map(|i| i.key().to_owned()).collect();
    for key in &ids {
        let Some(item) = project.find_item(key) else {
            return;
        };
        if project.begin_stroke(item, 1, brush).is_err()
            || project.stroke_to([256.0, 256.0]).is_err()
            || project.end_stroke().is_err()
        {
            return;
        }
    }
    if project.save().is_err() {
        return;
    }
    drop(project);
    bencher.bench_local(|| Project::open(dir.path(), ProjectOptions::default()).ok());
}

fn project_with_items(dir: &Path, count: usize, side: u32) -> Option<Project> {
    let mut project = Project::create(dir, None, ProjectOptions::default()).ok()?;
    project
        .set_class(LabelClass {
            value: 1,
            name: "lesion".into(),
            colour: [255, 0, 0],
            concept: None,
        })
        .ok()?;
    let keys: Vec<String> = (0..count).map(|i| format!("img-{i}")).collect();
    project
        .add_items(keys.iter().map(|k| (k.as_str(), side, side)))
        .ok()?;
    Some(project)
}
