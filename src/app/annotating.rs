//! The annotation half of [`M2cApp`]: opening the study's project in the background when the
//! series are known, the side panel, the image with its overlay and brush, save retries, and
//! the results of exports.

use std::sync::Arc;

use crate::annotation::ReviewState;

use super::command::AppCommand;
use super::export::ExportDialog;
use super::heatmap::{self, HeatmapOverlay};
use super::labels_panel::{self, ProjectStatus};
use super::overlay::{LabelOverlay, PALETTE_LEN};
use super::session::{self, Session};
use super::toasts::Toasts;
use super::tools::ToolState;
use super::{BackgroundEvent, M2cApp, panels};

/// Seconds between retries of a save that failed.
const SAVE_RETRY_SECS: f64 = 5.0;

impl M2cApp {
    /// The annotation session (project and slice items), when one is open and not exporting.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    pub fn session_mut(&mut self) -> Option<&mut Session> {
        self.session.as_mut()
    }

    pub fn tools(&self) -> &ToolState {
        &self.tools
    }

    pub fn toasts(&self) -> &Toasts {
        &self.toasts
    }

    pub fn export_dialog(&self) -> &ExportDialog {
        &self.export
    }

    pub fn export_dialog_mut(&mut self) -> &mut ExportDialog {
        &mut self.export
    }

    pub fn import_dialog(&self) -> &super::import::ImportDialog {
        &self.import
    }

    pub fn import_dialog_mut(&mut self) -> &mut super::import::ImportDialog {
        &mut self.import
    }

    /// Ends a drag in progress and writes whatever the journal could not take yet; called when
    /// the window closes. The project stays open (its lock is released when the app drops).
    pub fn close_project(&mut self) {
        self.end_stroke();
        if let Some(s) = self.session.as_mut()
            && !s.project.is_saved()
            && let Err(e) = s.project.flush()
        {
            tracing::error!("edits could not be saved before exit: {e}");
        }
    }

    /// Where the project stands (status bar and side panel).
    pub fn project_status(&self) -> ProjectStatus {
        if let Some(s) = &self.session {
            if let Some(reason) = s.project.read_only_reason() {
                return ProjectStatus::ReadOnly {
                    reason: reason.to_owned(),
                    root: s.project.root().to_path_buf(),
                };
            }
            ProjectStatus::Ready {
                saved: s.project.is_saved(),
                root: s.project.root().to_path_buf(),
            }
        } else if self.export.running {
            ProjectStatus::Exporting
        } else if self.import.running {
            ProjectStatus::Importing
        } else if self.project_opening {
            ProjectStatus::Opening
        } else if let Some(e) = &self.project_error {
            ProjectStatus::Failed(e.clone())
        } else {
            ProjectStatus::None
        }
    }

    /// Opens (or re-registers) the project once discovery has produced series it has not
    /// seen. The session moves to a helper thread and comes back in
    /// [`BackgroundEvent::SessionOpened`].
    pub(super) fn open_session_if_needed(&mut self, ctx: &egui::Context) {
        let Some(request) = self.study.discovered() else {
            return;
        };
        if self.project_opening
            || self.export.running
            || self.import.running
            || self.session_request == Some(request)
            || self.study.series().is_empty()
        {
            return;
        }
        let Some(study) = self.opened.first().cloned() else {
            return;
        };
        self.end_stroke();
        self.project_opening = true;
        self.project_error = None;
        let series = self.study.series().to_vec();
        let reuse = self.session.take();
        let data_dir = self.data_dir.clone();
        let tx = self.tx.clone();
        let wake = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("m2c-project".to_owned())
            .spawn(move || {
                let result = session::open_session(&study, &series, data_dir.as_deref(), reuse)
                    .map(|(s, report)| (Box::new(s), report))
                    .map_err(|e| e.to_string());
                let _ = tx.send(BackgroundEvent::SessionOpened { request, result });
                wake.request_repaint();
            });
        if let Err(e) = spawned {
            self.project_opening = false;
            self.session_request = Some(request);
            self.project_error = Some(format!("could not start the project thread: {e}"));
        }
    }

    /// Applies a project or export result from a helper thread.
    pub(super) fn apply_annotation_event(&mut self, event: BackgroundEvent) {
        match event {
            BackgroundEvent::SessionOpened { request, result } => {
                self.project_opening = false;
                self.session_request = Some(request);
                match result {
                    Ok((session, report)) => {
                        if report.used_fallback {
                            self.toasts.info(format!(
                                "The study folder is read-only: annotations are saved in {}",
                                session.project.root().display()
                            ));
                        }
                        for warning in report.warnings {
                            self.toasts.warn(warning);
                        }
                        self.session = Some(*session);
                    }
                    Err(e) => {
                        self.toasts
                            .error(format!("Could not open the annotation project: {e}"));
                        self.project_error = Some(e);
                    }
                }
            }
            BackgroundEvent::ExportProgress { done, total } => {
                self.export.progress = Some((done, total));
            }
            BackgroundEvent::ExportFinished { session, result } => {
                self.session = Some(*session);
                self.export.running = false;
                self.last_overlay = None;
                match &result {
                    Ok(summary) if summary.failures.is_empty() => self.toasts.info(summary.line()),
                    Ok(summary)
                        if summary
                            .failures
                            .iter()
                            .any(crate::annotation::ExportFailure::is_irregular_geometry) =>
                    {
                        self.toasts.warn(format!(
                            "{}. {}",
                            summary.line(),
                            super::export::IRREGULAR_HINT
                        ));
                    }
                    Ok(summary) => self.toasts.warn(summary.line()),
                    Err(e) => self.toasts.error(e.clone()),
                }
                self.export.result = Some(result);
            }
            BackgroundEvent::ExportFolderPicked(folder) => {
                self.export.folder = folder.display().to_string();
            }
            BackgroundEvent::ImportFinished { session, result } => {
                self.finish_import(*session, result);
            }
            BackgroundEvent::ImportPathPicked(path) => {
                self.import.path = path.display().to_string();
            }
            BackgroundEvent::Environment(_) | BackgroundEvent::PathsPicked(_) => {}
        }
    }

    /// A failed journal write keeps the edits in memory; try again every few seconds.
    pub(super) fn retry_failed_save(&mut self, ctx: &egui::Context) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        // A compaction finished on its helper thread: adopt its snapshot now. A failed one
        // loses nothing (the journal holds every edit) and is retried by a later edit.
        if session.project.is_compacting() {
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
            let _ = session.project.poll_compaction();
        }
        if session.project.is_saved() || session.project.is_stroking() {
            return;
        }
        let now = ctx.input(|i| i.time);
        ctx.request_repaint_after(std::time::Duration::from_secs_f64(SAVE_RETRY_SECS));
        if now - self.last_flush_retry < SAVE_RETRY_SECS {
            return;
        }
        self.last_flush_retry = now;
        match session.project.flush() {
            Ok(()) => self
                .toasts
                .info("Saved: the edits that could not be written are now on disk"),
            Err(e) => tracing::warn!("saving still fails, will retry: {e}"),
        }
    }

    /// One line per series: the state of its image, or how many slices carry labels.
    pub(super) fn series_badges(&self) -> Vec<String> {
        let Some(session) = &self.session else {
            return Vec::new();
        };
        session
            .items
            .iter()
            .map(|items| {
                let states: Vec<ReviewState> = items
                    .iter()
                    .filter_map(|&id| session.project.item(id).map(|i| i.state()))
                    .collect();
                match states.as_slice() {
                    [] => String::new(),
                    [one] => {
                        let hue = items
                            .first()
                            .and_then(|&id| session.project.item(id))
                            .and_then(|i| i.hue());
                        match hue {
                            Some(h) => format!("{} · HUE {h:.2}", state_name(*one)),
                            None => state_name(*one).to_owned(),
                        }
                    }
                    many => {
                        let done = many
                            .iter()
                            .filter(|s| **s != ReviewState::Unlabelled)
                            .count();
                        format!("{done}/{} slices annotated", many.len())
                    }
                }
            })
            .collect()
    }

    /// The right panel: annotation tools and classes, then the model status.
    pub(super) fn side_panel_ui(&mut self, ui: &mut egui::Ui, commands: &mut Vec<AppCommand>) {
        let classes = self
            .session
            .as_ref()
            .map(Session::classes)
            .unwrap_or_default();
        let status = self.project_status();
        panels::side_panel_ui(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                labels_panel::annotation_panel_ui(
                    ui,
                    &classes,
                    &status,
                    &mut self.tools,
                    &mut self.overlay,
                    &mut self.class_editor,
                    commands,
                );
                ui.add_space(12.0);
                self.learning_panel_ui(ui, commands);
                ui.add_space(12.0);
                panels::model_section_ui(ui, &self.model_status);
            });
        });
    }

    /// The image with its masks, the brush outline, and the brush input.
    pub(super) fn image_ui(&mut self, ui: &mut egui::Ui, commands: &mut Vec<AppCommand>) {
        let overlay = self.current_overlay();
        let colour = self
            .session
            .as_ref()
            .and_then(|s| s.project.class(self.tools.class))
            .map_or([255, 255, 255], |c| c.colour);
        let can_paint = self.session.is_some() && self.study.shown().is_some();
        let heatmap = self.current_heatmap();
        let heatmap_on = self.learning.heatmap;
        egui::CentralPanel::default()
            .frame(egui::Frame::NONE)
            .show(ui, |ui| {
                if let Some(hit) = self.study.image_ui(ui, overlay.as_ref()) {
                    if let Some(h) = &heatmap {
                        let size = [h.width as usize, h.height as usize];
                        let image_rect = hit.transform.image_rect_ui(hit.canvas, size);
                        ui.painter_at(hit.canvas).add(heatmap::paint_callback(
                            hit.canvas,
                            image_rect,
                            h.clone(),
                        ));
                    }
                    if heatmap_on {
                        heatmap_legend_ui(ui, hit.canvas, heatmap.is_some());
                    }
                    self.tools.image_input(ui, &hit, can_paint, commands);
                    if can_paint {
                        self.tools.cursor_ui(ui, &hit, colour);
                    }
                }
            });
    }

    /// The overlay of the slice on screen, if masks are shown and the slice is an item.
    pub(super) fn current_overlay(&mut self) -> Option<LabelOverlay> {
        if !self.overlay.visible {
            return None;
        }
        let shown = self.study.shown()?;
        let Some(session) = self.session.as_mut() else {
            // An export holds the session: keep showing what was there.
            return self
                .last_overlay
                .as_ref()
                .filter(|(at, _)| *at == shown)
                .map(|(_, o)| self.with_settings(o.clone()));
        };
        let item = session.item_at(shown.0, shown.1)?;
        let labels = match session.overlay_labels(item) {
            Ok(labels) => labels,
            Err(e) => {
                let message = format!("Could not load the masks of this image: {e}");
                if self.last_overlay_error.as_ref() != Some(&message) {
                    self.toasts.error(message.clone());
                    self.last_overlay_error = Some(message);
                }
                return None;
            }
        };
        let mut palette = [[0.0f32; 4]; PALETTE_LEN];
        for class in session.project.classes() {
            if let Some(slot) = palette.get_mut(usize::from(class.value)) {
                let [r, g, b] = class.colour;
                *slot = egui::Rgba::from(egui::Color32::from_rgb(r, g, b)).to_array();
            }
        }
        let overlay = LabelOverlay {
            width: labels.width,
            height: labels.height,
            labels: labels.labels,
            generation: labels.generation,
            palette: Arc::new(palette),
            opacity: self.overlay.opacity,
            outline: self.overlay.outline,
        };
        Some(overlay)
    }

    /// The uncertainty map of the slice on screen, when the heatmap is on and one exists.
    fn current_heatmap(&self) -> Option<HeatmapOverlay> {
        if !self.learning.heatmap {
            return None;
        }
        let (series, index) = self.study.shown()?;
        let item = self.session.as_ref()?.item_at(series, index)?;
        let map = self.learning.probability(item)?;
        Some(HeatmapOverlay {
            width: map.width,
            height: map.height,
            probability: Arc::clone(&map.values),
            generation: map.generation,
            opacity: heatmap::DEFAULT_OPACITY,
        })
    }

    fn with_settings(&self, mut o: LabelOverlay) -> LabelOverlay {
        o.opacity = self.overlay.opacity;
        o.outline = self.overlay.outline;
        o
    }
}

/// The heatmap's legend in the image's lower left corner (or why there is no map).
fn heatmap_legend_ui(ui: &egui::Ui, canvas: egui::Rect, has_map: bool) {
    egui::Area::new(egui::Id::unique("m2c heatmap legend"))
        .fixed_pos(canvas.left_bottom() + egui::vec2(12.0, -96.0))
        .order(egui::Order::Foreground)
        .show(ui.ctx(), |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                if has_map {
                    heatmap::legend_ui(ui);
                } else {
                    ui.label("No uncertainty map for this image: learn a concept (L) first");
                }
            });
        });
}

fn state_name(state: ReviewState) -> &'static str {
    match state {
        ReviewState::Unlabelled => "unlabelled",
        ReviewState::Predicted => "predicted",
        ReviewState::Flagged => "flagged for review",
        ReviewState::AutoAccepted => "auto-accepted",
        ReviewState::Accepted => "accepted",
        ReviewState::Corrected => "annotated",
    }
}
