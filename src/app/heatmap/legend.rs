//! The heatmap's legend: the colour bar with its scale and words, drawn by egui with the
//! colours of [`super::colormap`].

use egui::{Color32, Rect, pos2, vec2};

use super::{alpha_at, colormap_f32};

/// Label at the certain end of the legend.
pub const LEGEND_CERTAIN: &str = "certain";
/// Label at the uncertain end of the legend.
pub const LEGEND_UNCERTAIN: &str = "most uncertain (p = 0.5)";
/// Accessible name of the legend's colour bar.
pub const LEGEND_BAR: &str = "Uncertainty colour scale";
/// Size of the colour bar, in points.
pub const LEGEND_BAR_SIZE: egui::Vec2 = vec2(220.0, 14.0);
const LEGEND_STOPS: usize = 64;

/// The heatmap's legend: a title, the colour bar (uncertainty 0 … 1 bit, faded where the
/// heatmap fades), ticks at 0, 0.5 and 1, and the words at both ends. Ends with `_ui`: draws
/// only.
pub fn legend_ui(ui: &mut egui::Ui) -> egui::Response {
    ui.vertical(|ui| {
        ui.label("Uncertainty (HUE)").on_hover_text(
            "Binary entropy of the predicted probability p, in bits: 0 where the model is \
             sure (p = 0 or 1), 1 at p = 0.5. Below 0.05 the image shows through.",
        );
        let (rect, response) = ui.allocate_exact_size(LEGEND_BAR_SIZE, egui::Sense::hover());
        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, LEGEND_BAR));
        if ui.is_rect_visible(rect) {
            paint_bar(ui.painter(), rect, ui.visuals().extreme_bg_color);
            let text = ui.visuals().text_color();
            let font = egui::FontId::proportional(10.0);
            for (u, align) in [
                (0.0, egui::Align2::LEFT_TOP),
                (0.5, egui::Align2::CENTER_TOP),
                (1.0, egui::Align2::RIGHT_TOP),
            ] {
                let x = egui::lerp(rect.x_range(), u);
                ui.painter().line_segment(
                    [pos2(x, rect.max.y), pos2(x, rect.max.y + 3.0)],
                    egui::Stroke::new(1.0, text),
                );
                let label = if u == 0.5 {
                    "0.5".to_owned()
                } else {
                    format!("{u:.0}")
                };
                ui.painter()
                    .text(pos2(x, rect.max.y + 3.0), align, label, font.clone(), text);
            }
            ui.add_space(12.0);
        }
        ui.allocate_ui_with_layout(
            vec2(LEGEND_BAR_SIZE.x, 16.0),
            egui::Layout::left_to_right(egui::Align::Center),
            |ui| {
                ui.small(LEGEND_CERTAIN);
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    ui.small(LEGEND_UNCERTAIN);
                });
            },
        );
        response
    })
    .inner
}

/// The colour bar: `LEGEND_STOPS` flat segments, each the colormap at its centre, blended over
/// `background` with the heatmap's own fade-out so the legend matches what is drawn.
fn paint_bar(painter: &egui::Painter, rect: Rect, background: Color32) {
    let step = rect.width() / LEGEND_STOPS as f32;
    for i in 0..LEGEND_STOPS {
        let u = (i as f32 + 0.5) / LEGEND_STOPS as f32;
        let colour = legend_colour(u, background);
        let x0 = rect.min.x + step * i as f32;
        let segment = Rect::from_min_max(pos2(x0, rect.min.y), pos2(x0 + step + 0.5, rect.max.y));
        painter.rect_filled(segment.intersect(rect), 0.0, colour);
    }
    painter.rect_stroke(
        rect,
        0.0,
        egui::Stroke::new(1.0, Color32::from_gray(110)),
        egui::StrokeKind::Outside,
    );
}

/// The legend's colour at uncertainty `u` over `background` (sRGB blend, as egui blends).
pub fn legend_colour(u: f32, background: Color32) -> Color32 {
    let [r, g, b] = colormap_f32(u);
    let a = alpha_at(u);
    let mix = |c: f32, bg: u8| (c * 255.0 * a + f32::from(bg) * (1.0 - a)).round() as u8;
    Color32::from_rgb(
        mix(r, background.r()),
        mix(g, background.g()),
        mix(b, background.b()),
    )
}
