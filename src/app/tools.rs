//! Drawing tools: the brush, the eraser and the box. Pointer input over the image becomes stroke
//! commands (press = begin, moves = extend, release = end: one drag is one undo step), and the
//! brush outline follows the pointer at its true size in `image` pixels. A box drag becomes
//! one box-prompt command on release.
//!
//! The primary button paints. Middle-drag and Space + drag pan, right-drag sets the window
//! (both handled by the viewer and the study view), so painting stays off while Space is held.

use egui::{Color32, Event, PointerButton, Pos2, Stroke};

use super::command::AppCommand;
use super::viewer::ViewerResponse;
use crate::annotation::Brush;

/// Brush radius limits, in image pixels.
pub const MIN_RADIUS_PX: f32 = 0.5;
pub const MAX_RADIUS_PX: f32 = 256.0;
/// `[` and `]` scale the radius by this factor (at least one pixel).
const RESIZE_FACTOR: f32 = 1.25;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ToolKind {
    #[default]
    Brush,
    Eraser,
    /// Drag a box around one object; the model segments it.
    Box,
}

/// Boxes smaller than this (image pixels, either side) are ignored as stray clicks.
const MIN_BOX_PX: f32 = 2.0;

/// The active tool and its settings, plus whether a drag is painting.
#[derive(Debug, Clone)]
pub struct ToolState {
    pub kind: ToolKind,
    /// Radius of the round brush, in image pixels.
    pub radius_px: f32,
    /// Value of the label class drawn with.
    pub class: u8,
    /// The primary button went down on the image and has not been released yet.
    painting: bool,
    /// Corners (image pixels) of the box being dragged.
    box_drag: Option<([f32; 2], [f32; 2])>,
}

impl Default for ToolState {
    fn default() -> Self {
        Self {
            kind: ToolKind::Brush,
            radius_px: 8.0,
            class: 1,
            painting: false,
            box_drag: None,
        }
    }
}

impl ToolState {
    /// The brush the annotation store stamps with.
    pub fn brush(&self) -> Brush {
        Brush {
            radius_px: self.radius_px,
            erase: self.kind == ToolKind::Eraser,
        }
    }

    /// `[` (smaller) and `]` (larger).
    pub fn resize(&mut self, larger: bool) {
        let r = self.radius_px;
        let next = if larger {
            (r * RESIZE_FACTOR).max(r + 1.0)
        } else {
            (r / RESIZE_FACTOR).min(r - 1.0)
        };
        self.radius_px = next.round().clamp(MIN_RADIUS_PX, MAX_RADIUS_PX);
    }

    pub fn is_painting(&self) -> bool {
        self.painting
    }

    /// Pointer input over the image for the active tool.
    pub fn image_input(
        &mut self,
        ui: &egui::Ui,
        hit: &ViewerResponse,
        enabled: bool,
        commands: &mut Vec<AppCommand>,
    ) {
        if self.kind == ToolKind::Box {
            self.box_input(ui, hit, enabled, commands);
        } else {
            self.box_drag = None;
            self.brush_input(ui, hit, enabled, commands);
        }
    }

    /// The tool's cursor: the brush outline, or the box being dragged.
    pub fn cursor_ui(&self, ui: &egui::Ui, hit: &ViewerResponse, colour: [u8; 3]) {
        if self.kind != ToolKind::Box {
            self.brush_cursor_ui(ui, hit, colour);
            return;
        }
        if hit.response.as_ref().is_some_and(egui::Response::hovered) {
            ui.ctx().set_cursor_icon(egui::CursorIcon::Crosshair);
        }
        if let Some((a, b)) = self.box_drag {
            let to_ui = |p: [f32; 2]| {
                hit.transform
                    .ui_from_image(hit.canvas, Pos2::new(p[0], p[1]))
            };
            let rect = egui::Rect::from_two_pos(to_ui(a), to_ui(b));
            let painter = ui.painter_at(hit.canvas);
            let c = Color32::from_rgb(colour[0], colour[1], colour[2]);
            painter.rect_stroke(
                rect,
                0.0,
                Stroke::new(3.0, Color32::BLACK),
                egui::StrokeKind::Middle,
            );
            painter.rect_stroke(rect, 0.0, Stroke::new(1.5, c), egui::StrokeKind::Middle);
        }
    }

    /// Press starts a box, moves stretch it, release sends it as one box prompt.
    fn box_input(
        &mut self,
        ui: &egui::Ui,
        hit: &ViewerResponse,
        enabled: bool,
        commands: &mut Vec<AppCommand>,
    ) {
        let Some(response) = &hit.response else {
            return;
        };
        let to_image = |p: Pos2| image_point(hit, p);
        let (space, primary_down, latest) = ui.input(|i| {
            (
                i.key_down(egui::Key::Space),
                i.pointer.primary_down(),
                i.pointer.latest_pos(),
            )
        });
        match (&mut self.box_drag, latest) {
            (None, Some(pos)) if enabled && !space && response.is_pointer_button_down_on() => {
                let p = to_image(pos);
                self.box_drag = Some((p, p));
            }
            (Some((_, end)), Some(pos)) => *end = to_image(pos),
            _ => {}
        }
        if !primary_down && let Some((a, b)) = self.box_drag.take() {
            let (x0, x1) = (a[0].min(b[0]), a[0].max(b[0]));
            let (y0, y1) = (a[1].min(b[1]), a[1].max(b[1]));
            if x1 - x0 >= MIN_BOX_PX && y1 - y0 >= MIN_BOX_PX {
                commands.push(AppCommand::SegmentBox {
                    box_image: [x0, y0, x1, y1],
                });
            }
        }
    }

    /// Turns this frame's pointer events over the image into stroke commands. `enabled` is
    /// false when nothing can be painted (no project, no item, an export running). Points are
    /// taken from every pointer event of the frame, not only the last position, so a fast
    /// drag at a low frame rate keeps its shape.
    fn brush_input(
        &mut self,
        ui: &egui::Ui,
        hit: &ViewerResponse,
        enabled: bool,
        commands: &mut Vec<AppCommand>,
    ) {
        let Some(response) = &hit.response else {
            return;
        };
        let to_image = |p: Pos2| image_point(hit, p);
        let (space, primary_down, events) = ui.input(|i| {
            (
                i.key_down(egui::Key::Space),
                i.pointer.primary_down(),
                i.events.clone(),
            )
        });
        let can_start = enabled && !space && response.is_pointer_button_down_on();
        let was_painting = self.painting;
        let mut points = Vec::new();
        for event in &events {
            match event {
                Event::PointerButton {
                    pos,
                    button: PointerButton::Primary,
                    pressed: true,
                    ..
                } if !self.painting && can_start => {
                    commands.push(AppCommand::BeginStroke {
                        point_image: to_image(*pos),
                    });
                    self.painting = true;
                }
                Event::PointerMoved(pos) if self.painting => points.push(to_image(*pos)),
                Event::PointerButton {
                    pos,
                    button: PointerButton::Primary,
                    pressed: false,
                    ..
                } if self.painting => {
                    points.push(to_image(*pos));
                    self.finish(&mut points, commands);
                }
                _ => {}
            }
        }
        if self.painting && !primary_down {
            self.finish(&mut points, commands);
        }
        if !points.is_empty() {
            commands.push(AppCommand::StrokeTo {
                points_image: points,
            });
        }
        // A click whose press and release fell into one frame: a single dab.
        if !was_painting
            && commands.is_empty()
            && enabled
            && !space
            && response.clicked_by(PointerButton::Primary)
            && let Some(pos) = response.interact_pointer_pos()
        {
            commands.push(AppCommand::BeginStroke {
                point_image: to_image(pos),
            });
            commands.push(AppCommand::EndStroke);
        }
    }

    fn finish(&mut self, points: &mut Vec<[f32; 2]>, commands: &mut Vec<AppCommand>) {
        if !points.is_empty() {
            commands.push(AppCommand::StrokeTo {
                points_image: std::mem::take(points),
            });
        }
        commands.push(AppCommand::EndStroke);
        self.painting = false;
    }

    /// The brush outline under the pointer: a circle of the brush radius in image pixels,
    /// in the label's colour (white for the eraser).
    fn brush_cursor_ui(&self, ui: &egui::Ui, hit: &ViewerResponse, colour: [u8; 3]) {
        let Some(response) = &hit.response else {
            return;
        };
        let pointer = if self.painting {
            ui.input(|i| i.pointer.latest_pos())
        } else {
            response.hover_pos()
        };
        let Some(centre_ui) = pointer else {
            return;
        };
        if ui.input(|i| i.key_down(egui::Key::Space)) {
            return;
        }
        ui.ctx().set_cursor_icon(egui::CursorIcon::Crosshair);
        let radius_ui = (self.radius_px * hit.transform.zoom).max(1.0);
        let colour = match self.kind {
            ToolKind::Brush => Color32::from_rgb(colour[0], colour[1], colour[2]),
            ToolKind::Eraser | ToolKind::Box => Color32::WHITE,
        };
        let painter = ui.painter_at(hit.canvas);
        painter.circle_stroke(centre_ui, radius_ui + 1.0, Stroke::new(1.0, Color32::BLACK));
        painter.circle_stroke(centre_ui, radius_ui, Stroke::new(1.5, colour));
    }
}

/// The continuous image coordinates under the `ui` point `p`.
fn image_point(hit: &ViewerResponse, p: Pos2) -> [f32; 2] {
    let q = hit.transform.image_from_ui(hit.canvas, p);
    [q.x, q.y]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_resize_in_steps_within_limits() {
        let mut t = ToolState {
            radius_px: 2.0,
            ..ToolState::default()
        };
        t.resize(true);
        assert_eq!(t.radius_px, 3.0, "at least one pixel per step");
        t.radius_px = 40.0;
        t.resize(true);
        assert_eq!(t.radius_px, 50.0);
        t.resize(false);
        assert_eq!(t.radius_px, 40.0);
        for _ in 0..100 {
            t.resize(false);
        }
        assert_eq!(t.radius_px, MIN_RADIUS_PX);
        for _ in 0..100 {
            t.resize(true);
        }
        assert_eq!(t.radius_px, MAX_RADIUS_PX);
    }

    #[test]
    fn the_eraser_erases() {
        let t = ToolState {
            kind: ToolKind::Eraser,
            ..ToolState::default()
        };
        assert!(t.brush().erase);
        assert!(!ToolState::default().brush().erase);
    }
}
