//! The window's panels: menu bar, status bar, model panel, study list and the central area.
//! Each function reads state and pushes [`Action`]s; none mutates the document or does I/O.

use egui::{Align, Layout, RichText};

use std::path::PathBuf;

use super::keymap::Action;
use super::recent::{RecentStudies, recent_list_ui};
use super::study_view::StudyView;
use super::{ModelStatus, WeightsStatus};
use crate::study::Series;

/// A button for `action`, with its tooltip and shortcut; pushes the action when clicked.
fn action_button_ui(ui: &mut egui::Ui, action: Action, actions: &mut Vec<Action>) {
    let mut button = egui::Button::new(action.label());
    if let Some(s) = action.shortcut() {
        button = button.shortcut_text(ui.ctx().format_shortcut(&s));
    }
    if ui.add(button).on_hover_text(action.tooltip()).clicked() {
        actions.push(action);
    }
}

/// The menu bar; returns a recent study the user picked.
pub fn menu_bar_ui(
    ui: &mut egui::Ui,
    actions: &mut Vec<Action>,
    recent: &RecentStudies,
) -> Option<PathBuf> {
    let mut picked = None;
    egui::Panel::top("menu_bar").show(ui, |ui| {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                action_button_ui(ui, Action::OpenFolder, actions);
                action_button_ui(ui, Action::OpenFiles, actions);
                ui.add_enabled_ui(!recent.paths.is_empty(), |ui| {
                    ui.menu_button("Open recent", |ui| {
                        picked = recent_list_ui(ui, recent);
                    });
                });
                ui.separator();
                action_button_ui(ui, Action::Export, actions);
                action_button_ui(ui, Action::ImportLabels, actions);
                action_button_ui(ui, Action::Save, actions);
                ui.separator();
                action_button_ui(ui, Action::Quit, actions);
            });
            ui.menu_button("Edit", |ui| {
                action_button_ui(ui, Action::Undo, actions);
                action_button_ui(ui, Action::Redo, actions);
            });
            ui.menu_button("Tools", |ui| {
                for action in [
                    Action::Brush,
                    Action::Eraser,
                    Action::BrushSmaller,
                    Action::BrushLarger,
                    Action::BoxTool,
                ] {
                    action_button_ui(ui, action, actions);
                }
                ui.separator();
                action_button_ui(ui, Action::Settings, actions);
            });
            ui.menu_button("Review", |ui| {
                for action in [
                    Action::LearnConcept,
                    Action::NextFlagged,
                    Action::PreviousFlagged,
                    Action::AcceptAndNext,
                    Action::RejectPrediction,
                    Action::ToggleHeatmap,
                ] {
                    action_button_ui(ui, action, actions);
                }
            });
            ui.menu_button("View", |ui| {
                action_button_ui(ui, Action::FitView, actions);
                action_button_ui(ui, Action::NextImage, actions);
                action_button_ui(ui, Action::PreviousImage, actions);
                action_button_ui(ui, Action::NextSlice, actions);
                action_button_ui(ui, Action::PreviousSlice, actions);
                ui.separator();
                for action in [
                    Action::ToggleOverlay,
                    Action::ToggleOutline,
                    Action::OverlayLessOpaque,
                    Action::OverlayMoreOpaque,
                ] {
                    action_button_ui(ui, action, actions);
                }
                ui.menu_button("Window preset", |ui| {
                    for i in 0..crate::study::WindowPreset::ALL.len() {
                        action_button_ui(ui, Action::WindowPreset(i), actions);
                    }
                });
            });
            ui.menu_button("Help", |ui| {
                action_button_ui(ui, Action::ShowShortcuts, actions);
                action_button_ui(ui, Action::GetWeights, actions);
            });
        });
    });
    picked
}

/// `project_line`: the save state, and whether it is good news.
pub fn status_bar_ui(
    ui: &mut egui::Ui,
    status: &ModelStatus,
    study_line: Option<String>,
    project_line: Option<(String, bool)>,
    review_line: Option<String>,
) {
    egui::Panel::bottom("status_bar").show(ui, |ui| {
        ui.horizontal(|ui| {
            match status {
                ModelStatus::Detecting => {
                    ui.spinner();
                    ui.label("Detecting compute device…");
                }
                ModelStatus::Ready { device_line, .. } => {
                    ui.label(device_line.as_str());
                }
            }
            if let Some((line, good)) = project_line {
                ui.separator();
                if good {
                    ui.label(line);
                } else {
                    ui.colored_label(ui.visuals().warn_fg_color, line);
                }
            }
            if let Some(line) = review_line {
                ui.separator();
                ui.label(line);
            }
            if let Some(line) = study_line {
                ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                    ui.label(line);
                });
            }
        });
    });
}

pub fn model_panel_ui(ui: &mut egui::Ui, status: &ModelStatus) {
    side_panel_ui(ui, |ui| model_section_ui(ui, status));
}

/// The right-hand panel, with `add_contents` inside.
pub fn side_panel_ui(ui: &mut egui::Ui, add_contents: impl FnOnce(&mut egui::Ui)) {
    egui::Panel::right("model_panel")
        .default_size(300.0)
        .resizable(true)
        .show(ui, add_contents);
}

/// Device and weights status.
pub fn model_section_ui(ui: &mut egui::Ui, status: &ModelStatus) {
    ui.heading("Model");
    ui.separator();
    match status {
        ModelStatus::Detecting => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Detecting compute device…");
            });
        }
        ModelStatus::Ready {
            device_line,
            device_reason,
            weights,
        } => {
            ui.label(RichText::new(device_line.as_str()).strong());
            ui.label(RichText::new(device_reason.as_str()).small());
            ui.add_space(8.0);
            weights_ui(ui, weights);
        }
    }
}

fn weights_ui(ui: &mut egui::Ui, weights: &WeightsStatus) {
    match weights {
        WeightsStatus::Found { path } => {
            ui.label("SAM3 weights: found");
            ui.label(
                RichText::new(path.display().to_string())
                    .small()
                    .monospace(),
            );
        }
        WeightsStatus::Unusable { path, reason } => {
            ui.colored_label(ui.visuals().warn_fg_color, "SAM3 weights: unusable");
            ui.label(RichText::new(reason.as_str()).small());
            ui.label(
                RichText::new(path.display().to_string())
                    .small()
                    .monospace(),
            );
        }
        WeightsStatus::Missing { first_location } => {
            ui.label("SAM3 weights: not found");
            ui.label(
                "Manual annotation works without them. For automatic segmentation, \
                 Help > Get SAM3 weights… says what to download (Hugging Face facebook/sam3, \
                 gated) and installs it at:",
            );
            if let Some(p) = first_location {
                ui.label(RichText::new(p.display().to_string()).small().monospace());
            }
        }
    }
}

/// The left panel: series (with `badges`, one annotation line per series) and skipped files.
/// Returns the series the user clicked.
pub fn study_panel_ui(ui: &mut egui::Ui, study: &StudyView, badges: &[String]) -> Option<usize> {
    let mut clicked = None;
    egui::Panel::left("study_panel")
        .default_size(260.0)
        .resizable(true)
        .show(ui, |ui| {
            ui.heading("Study");
            ui.separator();
            if study.is_discovering() {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Reading study…");
                });
            }
            let selected = study.selected().map(|(s, _)| s);
            egui::ScrollArea::vertical().show(ui, |ui| {
                for (i, s) in study.series().iter().enumerate() {
                    let mut label = series_label(s);
                    if let Some(badge) = badges.get(i).filter(|b| !b.is_empty()) {
                        label += "\n";
                        label += badge;
                    }
                    if ui.selectable_label(selected == Some(i), label).clicked() {
                        clicked = Some(i);
                    }
                }
                let skipped = study.skipped();
                if !skipped.is_empty() {
                    ui.separator();
                    ui.collapsing(format!("{} files skipped", skipped.len()), |ui| {
                        for reason in skipped {
                            ui.label(RichText::new(reason.as_str()).small());
                        }
                    });
                }
            });
        });
    clicked
}

fn series_label(s: &Series) -> String {
    let what = s.modality.as_deref().unwrap_or("image");
    let name = s
        .first_path()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut label = format!("{what} {}×{}", s.width, s.height);
    if s.len() > 1 {
        label += &format!(", {} slices", s.len());
    }
    if !s.issues.is_empty() {
        // The default fonts have no warning sign; say it in words.
        label += ", irregular geometry";
    }
    format!("{label}\n{name}")
}

/// The two lines of the start screen that say what to do first.
pub const FIRST_STEP_OPEN: &str =
    "1. Open a study: drop a folder or files here, or use the buttons above.";
/// The second line while no usable weights were found.
pub const FIRST_STEP_WEIGHTS: &str = "2. For automatic segmentation, get the SAM3 weights: \
     Help > Get SAM3 weights… (manual annotation works without them).";
/// The second line once the weights are found.
pub const FIRST_STEP_READY: &str =
    "2. SAM3 weights found: paint a few images, then L segments the rest.";

fn first_steps(status: &ModelStatus) -> [&'static str; 2] {
    let ready = matches!(
        status,
        ModelStatus::Ready {
            weights: WeightsStatus::Found { .. },
            ..
        }
    );
    [
        FIRST_STEP_OPEN,
        if ready {
            FIRST_STEP_READY
        } else {
            FIRST_STEP_WEIGHTS
        },
    ]
}

/// The central area: the drop zone while nothing is open.
/// The start screen; returns a recent study the user picked.
pub fn central_ui(
    ui: &mut egui::Ui,
    actions: &mut Vec<Action>,
    recent: &RecentStudies,
    status: &ModelStatus,
) -> Option<PathBuf> {
    let hovering = ui.ctx().input(|i| !i.raw.hovered_files.is_empty());
    let mut picked = None;
    egui::CentralPanel::default().show(ui, |ui| {
        ui.vertical_centered(|ui| {
            ui.add_space((ui.available_height() * 0.25).max(16.0));
            ui.heading(RichText::new("M2C Annotator").size(28.0));
            ui.add_space(12.0);
            let prompt = if hovering {
                "Release to open"
            } else {
                "Drop a study folder or DICOM/PNG/JPEG files here"
            };
            ui.label(RichText::new(prompt).size(18.0));
            ui.add_space(12.0);
            ui.horizontal(|ui| {
                let width = 2.0 * 140.0;
                ui.add_space(((ui.available_width() - width) / 2.0).max(0.0));
                action_button_ui(ui, Action::OpenFolder, actions);
                action_button_ui(ui, Action::OpenFiles, actions);
            });
            ui.add_space(12.0);
            for line in first_steps(status) {
                ui.label(line);
            }
            ui.add_space(8.0);
            ui.label(
                RichText::new(
                    "DICOM series (CT, MR, US; compressed too) and folders of PNG/JPEG images. \
                     Images never leave this machine.",
                )
                .small(),
            );
            if !recent.paths.is_empty() {
                ui.add_space(24.0);
                ui.label(RichText::new("Recent").strong());
                picked = recent_list_ui(ui, recent);
            }
        });
    });
    picked
}

/// Title of the shortcut list (F1).
pub const SHORTCUTS_TITLE: &str = "Keyboard shortcuts";

/// The id of the shortcut list's window (Esc closes the topmost window first).
pub fn shortcuts_window_id() -> egui::Id {
    egui::Id::unique("m2c-shortcuts")
}

/// The shortcut list (F1): every action with its keys, scrolling when the window is too low
/// to show them all.
pub fn shortcuts_window_ui(ctx: &egui::Context, open: &mut bool) {
    // Title bar, frame and margins take about 60 points; leave the menu bar visible too.
    let room = (ctx.content_rect().height() - 100.0).max(120.0);
    egui::Window::new(SHORTCUTS_TITLE)
        .id(shortcuts_window_id())
        .open(open)
        .collapsible(false)
        .resizable(false)
        .constrain(true)
        .show(ctx, |ui| {
            egui::ScrollArea::vertical()
                .max_height(room)
                .show(ui, |ui| {
                    egui::Grid::new("shortcuts").striped(true).show(ui, |ui| {
                        for action in Action::ALL {
                            ui.label(action.label());
                            let keys: Vec<String> = action
                                .shortcuts()
                                .iter()
                                .map(|s| ctx.format_shortcut(s))
                                .collect();
                            ui.label(keys.join(", "));
                            ui.end_row();
                        }
                    });
                });
        });
}
