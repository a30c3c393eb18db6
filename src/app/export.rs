//! File → Export…: the dialog, and the helper thread that runs the export. What is written
//! where is planned in the annotation layer ([`crate::annotation::export_labels`], shared with
//! `m2c export-labels`). The session travels to the thread and comes back with the result, so
//! the UI keeps drawing but cannot edit while an export runs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use crate::annotation::{LabelClass, SegExportOptions, SegmentCoding};
use crate::study::seg::{Code, SegOptions};
use crate::study::{MaskEncoding, Series};

pub use crate::annotation::{ExportFormat, ExportRequest, ExportSummary};

use super::command::AppCommand;
use super::session::Session;
use super::{BackgroundEvent, M2cApp};

/// Said under a NIfTI export that refused series for their geometry.
pub const IRREGULAR_HINT: &str = "To export these series anyway, tick \"Allow uneven slice \
spacing or tilt\" (NIfTI) and export again: tilt is kept exactly (a sheared affine), uneven \
spacing becomes the mean step.";

/// The dialog's own state (kept while it is closed, so it reopens as it was).
#[derive(Debug, Default)]
pub struct ExportDialog {
    pub open: bool,
    pub format: ExportFormat,
    pub label_values: bool,
    pub skip_unlabelled: bool,
    pub allow_irregular: bool,
    /// DICOM SEG: copy no patient or study attribute.
    pub deidentify: bool,
    /// DICOM SEG: per class value, the category and type codes as `SCHEME:CODE:MEANING`
    /// text, and the project's saved coding they start from.
    pub codes: BTreeMap<u8, CodeFields>,
    pub folder: String,
    /// (done, total) while an export runs.
    pub progress: Option<(usize, usize)>,
    pub running: bool,
    pub result: Option<Result<ExportSummary, String>>,
}

/// The code fields of one class in the SEG options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeFields {
    pub category: String,
    pub property_type: String,
    pub saved: SegmentCoding,
}

impl CodeFields {
    fn from_coding(coding: SegmentCoding) -> Self {
        Self {
            category: coding.category.to_string(),
            property_type: coding.property_type.to_string(),
            saved: coding,
        }
    }
}

impl ExportDialog {
    /// Fills the SEG code fields from the project's saved codings (Tissue/Tissue by default).
    pub fn load_codes(&mut self, saved: &BTreeMap<u8, SegmentCoding>, classes: &[LabelClass]) {
        self.codes = classes
            .iter()
            .map(|c| {
                let coding = saved.get(&c.value).cloned().unwrap_or_default();
                (c.value, CodeFields::from_coding(coding))
            })
            .collect();
    }

    /// The codings typed in the SEG options, or the first field that is not a code.
    fn seg_codes(&self) -> Result<BTreeMap<u8, SegmentCoding>, String> {
        let mut out = BTreeMap::new();
        for (&value, fields) in &self.codes {
            let parse = |text: &str, what: &str| {
                Code::parse(text).ok_or_else(|| {
                    format!("Label {value}: the {what} must read SCHEME:CODE:MEANING, e.g. SCT:85756007:Tissue")
                })
            };
            let coding = SegmentCoding {
                category: parse(&fields.category, "category")?,
                property_type: parse(&fields.property_type, "type")?,
                imported: fields.saved.imported.clone(),
            };
            if coding != fields.saved {
                out.insert(value, coding);
            }
        }
        Ok(out)
    }

    pub fn request(&self) -> Option<ExportRequest> {
        let folder = self.folder.trim();
        if folder.is_empty() {
            return None;
        }
        let codes = if self.format == ExportFormat::Seg {
            self.seg_codes().ok()?
        } else {
            BTreeMap::new()
        };
        Some(ExportRequest {
            format: self.format,
            encoding: if self.label_values {
                MaskEncoding::LabelValues
            } else {
                MaskEncoding::Binary
            },
            skip_unlabelled: self.skip_unlabelled,
            allow_irregular: self.allow_irregular,
            seg: SegExportOptions {
                object: SegOptions {
                    deidentify: self.deidentify,
                    ..SegOptions::default()
                },
                codes,
            },
            folder: PathBuf::from(folder),
        })
    }

    /// The dialog window. `can_export` is false while no project is open; `classes` are the
    /// project's, for the SEG codes.
    pub fn export_dialog_ui(
        &mut self,
        ctx: &egui::Context,
        can_export: bool,
        classes: &[LabelClass],
        commands: &mut Vec<AppCommand>,
    ) {
        let mut open = self.open;
        egui::Window::new("Export masks")
            .id(window_id())
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .show(ctx, |ui| self.body_ui(ui, can_export, classes, commands));
        self.open = open;
    }

    fn seg_options_ui(&mut self, ui: &mut egui::Ui, classes: &[LabelClass]) {
        ui.checkbox(
            &mut self.deidentify,
            "De-identify (no patient or study attributes; UIDs kept)",
        );
        egui::CollapsingHeader::new("Segment codes (category / type)").show(ui, |ui| {
            egui::Grid::new("m2c seg codes")
                .num_columns(3)
                .show(ui, |ui| {
                    for class in classes {
                        let fields = self
                            .codes
                            .entry(class.value)
                            .or_insert_with(|| CodeFields::from_coding(SegmentCoding::default()));
                        ui.label(&class.name);
                        ui.add(
                            egui::TextEdit::singleline(&mut fields.category).desired_width(180.0),
                        )
                        .on_hover_text("Segmented property category, SCHEME:CODE:MEANING");
                        ui.add(
                            egui::TextEdit::singleline(&mut fields.property_type)
                                .desired_width(180.0),
                        )
                        .on_hover_text("Segmented property type, e.g. SCT:10200004:Liver");
                        ui.end_row();
                    }
                });
        });
        if let Err(e) = self.seg_codes() {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
    }

    fn body_ui(
        &mut self,
        ui: &mut egui::Ui,
        can_export: bool,
        classes: &[LabelClass],
        commands: &mut Vec<AppCommand>,
    ) {
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
                ui.radio_value(
                    &mut self.format,
                    ExportFormat::Seg,
                    "DICOM SEG (one per DICOM series)",
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
                ExportFormat::Seg => self.seg_options_ui(ui, classes),
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
                if summary
                    .failures
                    .iter()
                    .any(crate::annotation::ExportFailure::is_irregular_geometry)
                {
                    ui.label(IRREGULAR_HINT);
                }
            }
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, e.as_str());
            }
            None => {}
        }
    }
}

impl M2cApp {
    /// Opens the dialog with the SEG codes the project has saved.
    pub(super) fn open_export_dialog(&mut self) {
        self.export.open = true;
        if let Some(session) = &self.session {
            let classes = session.classes();
            match session.project.segment_codings() {
                Ok(saved) => self.export.load_codes(&saved, &classes),
                Err(e) => self
                    .toasts
                    .warn(format!("The saved segment codes could not be read: {e}")),
            }
        }
    }
}

/// The id of the dialog's window (Esc closes the topmost window first).
pub fn window_id() -> egui::Id {
    egui::Id::unique("m2c-export-dialog")
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
