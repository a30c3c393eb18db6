//! File → Import labels… and drag-and-drop of a DICOM SEG or NIfTI file onto an open study:
//! the dialog, and the helper thread that runs the import. What is read and how it becomes
//! labels is decided in the annotation layer ([`crate::annotation::import_labels`], shared with
//! `m2c import-labels`); the session travels to the thread and comes back with the result.

use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use crate::annotation::{ImportRequest, ImportSummary, LabelClass, LabelSource};
use crate::study::Series;

use super::command::AppCommand;
use super::export::error_chain;
use super::session::Session;
use super::{BackgroundEvent, M2cApp};

/// The dialog's own state (kept while it is closed).
#[derive(Debug, Default)]
pub struct ImportDialog {
    pub open: bool,
    /// A SEG or NIfTI file, or a folder of PNG masks.
    pub path: String,
    /// PNG masks of 0/255 become this class (`None`: the first class).
    pub binary_class: Option<u8>,
    pub running: bool,
    pub result: Option<Result<ImportSummary, String>>,
}

impl ImportDialog {
    pub fn request(&self) -> Option<ImportRequest> {
        let path = self.path.trim();
        (!path.is_empty()).then(|| ImportRequest {
            path: PathBuf::from(path),
            series: None,
            binary_class: self.binary_class,
        })
    }

    /// The dialog window. `classes` are the project's (empty while none is open).
    pub fn import_dialog_ui(
        &mut self,
        ctx: &egui::Context,
        classes: &[LabelClass],
        commands: &mut Vec<AppCommand>,
    ) {
        let mut open = self.open;
        egui::Window::new("Import labels")
            .id(window_id())
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .show(ctx, |ui| self.body_ui(ui, classes, commands));
        self.open = open;
    }

    fn body_ui(
        &mut self,
        ui: &mut egui::Ui,
        classes: &[LabelClass],
        commands: &mut Vec<AppCommand>,
    ) {
        ui.label(
            "A DICOM SEG or NIfTI label volume made for this study, or a folder of PNG masks \
             named after the images. Imported masks replace the masks of their labels on \
             those images and count as labelled.",
        );
        ui.add_enabled_ui(!self.running, |ui| {
            ui.horizontal(|ui| {
                let label = ui.label("Labels");
                ui.add(egui::TextEdit::singleline(&mut self.path).desired_width(260.0))
                    .labelled_by(label.id);
                if ui
                    .button("File…")
                    .on_hover_text("Pick a DICOM SEG or NIfTI file")
                    .clicked()
                {
                    commands.push(AppCommand::PickImportPath { folder: false });
                }
                if ui
                    .button("Folder…")
                    .on_hover_text("Pick a folder of PNG masks")
                    .clicked()
                {
                    commands.push(AppCommand::PickImportPath { folder: true });
                }
            });
            if !classes.is_empty() {
                let selected = self
                    .binary_class
                    .and_then(|v| classes.iter().find(|c| c.value == v))
                    .or(classes.first())
                    .map_or_else(String::new, |c| c.name.clone());
                egui::ComboBox::from_label("Black-and-white PNG masks become")
                    .selected_text(selected)
                    .show_ui(ui, |ui| {
                        for c in classes {
                            ui.selectable_value(&mut self.binary_class, Some(c.value), &c.name);
                        }
                    });
            }
            let request = self.request().filter(|_| !classes.is_empty());
            let import = ui.add_enabled(request.is_some(), egui::Button::new("Import"));
            if let Some(request) = request
                && import
                    .on_hover_text("Import the labels now (one undo step)")
                    .clicked()
            {
                commands.push(AppCommand::StartImport(request));
            }
        });
        if self.running {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Importing…");
            });
        }
        match &self.result {
            Some(Ok(summary)) => {
                ui.label(summary.line());
            }
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, e.as_str());
            }
            None => {}
        }
    }
}

/// Runs `request` on a helper thread; the session comes back in
/// [`BackgroundEvent::ImportFinished`]. `Err` gives it back at once when the thread cannot
/// start.
pub(super) fn spawn_import(
    session: Session,
    series: Vec<Series>,
    request: ImportRequest,
    tx: Sender<BackgroundEvent>,
    wake: egui::Context,
) -> Result<(), (Box<Session>, std::io::Error)> {
    let slot = Arc::new(Mutex::new(Some(session)));
    let thread_slot = Arc::clone(&slot);
    let spawned = std::thread::Builder::new()
        .name("m2c-import".to_owned())
        .spawn(move || {
            let Some(mut session) = thread_slot.lock().ok().and_then(|mut s| s.take()) else {
                return;
            };
            let result = crate::annotation::import_labels(
                &mut session.project,
                &series,
                &session.items,
                &request,
            )
            .map_err(|e| format!("Import failed: {}", error_chain(&e)));
            session.touch();
            let _ = tx.send(BackgroundEvent::ImportFinished {
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

impl M2cApp {
    /// Files dropped on the window: DICOM SEG and NIfTI files are imported as labels of the
    /// open study; anything else opens as a study.
    pub(super) fn drop_files(&mut self, ctx: &egui::Context, dropped: Vec<PathBuf>) {
        let (labels, studies): (Vec<PathBuf>, Vec<PathBuf>) = dropped.into_iter().partition(|p| {
            matches!(
                LabelSource::detect(p),
                Some(LabelSource::Seg | LabelSource::Nifti)
            )
        });
        if !studies.is_empty() {
            self.open_paths(ctx, studies);
        }
        for path in labels {
            if self.session.is_none() && !self.export.running && !self.import.running {
                self.toasts.warn(format!(
                    "Open the study first, then drop its labels: {}",
                    path.display()
                ));
                continue;
            }
            let request = ImportRequest {
                path,
                series: None,
                binary_class: None,
            };
            self.import.path = request.path.display().to_string();
            self.start_import(ctx, request);
        }
    }

    pub(super) fn start_import(&mut self, ctx: &egui::Context, request: ImportRequest) {
        if self.import.running || self.export.running {
            self.toasts
                .warn("Another import or export is running; try again when it is done");
            return;
        }
        self.end_stroke();
        self.last_overlay = self.study.shown().zip(self.current_overlay());
        let Some(session) = self.session.take() else {
            self.explain_no_session();
            return;
        };
        self.import.running = true;
        self.import.result = None;
        let series = self.study.series().to_vec();
        if let Err((session, e)) =
            spawn_import(session, series, request, self.tx.clone(), ctx.clone())
        {
            self.session = Some(*session);
            self.import.running = false;
            self.toasts
                .error(format!("Could not start the import: {e}"));
        }
    }

    /// The import ended: the session comes back, with the result.
    pub(super) fn finish_import(
        &mut self,
        session: Session,
        result: Result<ImportSummary, String>,
    ) {
        self.session = Some(session);
        self.import.running = false;
        self.last_overlay = None;
        match &result {
            Ok(summary) => self.toasts.info(summary.line()),
            Err(e) => self.toasts.error(e.clone()),
        }
        self.import.result = Some(result);
    }

    /// Shows the file or folder dialog on a helper thread so the UI keeps drawing.
    pub(super) fn pick_import_path(&self, ctx: &egui::Context, folder: bool) {
        let tx = self.tx.clone();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("m2c-file-dialog".to_owned())
            .spawn(move || {
                let dialog = rfd::FileDialog::new().set_title("Import labels");
                let picked = if folder {
                    dialog.pick_folder()
                } else {
                    dialog
                        .add_filter("DICOM SEG or NIfTI", &["dcm", "nii", "gz"])
                        .add_filter("Any file", &["*"])
                        .pick_file()
                };
                if let Some(path) = picked {
                    let _ = tx.send(BackgroundEvent::ImportPathPicked(path));
                    ctx.request_repaint();
                }
            });
        if let Err(e) = spawned {
            tracing::error!("could not start the file dialog thread: {e}");
        }
    }
}

/// The id of the dialog's window (Esc closes the topmost window first).
pub fn window_id() -> egui::Id {
    egui::Id::unique("m2c-import-dialog")
}
