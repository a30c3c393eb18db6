//! The annotation side panel: tool and brush size, the label classes (name, colour, value),
//! mask display settings, and where the project is saved. Reads state and pushes commands;
//! only view settings (brush radius, overlay look) change in place.

use egui::{Color32, RichText, Sense, vec2};

use crate::annotation::LabelClass;

use super::command::AppCommand;
use super::keymap::Action;
use super::session::CLASS_COLOURS;
use super::tools::{MAX_RADIUS_PX, MIN_RADIUS_PX, ToolKind, ToolState};

/// How masks are drawn over the image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OverlaySettings {
    pub visible: bool,
    /// Overall opacity in [0, 1].
    pub opacity: f32,
    /// Outlines only instead of filled regions.
    pub outline: bool,
}

impl Default for OverlaySettings {
    fn default() -> Self {
        Self {
            visible: true,
            opacity: 0.5,
            outline: false,
        }
    }
}

/// The name being typed for the selected class, committed when the field loses focus.
#[derive(Debug, Default)]
pub struct ClassEditor {
    value: Option<u8>,
    name: String,
}

/// Where the project stands, for the panel and the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectStatus {
    /// No study open, or nothing to annotate in it.
    None,
    Opening,
    Exporting,
    Importing,
    Ready {
        /// Every edit is on disk.
        saved: bool,
        root: std::path::PathBuf,
    },
    /// Open read-only: another window or process is editing it.
    ReadOnly {
        reason: String,
        root: std::path::PathBuf,
    },
    Failed(String),
}

impl ProjectStatus {
    /// The status bar's text, and whether it is good news.
    pub fn line(&self) -> Option<(String, bool)> {
        match self {
            ProjectStatus::None => None,
            ProjectStatus::Opening => Some(("Opening project…".to_owned(), true)),
            ProjectStatus::Exporting => Some(("Exporting…".to_owned(), true)),
            ProjectStatus::Importing => Some(("Importing labels…".to_owned(), true)),
            ProjectStatus::Ready { saved: true, .. } => {
                Some(("All changes saved".to_owned(), true))
            }
            ProjectStatus::Ready { saved: false, .. } => {
                Some(("Changes not saved yet: retrying".to_owned(), false))
            }
            ProjectStatus::ReadOnly { .. } => Some((
                "Read-only: the project is open in another window".to_owned(),
                false,
            )),
            ProjectStatus::Failed(_) => Some(("Annotation unavailable".to_owned(), false)),
        }
    }
}

fn colour32(c: [u8; 3]) -> Color32 {
    Color32::from_rgb(c[0], c[1], c[2])
}

fn action_toggle_ui(
    ui: &mut egui::Ui,
    selected: bool,
    action: Action,
    commands: &mut Vec<AppCommand>,
) {
    let text = match action.shortcut() {
        Some(s) => format!("{} ({})", action.label(), ui.ctx().format_shortcut(&s)),
        None => action.label().to_owned(),
    };
    if ui
        .selectable_label(selected, text)
        .on_hover_text(action.tooltip())
        .clicked()
    {
        commands.push(AppCommand::Perform(action));
    }
}

/// The panel body (drawn inside the right side panel).
pub fn annotation_panel_ui(
    ui: &mut egui::Ui,
    classes: &[LabelClass],
    status: &ProjectStatus,
    tools: &mut ToolState,
    overlay: &mut OverlaySettings,
    editor: &mut ClassEditor,
    commands: &mut Vec<AppCommand>,
) {
    ui.heading("Annotation");
    ui.separator();
    ui.horizontal(|ui| {
        action_toggle_ui(ui, tools.kind == ToolKind::Brush, Action::Brush, commands);
        action_toggle_ui(ui, tools.kind == ToolKind::Eraser, Action::Eraser, commands);
    });
    ui.add(
        egui::Slider::new(&mut tools.radius_px, MIN_RADIUS_PX..=MAX_RADIUS_PX)
            .logarithmic(true)
            .suffix(" px")
            .text("Brush radius"),
    )
    .on_hover_text("Brush radius in image pixels ([ and ] change it)");
    ui.add_space(6.0);
    classes_ui(ui, classes, tools.class, editor, commands);
    ui.add_space(6.0);
    ui.label(RichText::new("Masks").strong());
    ui.checkbox(&mut overlay.visible, "Show masks (H)")
        .on_hover_text(Action::ToggleOverlay.tooltip());
    ui.add(egui::Slider::new(&mut overlay.opacity, 0.0..=1.0).text("Opacity"))
        .on_hover_text("Mask opacity (, and . change it)");
    ui.checkbox(&mut overlay.outline, "Outlines only (O)")
        .on_hover_text(Action::ToggleOutline.tooltip());
    ui.add_space(6.0);
    project_ui(ui, status);
}

fn classes_ui(
    ui: &mut egui::Ui,
    classes: &[LabelClass],
    selected: u8,
    editor: &mut ClassEditor,
    commands: &mut Vec<AppCommand>,
) {
    ui.label(RichText::new("Labels").strong());
    for (i, class) in classes.iter().enumerate() {
        ui.horizontal(|ui| {
            let (rect, _) = ui.allocate_exact_size(vec2(12.0, 12.0), Sense::hover());
            ui.painter().rect_filled(rect, 2.0, colour32(class.colour));
            let key = if i < super::keymap::LABEL_KEYS {
                format!("{}", i + 1)
            } else {
                String::new()
            };
            let text = format!("{}  (value {}, key {key})", class.name, class.value);
            if ui
                .selectable_label(class.value == selected, text)
                .on_hover_text("Draw with this label")
                .clicked()
            {
                commands.push(AppCommand::SelectClass(class.value));
            }
        });
    }
    if ui
        .button("Add label")
        .on_hover_text("Add a label class with the next free value")
        .clicked()
    {
        commands.push(AppCommand::AddClass);
    }
    let Some(class) = classes.iter().find(|c| c.value == selected) else {
        return;
    };
    if editor.value != Some(class.value) {
        editor.value = Some(class.value);
        editor.name = class.name.clone();
    }
    ui.horizontal(|ui| {
        let label = ui.label("Name");
        let field = ui
            .add(egui::TextEdit::singleline(&mut editor.name).desired_width(150.0))
            .labelled_by(label.id);
        let name = editor.name.trim();
        if field.lost_focus() && !name.is_empty() && name != class.name {
            commands.push(AppCommand::SetClass(LabelClass {
                name: name.to_owned(),
                ..class.clone()
            }));
        }
    });
    ui.horizontal(|ui| {
        ui.label("Colour");
        for (k, colour) in CLASS_COLOURS.iter().enumerate() {
            let button = egui::Button::new("")
                .fill(colour32(*colour))
                .min_size(vec2(16.0, 16.0))
                .selected(*colour == class.colour);
            if ui
                .add(button)
                .on_hover_text(format!("Colour {}", k + 1))
                .clicked()
                && *colour != class.colour
            {
                commands.push(AppCommand::SetClass(LabelClass {
                    colour: *colour,
                    ..class.clone()
                }));
            }
        }
    });
}

fn project_ui(ui: &mut egui::Ui, status: &ProjectStatus) {
    match status {
        ProjectStatus::None => {}
        ProjectStatus::Opening => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Opening project…");
            });
        }
        ProjectStatus::Exporting => {
            ui.label("Exporting: editing resumes when it is done");
        }
        ProjectStatus::Importing => {
            ui.label("Importing labels: editing resumes when it is done");
        }
        ProjectStatus::Ready { saved, root } => {
            let name = root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let state = if *saved { "saved" } else { "not saved yet" };
            ui.label(RichText::new(format!("Project {name}: {state}")).small())
                .on_hover_text(root.display().to_string());
        }
        ProjectStatus::ReadOnly { reason, root } => {
            ui.colored_label(ui.visuals().warn_fg_color, "Read-only project")
                .on_hover_text(root.display().to_string());
            ui.label(
                RichText::new(format!(
                    "{reason}. Edits here are refused; close the other window and open the \
                     study again to edit."
                ))
                .small(),
            );
        }
        ProjectStatus::Failed(reason) => {
            ui.colored_label(ui.visuals().error_fg_color, "No annotation project");
            ui.label(RichText::new(reason.as_str()).small());
        }
    }
}
