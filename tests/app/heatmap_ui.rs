//! The HUE uncertainty heatmap (`shaders/heatmap.wgsl` through an egui_wgpu paint callback) and
//! its legend, rendered headless on wgpu (lavapipe in CI). A horizontal probability ramp must
//! come out as `colormap(uncertainty(p))` blended with the image by the heatmap's fade, certain
//! pixels (p = 0, p = 1, NaN) must leave the image untouched, the GPU copy must change only with
//! the generation, and the legend's bar must show the same colours.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on setup failure"
)]

use std::sync::Arc;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use m2c::app::heatmap::{self, HeatmapOverlay};

const SIZE: usize = 64;
/// Grey level of the test image under the heatmap.
const IMAGE_GREY: u8 = 40;
/// Largest per-channel difference allowed between a rendered pixel and the CPU prediction, in
/// 8-bit steps: the GPU evaluates the same f32 polynomial and log2 (lavapipe's log2 is not
/// exact), then rounds once to 8 bits; the CPU twin rounds once too. Measured on lavapipe
/// (Mesa, llvmpipe): max error 1 on the ramp, 0 on the legend (the tests print both).
const TOLERANCE: i32 = 2;

/// Rows [0, 48): p ramps from 0 (x = 0) to 0.5 (x = 63), so u ramps from 0 to 1.
/// Rows [48, 56): p = 1. Rows [56, 64): p = 0 on the left half, NaN on the right half.
fn ramp() -> Vec<f32> {
    let mut p = vec![0.0f32; SIZE * SIZE];
    for y in 0..SIZE {
        for x in 0..SIZE {
            p[y * SIZE + x] = match y {
                0..48 => 0.5 * x as f32 / (SIZE - 1) as f32,
                48..56 => 1.0,
                _ if x < SIZE / 2 => 0.0,
                _ => f32::NAN,
            };
        }
    }
    p
}

struct HeatmapApp {
    texture: Option<egui::TextureHandle>,
    heatmap: HeatmapOverlay,
}

impl eframe::App for HeatmapApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let texture = self.texture.get_or_insert_with(|| {
            let img = egui::ColorImage::new(
                [SIZE, SIZE],
                vec![egui::Color32::from_gray(IMAGE_GREY); SIZE * SIZE],
            );
            ui.ctx()
                .load_texture("image", img, egui::TextureOptions::NEAREST)
        });
        egui::CentralPanel::default()
            .frame(egui::Frame::NONE)
            .show(ui, |ui| {
                let canvas = ui.max_rect();
                // The image fills the canvas: 4 screen pixels per image pixel.
                let uv = egui::Rect::from_min_max(egui::Pos2::ZERO, egui::pos2(1.0, 1.0));
                ui.painter()
                    .image(texture.id(), canvas, uv, egui::Color32::WHITE);
                ui.painter().add(heatmap::paint_callback(
                    canvas,
                    canvas,
                    self.heatmap.clone(),
                ));
            });
    }
}

fn harness() -> Harness<'static, HeatmapApp> {
    Harness::builder()
        .with_size(egui::vec2(256.0, 256.0))
        .with_pixels_per_point(1.0)
        .wgpu()
        .build_eframe(|cc| {
            let rs = cc
                .wgpu_render_state
                .as_ref()
                .expect("kittest provides a wgpu render state");
            heatmap::register(rs);
            HeatmapApp {
                texture: None,
                heatmap: HeatmapOverlay {
                    width: SIZE as u32,
                    height: SIZE as u32,
                    probability: Arc::new(ramp()),
                    generation: 1,
                    opacity: 1.0,
                },
            }
        })
}

fn render(h: &mut Harness<'static, HeatmapApp>) -> image::RgbaImage {
    h.run_steps(3);
    h.render().expect("headless wgpu render")
}

/// The screen pixel at the centre of image pixel (x, y).
fn at(img: &image::RgbaImage, x: usize, y: usize) -> [u8; 3] {
    let p = img.get_pixel((4 * x + 2) as u32, (4 * y + 2) as u32);
    [p[0], p[1], p[2]]
}

/// What the heatmap should show over a grey `bg` at probability `p` (opacity 1): the colormap
/// blended by the fade-out, as premultiplied-alpha blending does it.
fn expected(p: f32, bg: u8) -> [u8; 3] {
    let u = heatmap::uncertainty(p);
    let a = heatmap::alpha_at(u);
    let c = heatmap::colormap_f32(u);
    c.map(|c| (c * 255.0 * a + f32::from(bg) * (1.0 - a)).round() as u8)
}

fn max_channel_diff(a: [u8; 3], b: [u8; 3]) -> i32 {
    (0..3)
        .map(|c| (i32::from(a[c]) - i32::from(b[c])).abs())
        .max()
        .unwrap_or(0)
}

#[test]
fn probability_ramp_renders_as_the_colormap_of_its_uncertainty() {
    let mut h = harness();
    let img = render(&mut h);
    let grey = [IMAGE_GREY; 3];
    // Certain pixels show the image untouched: p = 0 at x = 0, p = 1, p = 0 and NaN rows.
    assert_eq!(at(&img, 0, 10), grey, "p = 0 must be transparent");
    for x in [0, 17, 40, 63] {
        assert_eq!(
            at(&img, x, 50),
            grey,
            "p = 1 at x = {x} must be transparent"
        );
        assert_eq!(
            at(&img, x, 60),
            grey,
            "p = 0 / NaN at x = {x} must be transparent"
        );
    }
    let probability = ramp();
    let mut worst = (0, 0);
    for y in [3, 24, 45] {
        for x in 0..SIZE {
            let p = probability[y * SIZE + x];
            let want = expected(p, IMAGE_GREY);
            let got = at(&img, x, y);
            let d = max_channel_diff(got, want);
            if d > worst.0 {
                worst = (d, x);
            }
            assert!(
                d <= TOLERANCE,
                "pixel ({x}, {y}), p = {p}: rendered {got:?}, expected {want:?} (tolerance {TOLERANCE})"
            );
        }
    }
    println!(
        "heatmap ramp: max error {} (8-bit steps) at x = {}",
        worst.0, worst.1
    );
    // The uncertain end is viridis' yellow and opaque.
    let end = at(&img, SIZE - 1, 24);
    assert!(
        max_channel_diff(end, heatmap::colormap(1.0)) <= TOLERANCE,
        "{end:?}"
    );
    // Nearest texels: both halves of one image pixel are the same colour.
    let left = img.get_pixel(4 * 40, 4 * 24);
    let right = img.get_pixel(4 * 40 + 3, 4 * 24 + 3);
    assert_eq!(left, right, "texels must not be interpolated");
    h.snapshot("heatmap_ramp");
}

#[test]
fn the_gpu_copy_changes_with_the_generation_only() {
    let mut h = harness();
    let before = render(&mut h);
    // New data under the same generation: not uploaded, the picture stays.
    h.state_mut().heatmap.probability = Arc::new(vec![0.5; SIZE * SIZE]);
    let same = render(&mut h);
    assert_eq!(at(&before, 0, 10), at(&same, 0, 10));
    assert_eq!(at(&same, 0, 10), [IMAGE_GREY; 3]);
    // A new generation uploads: p = 0.5 everywhere is the most uncertain colour.
    h.state_mut().heatmap.generation = 2;
    let after = render(&mut h);
    for (x, y) in [(0, 10), (30, 50), (63, 63)] {
        let d = max_channel_diff(at(&after, x, y), heatmap::colormap(1.0));
        assert!(d <= TOLERANCE, "({x}, {y}) {:?}", at(&after, x, y));
    }
    // Opacity is a uniform: half opacity blends half way without a re-upload.
    h.state_mut().heatmap.opacity = 0.5;
    let half = render(&mut h);
    let c = heatmap::colormap_f32(1.0);
    let want = c.map(|c| (c * 255.0 * 0.5 + f32::from(IMAGE_GREY) * 0.5).round() as u8);
    let d = max_channel_diff(at(&half, 20, 20), want);
    assert!(d <= TOLERANCE, "{:?} vs {want:?}", at(&half, 20, 20));
}

#[test]
fn a_mis_sized_map_is_not_drawn() {
    let mut h = harness();
    h.state_mut().heatmap.width = 63; // 63 × 64 ≠ the 4096 values given
    h.state_mut().heatmap.probability = Arc::new(vec![0.5; SIZE * SIZE]);
    h.state_mut().heatmap.generation = 7;
    let img = render(&mut h);
    assert_eq!(at(&img, 20, 20), [IMAGE_GREY; 3]);
}

#[test]
fn legend_shows_the_scale_with_the_heatmap_colours() {
    let mut h = Harness::builder()
        .with_size(egui::vec2(260.0, 90.0))
        .with_pixels_per_point(1.0)
        .wgpu()
        .build_ui(|ui| {
            egui::CentralPanel::default().show(ui, |ui| {
                heatmap::legend_ui(ui);
            });
        });
    h.run_steps(2);
    h.get_by_label(heatmap::LEGEND_CERTAIN);
    h.get_by_label(heatmap::LEGEND_UNCERTAIN);
    h.get_by_label("Uncertainty (HUE)");
    let bar = h.get_by_label(heatmap::LEGEND_BAR).rect();
    assert_eq!(bar.size(), heatmap::LEGEND_BAR_SIZE);
    let img = h.render().expect("headless wgpu render");
    // Sample the centres of a few of the bar's 64 flat segments where the heatmap is opaque.
    let mut worst = 0;
    for segment in [16, 24, 32, 48, 63] {
        let u = (segment as f32 + 0.5) / 64.0;
        let x = bar.min.x + bar.width() * u;
        let y = bar.center().y;
        let p = img.get_pixel(x as u32, y as u32);
        let d = max_channel_diff([p[0], p[1], p[2]], heatmap::colormap(u));
        worst = worst.max(d);
        assert!(
            d <= TOLERANCE,
            "legend at u = {u}: {p:?}, colormap {:?}",
            heatmap::colormap(u)
        );
    }
    println!("legend: max error {worst} (8-bit steps)");
    h.snapshot("heatmap_legend");
}
