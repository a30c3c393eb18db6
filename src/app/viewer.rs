//! The image view: where an image lies on screen (zoom, pan, fit, 1:1), the conversions between
//! `ui` points and `image` pixels, and the widget that draws an image with its mask overlay and
//! handles zoom (wheel / pinch) and pan (drag with the middle button, or Space + drag).

use egui::{Pos2, Rect, Vec2, pos2, vec2};

use super::overlay::{self, LabelOverlay};

/// Zoom limits, in screen points per image pixel.
pub const MIN_ZOOM: f32 = 1.0 / 64.0;
pub const MAX_ZOOM: f32 = 64.0;

/// Placement of an image in the canvas: `ui = canvas_min + offset + image * zoom`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewTransform {
    /// Screen points per image pixel.
    pub zoom: f32,
    /// Position of the image's top-left corner relative to the canvas' top-left, in points.
    pub offset: Vec2,
}

impl Default for ViewTransform {
    fn default() -> Self {
        Self {
            zoom: 1.0,
            offset: Vec2::ZERO,
        }
    }
}

impl ViewTransform {
    /// Whole image visible and centred, as large as the canvas allows.
    pub fn fit(canvas: Rect, image_px: [usize; 2]) -> Self {
        let (w, h) = (image_px[0].max(1) as f32, image_px[1].max(1) as f32);
        let zoom = (canvas.width() / w)
            .min(canvas.height() / h)
            .clamp(MIN_ZOOM, MAX_ZOOM);
        Self::centred(canvas, image_px, zoom)
    }

    /// One image pixel per screen pixel, centred.
    pub fn one_to_one(canvas: Rect, image_px: [usize; 2], pixels_per_point: f32) -> Self {
        Self::centred(canvas, image_px, 1.0 / pixels_per_point.max(1e-3))
    }

    fn centred(canvas: Rect, image_px: [usize; 2], zoom: f32) -> Self {
        let size = vec2(image_px[0] as f32, image_px[1] as f32) * zoom;
        Self {
            zoom,
            offset: (canvas.size() - size) * 0.5,
        }
    }

    /// Image pixel coordinates (continuous; pixel (i, j) spans [i, i+1)) under a `ui` point.
    pub fn image_from_ui(&self, canvas: Rect, ui: Pos2) -> Pos2 {
        ((ui - canvas.min - self.offset) / self.zoom).to_pos2()
    }

    /// The `ui` point of continuous image coordinates.
    pub fn ui_from_image(&self, canvas: Rect, image: Pos2) -> Pos2 {
        canvas.min + self.offset + image.to_vec2() * self.zoom
    }

    /// The image's rectangle in `ui` points.
    pub fn image_rect_ui(&self, canvas: Rect, image_px: [usize; 2]) -> Rect {
        Rect::from_min_max(
            self.ui_from_image(canvas, Pos2::ZERO),
            self.ui_from_image(canvas, pos2(image_px[0] as f32, image_px[1] as f32)),
        )
    }

    /// Zooms by `factor` keeping the image point under `anchor_ui` fixed on screen.
    pub fn zoom_about(&mut self, canvas: Rect, anchor_ui: Pos2, factor: f32) {
        let anchor_image = self.image_from_ui(canvas, anchor_ui);
        self.zoom = (self.zoom * factor).clamp(MIN_ZOOM, MAX_ZOOM);
        self.offset = anchor_ui - canvas.min - anchor_image.to_vec2() * self.zoom;
    }

    /// Moves the image by `delta_ui` points.
    pub fn pan(&mut self, delta_ui: Vec2) {
        self.offset += delta_ui;
    }
}

/// Integer pixel under continuous image coordinates, if inside the image.
pub fn pixel_at(image: Pos2, image_px: [usize; 2]) -> Option<[usize; 2]> {
    if image.x < 0.0 || image.y < 0.0 {
        return None;
    }
    let (x, y) = (image.x.floor() as usize, image.y.floor() as usize);
    (x < image_px[0] && y < image_px[1]).then_some([x, y])
}

/// Per-view state kept between frames.
#[derive(Debug, Clone, Default)]
pub struct ViewState {
    pub transform: ViewTransform,
    /// Fit the image on the next frame (new image, or the user asked).
    pub fit_pending: bool,
    /// Image size the transform was set up for.
    pub image_px: [usize; 2],
    /// The canvas of the last frame (`ui` points), to place things on the image between frames.
    pub canvas: Option<Rect>,
}

impl ViewState {
    /// Starts showing an image of `image_px`; fits it on the next frame when the size changes.
    pub fn set_image_size(&mut self, image_px: [usize; 2]) {
        if self.image_px != image_px {
            self.image_px = image_px;
            self.fit_pending = true;
        }
    }
}

/// What the viewer reports back for this frame.
#[derive(Debug, Clone)]
pub struct ViewerResponse {
    /// Pixel under the pointer, if any.
    pub hovered_px: Option<[usize; 2]>,
    /// The widget's response (clicks and drags with the primary button are the tools').
    pub response: Option<egui::Response>,
    /// The canvas the image was drawn in (`ui` points).
    pub canvas: Rect,
    /// Where the image lies in the canvas this frame.
    pub transform: ViewTransform,
}

/// Draws `texture` (the image, `state.image_px` in size) and optionally a label overlay, and
/// applies zoom and pan input.
pub fn viewer_ui(
    ui: &mut egui::Ui,
    state: &mut ViewState,
    texture: &egui::TextureHandle,
    overlay: Option<&LabelOverlay>,
) -> ViewerResponse {
    let (canvas, response) =
        ui.allocate_exact_size(ui.available_size(), egui::Sense::click_and_drag());
    if state.fit_pending {
        state.transform = ViewTransform::fit(canvas, state.image_px);
        state.fit_pending = false;
    }
    handle_navigation(ui, canvas, &response, state);
    let image_rect = state.transform.image_rect_ui(canvas, state.image_px);
    let painter = ui.painter_at(canvas);
    painter.rect_filled(canvas, 0.0, egui::Color32::from_gray(12));
    painter.image(
        texture.id(),
        image_rect,
        Rect::from_min_max(Pos2::ZERO, pos2(1.0, 1.0)),
        egui::Color32::WHITE,
    );
    if let Some(overlay) = overlay {
        painter.add(overlay::paint_callback(canvas, image_rect, overlay.clone()));
    }
    let hovered_px = response
        .hover_pos()
        .and_then(|p| pixel_at(state.transform.image_from_ui(canvas, p), state.image_px));
    state.canvas = Some(canvas);
    ViewerResponse {
        hovered_px,
        response: Some(response),
        canvas,
        transform: state.transform,
    }
}

fn handle_navigation(
    ui: &egui::Ui,
    canvas: Rect,
    response: &egui::Response,
    state: &mut ViewState,
) {
    if let Some(pointer) = response.hover_pos() {
        let (scroll, pinch) = ui.input(|i| (i.smooth_scroll_delta.y, i.zoom_delta()));
        // Wheel zooms (about the pointer); 120 points of wheel ≈ one notch ≈ ×1.2.
        let factor = pinch * 1.2f32.powf(scroll / 120.0);
        if (factor - 1.0).abs() > 1e-4 {
            state.transform.zoom_about(canvas, pointer, factor);
        }
    }
    let space = ui.input(|i| i.key_down(egui::Key::Space));
    if response.dragged_by(egui::PointerButton::Middle)
        || (space && response.dragged_by(egui::PointerButton::Primary))
    {
        state.transform.pan(response.drag_delta());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canvas() -> Rect {
        Rect::from_min_size(pos2(100.0, 50.0), vec2(800.0, 600.0))
    }

    #[test]
    fn fit_centres_and_shows_the_whole_image() {
        let t = ViewTransform::fit(canvas(), [400, 100]);
        assert_eq!(t.zoom, 2.0);
        let r = t.image_rect_ui(canvas(), [400, 100]);
        assert!(canvas().contains_rect(r));
        assert!((r.center() - canvas().center()).length() < 1e-4);
    }

    #[test]
    fn ui_and_image_coordinates_round_trip() {
        let t = ViewTransform {
            zoom: 3.5,
            offset: vec2(-20.0, 7.0),
        };
        let p = pos2(123.25, 456.5);
        let back = t.ui_from_image(canvas(), t.image_from_ui(canvas(), p));
        assert!((back - p).length() < 1e-3);
    }

    #[test]
    fn zoom_keeps_the_point_under_the_pointer() {
        let mut t = ViewTransform::fit(canvas(), [512, 512]);
        let anchor = pos2(300.0, 200.0);
        let before = t.image_from_ui(canvas(), anchor);
        t.zoom_about(canvas(), anchor, 2.7);
        assert!((t.image_from_ui(canvas(), anchor) - before).length() < 1e-3);
        t.zoom_about(canvas(), anchor, 1e9);
        assert_eq!(t.zoom, MAX_ZOOM);
    }

    #[test]
    fn one_to_one_respects_display_scaling() {
        assert_eq!(ViewTransform::one_to_one(canvas(), [10, 10], 2.0).zoom, 0.5);
    }

    #[test]
    fn pixel_lookup_stays_inside_the_image() {
        assert_eq!(pixel_at(pos2(0.0, 0.0), [4, 3]), Some([0, 0]));
        assert_eq!(pixel_at(pos2(3.99, 2.5), [4, 3]), Some([3, 2]));
        assert_eq!(pixel_at(pos2(4.0, 0.0), [4, 3]), None);
        assert_eq!(pixel_at(pos2(-0.1, 0.0), [4, 3]), None);
    }
}
