//! The image viewer with its GPU mask overlay (`shaders/mask_overlay.wgsl` through an
//! egui_wgpu paint callback), rendered headless on wgpu (lavapipe in CI): the label colour
//! must appear inside the labelled square and nowhere else, fill and outline modes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on setup failure"
)]

use std::sync::Arc;

use egui_kittest::Harness;
use m2c::app::overlay::{self, LabelOverlay};
use m2c::app::viewer::{self, ViewState};

const SIZE: usize = 64;
const GREEN: [f32; 4] = [0.0, 1.0, 0.0, 1.0];

struct ViewerApp {
    state: ViewState,
    texture: Option<egui::TextureHandle>,
    overlay: LabelOverlay,
}

impl eframe::App for ViewerApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let texture = self.texture.get_or_insert_with(|| {
            // A dark grey image: the overlay colour is easy to tell apart.
            let img = egui::ColorImage::new(
                [SIZE, SIZE],
                vec![egui::Color32::from_gray(40); SIZE * SIZE],
            );
            ui.ctx()
                .load_texture("image", img, egui::TextureOptions::NEAREST)
        });
        egui::CentralPanel::default()
            .frame(egui::Frame::NONE)
            .show(ui, |ui| {
                viewer::viewer_ui(ui, &mut self.state, texture, Some(&self.overlay));
            });
    }
}

fn app(outline: bool) -> ViewerApp {
    // Label 1 on the square [16, 48) x [16, 48).
    let mut labels = vec![0u8; SIZE * SIZE];
    for y in 16..48 {
        for x in 16..48 {
            labels[y * SIZE + x] = 1;
        }
    }
    let mut palette = overlay::default_palette();
    palette[1] = GREEN;
    let mut state = ViewState::default();
    state.set_image_size([SIZE, SIZE]);
    ViewerApp {
        state,
        texture: None,
        overlay: LabelOverlay {
            width: SIZE as u32,
            height: SIZE as u32,
            labels: Arc::new(labels),
            generation: 1,
            palette: Arc::new(palette),
            opacity: 1.0,
            outline,
        },
    }
}

fn render(outline: bool) -> image::RgbaImage {
    let mut h = Harness::builder()
        .with_size(egui::vec2(256.0, 256.0))
        .with_pixels_per_point(1.0)
        .wgpu()
        .build_eframe(|cc| {
            let rs = cc
                .wgpu_render_state
                .as_ref()
                .expect("kittest provides a wgpu render state");
            overlay::register(rs);
            app(outline)
        });
    h.run_steps(3);
    h.render().expect("headless wgpu render")
}

fn is_green(p: &image::Rgba<u8>) -> bool {
    p[1] > 200 && p[0] < 60 && p[2] < 60
}

#[test]
fn filled_overlay_covers_exactly_the_labelled_square() {
    let img = render(false);
    // The 64 px image is fitted to 256 px: zoom 4, so the square spans [64, 192).
    assert!(
        is_green(img.get_pixel(128, 128)),
        "centre {:?}",
        img.get_pixel(128, 128)
    );
    assert!(is_green(img.get_pixel(66, 66)));
    assert!(is_green(img.get_pixel(189, 189)));
    assert!(
        !is_green(img.get_pixel(60, 128)),
        "left of the square is coloured"
    );
    assert!(
        !is_green(img.get_pixel(196, 128)),
        "right of the square is coloured"
    );
    assert!(!is_green(img.get_pixel(10, 10)));
}

#[test]
fn outline_overlay_colours_only_the_border() {
    let img = render(true);
    assert!(
        is_green(img.get_pixel(66, 128)),
        "left border {:?}",
        img.get_pixel(66, 128)
    );
    assert!(is_green(img.get_pixel(189, 128)), "right border");
    assert!(
        !is_green(img.get_pixel(128, 128)),
        "interior must stay clear in outline mode"
    );
}
