//! [`AppCommand`]: what the UI asks for during a frame, applied in one place at its end, and
//! [`Action`]s (menus and shortcuts). Edits go to the annotation [`Session`]; the store journals
//! each accepted one before returning, and any error becomes a toast while the document stays
//! in memory.

use crate::annotation::{AnnotationError, ItemId, LabelClass, Project};
use crate::study::WindowPreset;

use super::M2cApp;
use super::export::{self, ExportRequest};
use super::keymap::Action;
use super::session::{self, Session};
use super::tools::ToolKind;

/// A request from the UI, applied after the frame is drawn.
#[derive(Debug, Clone)]
pub enum AppCommand {
    Perform(Action),
    /// Show the first slice of this series.
    SelectSeries(usize),
    /// The primary button went down on the image (`image` pixels).
    BeginStroke {
        point_image: [f32; 2],
    },
    /// The pointer moved while painting (`image` pixels, in order).
    StrokeTo {
        points_image: Vec<[f32; 2]>,
    },
    /// The button was released: the stroke becomes one undo step, saved.
    EndStroke,
    /// Draw with the class of this value.
    SelectClass(u8),
    /// Change a class (name, colour) or add it; undoable.
    SetClass(LabelClass),
    /// Add a class with the next free value.
    AddClass,
    PickExportFolder,
    StartExport(ExportRequest),
    /// Show the file (SEG, NIfTI) or folder (PNG masks) dialog of File → Import labels….
    PickImportPath {
        folder: bool,
    },
    StartImport(crate::annotation::ImportRequest),
    /// Stop the running search or prediction.
    CancelLearning,
    /// Segment the object inside this box (image pixels: x0, y0, x1, y1).
    SegmentBox {
        box_image: [f32; 4],
    },
    /// Settings changed in the dialog: save them and reload the model.
    ApplySettings(Box<crate::engine::ModelSettings>),
    /// Do what an engine failure suggests (fewer images, f16, CPU, reload).
    ApplyRemedy(crate::engine::Remedy),
}

/// What an edit changed, for the overlay.
enum Touch<'a> {
    /// Possibly anything: rebuild the label map.
    All,
    /// Brush stamps along these points of `item`.
    Stroke {
        item: ItemId,
        points_image: &'a [[f32; 2]],
        continues: bool,
    },
    /// No pixel (saving a stroke, changing a class).
    Nothing,
}

/// Opacity step of `,` and `.`.
const OPACITY_STEP: f32 = 0.1;

impl M2cApp {
    pub(super) fn apply_command(&mut self, ctx: &egui::Context, command: AppCommand) {
        match command {
            AppCommand::Perform(action) => self.perform(ctx, action),
            AppCommand::SelectSeries(series) => {
                self.end_stroke();
                self.study.select(series, 0, ctx, &self.study_tx);
            }
            AppCommand::BeginStroke { point_image } => self.begin_stroke(point_image),
            AppCommand::StrokeTo { points_image } => self.stroke_to(&points_image),
            AppCommand::EndStroke => {
                self.end_stroke();
            }
            AppCommand::SelectClass(value) => self.tools.class = value,
            AppCommand::SetClass(class) => {
                self.edit("Changing the label", Touch::Nothing, |p| p.set_class(class));
            }
            AppCommand::AddClass => {
                let Some(class) = self.session.as_ref().and_then(Session::next_class) else {
                    return;
                };
                let value = class.value;
                if self.edit("Adding a label", Touch::Nothing, |p| p.set_class(class)) {
                    self.tools.class = value;
                }
            }
            AppCommand::PickExportFolder => self.pick_export_folder(ctx),
            AppCommand::StartExport(request) => self.start_export(ctx, request),
            AppCommand::PickImportPath { folder } => self.pick_import_path(ctx, folder),
            AppCommand::StartImport(request) => self.start_import(ctx, request),
            AppCommand::CancelLearning => self.learning.cancel(),
            AppCommand::SegmentBox { box_image } => self.segment_box(box_image),
            AppCommand::ApplySettings(settings) => self.apply_settings(ctx, *settings),
            AppCommand::ApplyRemedy(remedy) => self.apply_remedy(ctx, remedy),
        }
    }

    pub(super) fn perform(&mut self, ctx: &egui::Context, action: Action) {
        match action {
            Action::OpenFolder => self.pick_paths(ctx, true),
            Action::OpenFiles => self.pick_paths(ctx, false),
            Action::Export => self.open_export_dialog(),
            Action::ImportLabels => self.import.open = true,
            Action::Save => self.save_now(),
            Action::Undo => {
                self.edit("Undo", Touch::All, Project::undo);
            }
            Action::Redo => {
                self.edit("Redo", Touch::All, Project::redo);
            }
            Action::NextImage
            | Action::PreviousImage
            | Action::NextSlice
            | Action::PreviousSlice => {
                self.end_stroke();
                let tx = &self.study_tx;
                match action {
                    Action::NextImage => self.study.step_image(1, ctx, tx),
                    Action::PreviousImage => self.study.step_image(-1, ctx, tx),
                    Action::NextSlice => self.study.step_slice(1, ctx, tx),
                    _ => self.study.step_slice(-1, ctx, tx),
                }
            }
            Action::FitView => self.study.fit(),
            Action::WindowPreset(i) => {
                if let Some(p) = WindowPreset::ALL.get(i) {
                    self.study.apply_preset(*p);
                }
            }
            Action::Brush => self.tools.kind = ToolKind::Brush,
            Action::Eraser => self.tools.kind = ToolKind::Eraser,
            Action::BrushSmaller => self.tools.resize(false),
            Action::BrushLarger => self.tools.resize(true),
            Action::SelectLabel(i) => {
                if let Some(class) = self
                    .session
                    .as_ref()
                    .and_then(|s| s.classes().into_iter().nth(i))
                {
                    self.tools.class = class.value;
                }
            }
            Action::ToggleOverlay => self.overlay.visible = !self.overlay.visible,
            Action::ToggleOutline => self.overlay.outline = !self.overlay.outline,
            Action::OverlayLessOpaque => {
                self.overlay.opacity = (self.overlay.opacity - OPACITY_STEP).clamp(0.0, 1.0);
            }
            Action::OverlayMoreOpaque => {
                self.overlay.opacity = (self.overlay.opacity + OPACITY_STEP).clamp(0.0, 1.0);
            }
            Action::LearnConcept
            | Action::NextFlagged
            | Action::PreviousFlagged
            | Action::AcceptAndNext
            | Action::RejectPrediction
            | Action::ToggleHeatmap
            | Action::BoxTool
            | Action::Settings => self.perform_learning(ctx, action),
            Action::ShowShortcuts => self.show_shortcuts = !self.show_shortcuts,
            Action::GetWeights => self.weights_dialog.show(),
            Action::Quit => {
                self.end_stroke();
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
        }
    }

    /// Runs an edit on the project, then updates the overlay as `touch` says; an error becomes
    /// a toast (and a full overlay rebuild). Returns whether the edit changed anything.
    fn edit(
        &mut self,
        what: &str,
        touch: Touch<'_>,
        f: impl FnOnce(&mut Project) -> Result<bool, AnnotationError>,
    ) -> bool {
        let Some(session) = self.session.as_mut() else {
            self.explain_no_session();
            return false;
        };
        let result = f(&mut session.project);
        match (&result, touch) {
            (Ok(_), Touch::Nothing) => {}
            (
                Ok(_),
                Touch::Stroke {
                    item,
                    points_image,
                    continues,
                },
            ) => {
                session.touch_stroke(item, points_image, self.tools.radius_px, continues);
            }
            _ => session.touch(),
        }
        match result {
            Ok(changed) => changed,
            Err(e) => {
                self.toasts.error(format!("{what} failed: {e}"));
                false
            }
        }
    }

    /// Why an edit did nothing, once per cause.
    pub(super) fn explain_no_session(&mut self) {
        let reason = if self.export.running {
            "Editing is paused while the export runs"
        } else if self.import.running {
            "Editing is paused while the import runs"
        } else if self.project_opening {
            "The project is still opening"
        } else {
            return;
        };
        if !self.toasts.texts().any(|t| t == reason) {
            self.toasts.warn(reason);
        }
    }

    /// The class strokes use: the selected one if it exists, else the first.
    fn stroke_class(&self, session: &Session) -> Option<u8> {
        if session.project.class(self.tools.class).is_some() {
            return Some(self.tools.class);
        }
        session.project.classes().next().map(|c| c.value)
    }

    fn begin_stroke(&mut self, point_image: [f32; 2]) {
        let Some((series, index)) = self.study.shown() else {
            return;
        };
        let Some(session) = self.session.as_ref() else {
            self.explain_no_session();
            return;
        };
        let Some(item) = session.item_at(series, index) else {
            return;
        };
        let class = match self.stroke_class(session) {
            Some(c) => c,
            None => {
                let class = session::default_class(1);
                if !self.edit("Adding a label", Touch::Nothing, |p| p.set_class(class)) {
                    return;
                }
                1
            }
        };
        self.tools.class = class;
        let brush = self.tools.brush();
        let touch = Touch::Stroke {
            item,
            points_image: &[point_image],
            continues: false,
        };
        self.edit("Painting", touch, |p| {
            p.begin_stroke(item, class, brush)?;
            p.stroke_to(point_image)?;
            Ok(true)
        });
    }

    fn stroke_to(&mut self, points_image: &[[f32; 2]]) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let Some(item) = session.stroke_item() else {
            return;
        };
        let touch = Touch::Stroke {
            item,
            points_image,
            continues: true,
        };
        self.edit("Painting", touch, |p| {
            for &point in points_image {
                p.stroke_to(point)?;
            }
            Ok(true)
        });
    }

    /// Ends a stroke in progress: one undo step, journaled before this returns.
    pub(super) fn end_stroke(&mut self) {
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.project.is_stroking())
        {
            let start = std::time::Instant::now();
            self.edit("Saving the stroke", Touch::Nothing, Project::end_stroke);
            tracing::debug!(
                elapsed_ms = start.elapsed().as_secs_f64() * 1e3,
                "stroke saved"
            );
        }
    }

    fn save_now(&mut self) {
        self.end_stroke();
        let Some(session) = self.session.as_mut() else {
            return;
        };
        match session.project.flush() {
            Ok(()) => self.toasts.info("All changes are saved"),
            Err(e) => self
                .toasts
                .error(format!("Saving failed (the edits stay in memory): {e}")),
        }
    }

    fn start_export(&mut self, ctx: &egui::Context, request: ExportRequest) {
        if self.export.running || self.import.running {
            return;
        }
        self.end_stroke();
        // Keep showing the masks of this slice while the session is away.
        self.last_overlay = self.study.shown().zip(self.current_overlay());
        let Some(session) = self.session.take() else {
            self.explain_no_session();
            return;
        };
        self.export.running = true;
        self.export.progress = None;
        self.export.result = None;
        let series = self.study.series().to_vec();
        if let Err((session, e)) =
            export::spawn_export(session, series, request, self.tx.clone(), ctx.clone())
        {
            self.session = Some(*session);
            self.export.running = false;
            self.toasts
                .error(format!("Could not start the export: {e}"));
        }
    }

    /// Shows the folder dialog on a helper thread so the UI keeps drawing.
    fn pick_export_folder(&self, ctx: &egui::Context) {
        let tx = self.tx.clone();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("m2c-file-dialog".to_owned())
            .spawn(move || {
                let picked = rfd::FileDialog::new()
                    .set_title("Export masks to")
                    .pick_folder();
                if let Some(folder) = picked {
                    let _ = tx.send(super::BackgroundEvent::ExportFolderPicked(folder));
                    ctx.request_repaint();
                }
            });
        if let Err(e) = spawned {
            tracing::error!("could not start the file dialog thread: {e}");
        }
    }
}
