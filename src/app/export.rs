//! File → Export…: masks as PNG files (one per image, named after it) or as one NIfTI label
//! volume per series, written on a helper thread. The session travels to that thread and comes
//! back with the result, so the UI keeps drawing but cannot edit while an export runs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::annotation::{ItemId, ReviewState};
use crate::study::{self, MaskEncoding, Series, SeriesKind, StudyError, VolumeGeometry};

use super::BackgroundEvent;
use super::command::AppCommand;
use super::session::Session;

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportFormat {
    /// One PNG per image or slice.
    #[default]
    Png,
    /// One `.nii.gz` label volume per series, on the series' patient grid.
    Nifti,
}

/// Everything the export thread needs besides the session.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub format: ExportFormat,
    pub encoding: MaskEncoding,
    /// Skip images nobody has annotated (their state is still "unlabelled").
    pub skip_unlabelled: bool,
    /// Export series whose slices are unevenly spaced or tilted (NIfTI).
    pub allow_irregular: bool,
    pub folder: PathBuf,
}

/// What an export wrote.
#[derive(Debug, Clone, Default)]
pub struct ExportSummary {
    pub files: usize,
    pub skipped: usize,
    /// One line per series or image that could not be written.
    pub failures: Vec<String>,
    pub folder: PathBuf,
    pub elapsed_secs: f64,
}

impl ExportSummary {
    /// One line for the dialog and the toast.
    pub fn line(&self) -> String {
        let mut line = format!(
            "Wrote {} file{} to {} in {:.1} s",
            self.files,
            if self.files == 1 { "" } else { "s" },
            self.folder.display(),
            self.elapsed_secs
        );
        if self.skipped > 0 {
            line += &format!("; {} unlabelled image(s) skipped", self.skipped);
        }
        if !self.failures.is_empty() {
            line += &format!("; {} failed", self.failures.len());
        }
        line
    }
}

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
                    ui.colored_label(ui.visuals().warn_fg_color, failure.as_str());
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
    let start = Instant::now();
    std::fs::create_dir_all(&request.folder).map_err(|e| {
        format!(
            "Could not create the destination folder ({e}): {}",
            request.folder.display()
        )
    })?;
    let mut summary = match request.format {
        ExportFormat::Png => export_png(session, series, request, progress)?,
        ExportFormat::Nifti => export_nifti(session, series, request, progress),
    };
    summary.folder = request.folder.clone();
    summary.elapsed_secs = start.elapsed().as_secs_f64();
    Ok(summary)
}

fn export_png(
    session: &mut Session,
    series: &[Series],
    request: &ExportRequest,
    progress: &dyn Fn(usize, usize),
) -> Result<ExportSummary, String> {
    let mut summary = ExportSummary::default();
    let mut names = UniqueNames::default();
    let mut targets: Vec<(ItemId, PathBuf)> = Vec::new();
    for (k, s) in series.iter().enumerate() {
        for (i, frame) in s.frames.iter().enumerate() {
            let Some(item) = session.item_at(k, i) else {
                continue;
            };
            let unlabelled = session
                .project
                .item(item)
                .is_none_or(|it| it.state() == ReviewState::Unlabelled);
            if request.skip_unlabelled && unlabelled {
                summary.skipped += 1;
                continue;
            }
            let multi_frame = s.frames.iter().filter(|f| f.path == frame.path).count() > 1;
            let path = study::mask_path_for(
                &frame.path,
                multi_frame.then_some(frame.frame),
                &request.folder,
            );
            targets.push((item, names.claim(path)));
        }
    }
    progress(0, targets.len());
    let sidecar = request.folder.join("m2c_masks.json");
    session
        .project
        .export_png(&targets, request.encoding, &sidecar)
        .map_err(|e| format!("Export failed: {e}"))?;
    progress(targets.len(), targets.len());
    summary.files = targets.len();
    Ok(summary)
}

fn export_nifti(
    session: &mut Session,
    series: &[Series],
    request: &ExportRequest,
    progress: &dyn Fn(usize, usize),
) -> ExportSummary {
    let mut summary = ExportSummary::default();
    let mut names = UniqueNames::default();
    for (k, s) in series.iter().enumerate() {
        progress(k, series.len());
        let Some(items) = session.items.get(k).filter(|v| v.len() == s.len()).cloned() else {
            summary
                .failures
                .push(format!("Series {}: not part of the project", k + 1));
            continue;
        };
        let geometry = match s.export_geometry(request.allow_irregular) {
            Ok(g) => g.clone(),
            Err(StudyError::NoGeometry { .. })
                if s.kind == SeriesKind::Raster || s.geometry.is_none() =>
            {
                VolumeGeometry::unit_grid([s.width as usize, s.height as usize, s.len()])
            }
            Err(e) => {
                summary.failures.push(format!("Series {}: {e}", k + 1));
                continue;
            }
        };
        let stem = s.first_path().and_then(Path::file_stem).map_or_else(
            || format!("series{}", k + 1),
            |n| n.to_string_lossy().into_owned(),
        );
        let path = names.claim(request.folder.join(format!("{stem}_labels.nii.gz")));
        let provenance = study::Provenance::for_series(s, false);
        match session
            .project
            .export_nifti(&items, &geometry, &path, provenance)
        {
            Ok(()) => summary.files += 1,
            Err(e) => summary.failures.push(format!("Series {}: {e}", k + 1)),
        }
    }
    progress(series.len(), series.len());
    summary
}

/// Output paths already handed out: a second `a.png` becomes `a_2.png`.
#[derive(Debug, Default)]
struct UniqueNames {
    taken: HashSet<PathBuf>,
}

impl UniqueNames {
    fn claim(&mut self, path: PathBuf) -> PathBuf {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (stem, ext) = match name.find('.') {
            Some(dot) => (name[..dot].to_owned(), name[dot..].to_owned()),
            None => (name.clone(), String::new()),
        };
        let mut candidate = path.clone();
        let mut n = 2;
        while self.taken.contains(&candidate) {
            candidate = path.with_file_name(format!("{stem}_{n}{ext}"));
            n += 1;
        }
        self.taken.insert(candidate.clone());
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_get_a_number_before_the_extension() {
        let mut names = UniqueNames::default();
        let p = PathBuf::from("/out/img.nii.gz");
        assert_eq!(names.claim(p.clone()), p);
        assert_eq!(names.claim(p.clone()), PathBuf::from("/out/img_2.nii.gz"));
        assert_eq!(names.claim(p), PathBuf::from("/out/img_3.nii.gz"));
    }
}
