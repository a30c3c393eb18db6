//! File → Export…: the dialog, and the helper thread that runs the export. What is written
//! where is planned in the annotation layer ([`crate::annotation::export_labels`], shared with
//! `m2c export-labels`). The session travels to the thread and comes back with the result, so
//! the UI keeps drawing but cannot edit while an export runs.

use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use crate::study::{MaskEncoding, Series};

pub use crate::annotation::{ExportFormat, ExportRequest, ExportSummary};

use super::BackgroundEvent;
use super::command::AppCommand;
use super::session::Session;

/// The dialog's own state (kept while it is closed, so it reopens as it was).
#[derive(Debug, Default)]
pub struct ExportDialog {
    pub open: bool,
    pub format: ExportFormat,
    pub label_values: bool,
    pub skip_unlabelled: bool,
    pub allow_irregular: bool,
    pub folder: String,
    /// (done, total) while an export runs.
    pub progress: Option<(usize, usize)>,
    pub running: bool,
    pub result: Option<Result<ExportSummary, String>>,
}

impl ExportDialog {
    pub fn request(&self) -> Option<ExportRequest> {
        let folder = self.folder.trim();
        if folder.is_empty() {
            return None;
        }
        Some(ExportRequest {
            format: self.format,
            encoding: if self.label_values {
                MaskEncoding::LabelValues
            } else {
                MaskEncoding::Binary
            },
            skip_unlabelled: self.skip_unlabelled,
            allow_irregular: self.allow_irregular,
            folder: PathBuf::from(folder),
        })
    }

    /// The dialog window. `can_export` is false while no project is open.
    pub fn export_dialog_ui(
        &mut self,
        ctx: &egui::Context,
        can_export: bool,
        commands: &mut Vec<AppCommand>,
    ) {
        let mut open = self.open;
        egui::Window::new("Export masks")
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .show(ctx, |ui| self.body_ui(ui, can_export, commands));
        self.open = open;
    }

    fn body_ui(&mut self, ui: &mut egui::Ui, can_export: bool, commands: &mut Vec<AppCommand>) {
        ui.add_enabled_ui(!self.running, |ui| {
            ui.horizontal(|ui| {
                ui.radio_value(
                    &mut self.format,
                    ExportFormat::Png,
                    "PNG masks (one per image)",
                );
                ui.radio_value(
                    &mut self.format,
                    ExportFormat::Nifti,
                    "NIfTI (one volume per series)",
                );
            });
            match self.format {
                ExportFormat::Png => {
                    ui.checkbox(&mut self.label_values, "Write label values (else 0/255)");
                    ui.checkbox(&mut self.skip_unlabelled, "Skip images never annotated");
                }
                ExportFormat::Nifti => {
                    ui.checkbox(
                        &mut self.allow_irregular,
                        "Allow uneven slice spacing or tilt",
                    );
                }
            }
            ui.horizontal(|ui| {
                let label = ui.label("Destination folder");
                ui.add(egui::TextEdit::singleline(&mut self.folder).desired_width(260.0))
                    .labelled_by(label.id);
                if ui
                    .button("Choose…")
                    .on_hover_text("Pick the destination folder")
                    .clicked()
                {
                    commands.push(AppCommand::PickExportFolder);
                }
            });
            let request = self.request().filter(|_| can_export);
            let export = ui.add_enabled(request.is_some(), egui::Button::new("Export"));
            if let Some(request) = request
                && export.on_hover_text("Write the masks now").clicked()
            {
                commands.push(AppCommand::StartExport(request));
            }
        });
        if self.running {
            ui.horizontal(|ui| {
                ui.spinner();
                match self.progress {
                    Some((done, total)) if total > 0 => {
                        ui.add(
                            egui::ProgressBar::new(done as f32 / total as f32)
                                .text(format!("{done}/{total}"))
                                .desired_width(200.0),
                        );
                    }
                    _ => {
                        ui.label("Exporting…");
                    }
                }
            });
        }
        match &self.result {
            Some(Ok(summary)) => {
                ui.label(summary.line());
                for failure in &summary.failures {
                    ui.colored_label(ui.visuals().warn_fg_color, failure.to_string());
                }
            }
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, e.as_str());
            }
            None => {}
        }
    }
}

/// Runs `request` on a helper thread. The session comes back in
/// [`BackgroundEvent::ExportFinished`], after progress events; `Err` gives it back at once
/// when the thread cannot start.
pub(super) fn spawn_export(
    session: Session,
    series: Vec<Series>,
    request: ExportRequest,
    tx: Sender<BackgroundEvent>,
    wake: egui::Context,
) -> Result<(), (Box<Session>, std::io::Error)> {
    // Handed over through a slot so that it comes back if the thread cannot start.
    let slot = Arc::new(Mutex::new(Some(session)));
    let thread_slot = Arc::clone(&slot);
    let spawned = std::thread::Builder::new()
        .name("m2c-export".to_owned())
        .spawn(move || {
            let Some(mut session) = thread_slot.lock().ok().and_then(|mut s| s.take()) else {
                return;
            };
            let progress = |done, total| {
                let _ = tx.send(BackgroundEvent::ExportProgress { done, total });
                wake.request_repaint();
            };
            let result = export(&mut session, &series, &request, &progress);
            // The receiver is gone only when the app closed; the journal already holds the work.
            let _ = tx.send(BackgroundEvent::ExportFinished {
                session: Box::new(session),
                result,
            });
            wake.request_repaint();
        });
    match spawned {
        Ok(_) => Ok(()),
        Err(e) => match slot.lock().ok().and_then(|mut s| s.take()) {
            Some(session) => Err((Box::new(session), e)),
            None => Ok(()),
        },
    }
}

fn export(
    session: &mut Session,
    series: &[Series],
    request: &ExportRequest,
    progress: &dyn Fn(usize, usize),
) -> Result<ExportSummary, String> {
    crate::annotation::export_labels(
        &mut session.project,
        series,
        &session.items,
        request,
        progress,
    )
    .map_err(|e| format!("Export failed: {}", error_chain(&e)))
}

/// `error: cause: cause` on one line.
pub(super) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text += &format!(": {cause}");
        source = cause.source();
    }
    text
}
