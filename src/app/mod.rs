//! The desktop application (eframe/egui). Draws from the app state and turns user input into
//! commands; never blocks on the engine: background results arrive on channels that `logic`
//! drains each frame. May use `engine`, `annotation` and `study`; the only module that names
//! egui or eframe.

mod annotating;
mod capture;
pub mod command;
pub mod error;
pub mod export;
pub mod first_run;
pub mod heatmap;
pub mod import;
pub mod keymap;
pub mod labels_panel;
pub mod learning;
pub mod overlay;
mod panels;
pub mod recent;
mod remedy;
pub mod session;
pub mod settings;
pub mod study_view;
pub mod toasts;
pub mod tools;
pub mod viewer;
pub mod weights_dialog;

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};

pub use error::AppError;
pub use panels::{FIRST_STEP_OPEN, FIRST_STEP_READY, FIRST_STEP_WEIGHTS, SHORTCUTS_TITLE};

use crate::engine::{
    CheckpointError, DevicePlan, DevicePreference, EnvironmentReport, InstallTarget, Installed,
    ModelSettings, Precision,
};
use command::AppCommand;
use export::{ExportDialog, ExportSummary};
use import::ImportDialog;
use labels_panel::{ClassEditor, OverlaySettings};
use session::{OpenReport, Session};
use settings::SettingsDialog;
use study_view::{StudyEvent, StudyView};
use toasts::Toasts;
use tools::ToolState;
use weights_dialog::WeightsDialog;

/// What `m2c [PATH...]` passes to the window.
#[derive(Debug, Clone, Default)]
pub struct LaunchOptions {
    /// Studies to open at start.
    pub paths: Vec<PathBuf>,
    /// `--weights` / `M2C_WEIGHTS`.
    pub weights: Option<PathBuf>,
    pub device: DevicePreference,
}

/// Title of the main window.
pub const WINDOW_TITLE: &str = "M2C Annotator";

/// Opens the window and runs until it is closed.
pub fn run(options: LaunchOptions) -> Result<(), AppError> {
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(WINDOW_TITLE)
            .with_app_id("m2c-annotator")
            .with_inner_size([1100.0, 720.0])
            .with_min_inner_size([640.0, 420.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        WINDOW_TITLE,
        native,
        Box::new(move |cc| {
            if let Some(render_state) = cc.wgpu_render_state.as_ref() {
                overlay::register(render_state);
                heatmap::register(render_state);
            }
            let mut app = M2cApp::new(options);
            let (saved, problem) = ModelSettings::load();
            let file = ModelSettings::default_path().ok();
            app.use_saved_settings(saved, file);
            if let Some(dir) = crate::engine::m2c_config_dir() {
                app.use_recent_file(dir.join(recent::RECENT_FILE));
                app.use_ui_file(dir.join(first_run::UI_FILE));
            }
            app.use_weights_target(InstallTarget::for_user().ok());
            if let Some(problem) = problem {
                app.toasts
                    .warn(format!("Saved settings not used: {problem}"));
            }
            app.capture = capture::Capture::from_env();
            app.start_environment_probe(Some(cc.egui_ctx.clone()));
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| AppError::Window(e.to_string()))
}

/// Messages from background threads to the UI thread.
#[derive(Debug)]
enum BackgroundEvent {
    Environment(Box<EnvironmentReport>),
    PathsPicked(Vec<PathBuf>),
    /// The project for discovery `request` is open (or could not be).
    SessionOpened {
        request: u64,
        result: Result<(Box<Session>, OpenReport), String>,
    },
    ExportProgress {
        done: usize,
        total: usize,
    },
    /// The export ended; the session comes back.
    ExportFinished {
        session: Box<Session>,
        result: Result<ExportSummary, String>,
    },
    ExportFolderPicked(PathBuf),
    /// The import ended; the session comes back.
    ImportFinished {
        session: Box<Session>,
        result: Result<crate::annotation::ImportSummary, String>,
    },
    ImportPathPicked(PathBuf),
}

/// What the status panel shows about the compute device and the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelStatus {
    /// The device probe is still running.
    Detecting,
    /// Device found; `weights` says whether SAM3 can be enabled.
    Ready {
        device_line: String,
        device_reason: String,
        weights: WeightsStatus,
    },
}

/// Whether SAM3 weights are available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightsStatus {
    Found { path: PathBuf },
    Unusable { path: PathBuf, reason: String },
    Missing { first_location: Option<PathBuf> },
}

/// The application: view state plus channels to background work.
pub struct M2cApp {
    options: LaunchOptions,
    /// Paths the user opened (command line, drop, or dialog), in order.
    opened: Vec<PathBuf>,
    study: StudyView,
    model_status: ModelStatus,
    show_shortcuts: bool,
    tx: Sender<BackgroundEvent>,
    rx: Receiver<BackgroundEvent>,
    study_tx: Sender<StudyEvent>,
    study_rx: Receiver<StudyEvent>,
    /// Paths given at launch, opened on the first frame (needs the egui context).
    pending_open: Vec<PathBuf>,
    capture: capture::Capture,
    /// The annotation project of the open study; `None` while none is open, while it opens and
    /// while an export holds it.
    session: Option<Session>,
    /// The discovery request the session was opened for.
    session_request: Option<u64>,
    project_opening: bool,
    project_error: Option<String>,
    /// Where projects of read-only studies go (`None`: beside the study or nowhere).
    data_dir: Option<PathBuf>,
    tools: ToolState,
    overlay: OverlaySettings,
    class_editor: ClassEditor,
    toasts: Toasts,
    export: ExportDialog,
    import: ImportDialog,
    /// The overlay of the slice on screen when an export took the session, so the masks stay
    /// visible meanwhile.
    last_overlay: Option<((usize, usize), overlay::LabelOverlay)>,
    last_overlay_error: Option<String>,
    /// `ctx` time of the last retry of a failed save.
    last_flush_retry: f64,
    /// The engine thread, concepts and the review queue.
    learning: learning::Learning,
    /// Weights, device and precision in effect (command line over saved settings).
    settings: ModelSettings,
    settings_dialog: SettingsDialog,
    /// Where Apply saves the settings (`None`: not saved, e.g. in tests).
    settings_file: Option<PathBuf>,
    /// Recently opened studies (in memory only unless [`M2cApp::use_recent_file`]).
    recent: recent::RecentStudies,
    /// eframe calls `App::logic` before every frame, which drains the background work.
    driven_by_logic: bool,
    /// Help → Get SAM3 weights….
    weights_dialog: WeightsDialog,
    /// The five-key overlay over the first study (off unless [`M2cApp::use_ui_file`]).
    key_tips: first_run::KeyTips,
}

impl M2cApp {
    /// A new app in its empty state. Starts no thread: call
    /// [`M2cApp::start_environment_probe`] to detect the device in the background.
    pub fn new(options: LaunchOptions) -> Self {
        let (tx, rx) = mpsc::channel();
        let (study_tx, study_rx) = mpsc::channel();
        Self {
            opened: Vec::new(),
            study: StudyView::default(),
            pending_open: options.paths.clone(),
            model_status: ModelStatus::Detecting,
            show_shortcuts: false,
            tx,
            rx,
            study_tx,
            study_rx,
            capture: capture::Capture::default(),
            session: None,
            session_request: None,
            project_opening: false,
            project_error: None,
            data_dir: session::user_data_dir(),
            tools: ToolState::default(),
            overlay: OverlaySettings::default(),
            class_editor: ClassEditor::default(),
            toasts: Toasts::default(),
            export: ExportDialog::default(),
            import: ImportDialog::default(),
            last_overlay: None,
            last_overlay_error: None,
            last_flush_retry: 0.0,
            learning: learning::Learning::default(),
            settings: ModelSettings {
                weights: options.weights.clone(),
                device: options.device,
                precision: Precision::F32,
                cpu_threads: None,
            },
            settings_dialog: SettingsDialog::default(),
            settings_file: None,
            recent: recent::RecentStudies::default(),
            driven_by_logic: false,
            weights_dialog: WeightsDialog::default(),
            key_tips: first_run::KeyTips::default(),
            options,
        }
    }

    /// Remembers recently opened studies in `file` (and reads those already there).
    pub fn use_recent_file(&mut self, file: PathBuf) {
        self.recent = recent::RecentStudies::load(file);
    }

    /// Shows the five-key overlay over the first study until dismissed, remembering the
    /// dismissal in `file` (and reading an earlier one from it).
    pub fn use_ui_file(&mut self, file: PathBuf) {
        self.key_tips = first_run::KeyTips::load(file);
    }

    /// Whether the five-key overlay is on screen.
    pub fn key_tips_open(&self) -> bool {
        self.key_tips.open
    }

    /// Where Help → Get SAM3 weights… installs (`None`: nowhere; the dialog says so).
    pub fn use_weights_target(&mut self, target: Option<InstallTarget>) {
        self.weights_dialog.set_target(target);
    }

    /// The Get SAM3 weights dialog.
    pub fn weights_dialog(&self) -> &WeightsDialog {
        &self.weights_dialog
    }

    /// Which of the app's windows are open: (help, settings, weights dialog, key tips).
    pub fn open_windows(&self) -> (bool, bool, bool, bool) {
        (
            self.show_shortcuts,
            self.settings_dialog.open,
            self.weights_dialog.open,
            self.key_tips.open,
        )
    }

    /// Recently opened studies, newest first.
    pub fn recent(&self) -> &[PathBuf] {
        &self.recent.paths
    }

    /// Uses saved model settings (the command line's `--weights` and `--device` still win)
    /// and saves changes made in the Settings dialog to `file`.
    pub fn use_saved_settings(&mut self, saved: ModelSettings, file: Option<PathBuf>) {
        let device = (self.options.device != DevicePreference::Auto).then_some(self.options.device);
        self.settings = saved.overridden_by(self.options.weights.clone(), device);
        self.options.weights.clone_from(&self.settings.weights);
        self.options.device = self.settings.device;
        self.settings_file = file;
    }

    /// The model settings in effect.
    pub fn model_settings(&self) -> &ModelSettings {
        &self.settings
    }

    /// Where projects of read-only studies are created (default: the user's data folder).
    pub fn set_data_dir(&mut self, dir: Option<PathBuf>) {
        self.data_dir = dir;
    }

    /// Opens the Settings dialog on the settings in effect.
    pub(super) fn open_settings(&mut self) {
        self.settings_dialog.show(&self.settings);
    }

    /// A checkpoint was installed (Help → Get SAM3 weights…): load it now. The settings file
    /// was already updated by the installation; only what is in effect changes here.
    pub(super) fn use_installed_weights(&mut self, ctx: &egui::Context, installed: &Installed) {
        self.settings.weights = Some(installed.weights.clone());
        self.options.weights.clone_from(&self.settings.weights);
        self.learning.unload();
        self.model_status = ModelStatus::Detecting;
        self.start_environment_probe(Some(ctx.clone()));
    }

    /// Esc closes the topmost of the app's windows (help, settings, the weights dialog, the
    /// export and import dialogs, the key tips) before it means "reject the prediction".
    /// Returns whether a window was closed.
    fn close_topmost_window(&mut self, top: Option<egui::Id>) -> bool {
        let open = [
            (weights_dialog::window_id(), self.weights_dialog.open),
            (settings::window_id(), self.settings_dialog.open),
            (panels::shortcuts_window_id(), self.show_shortcuts),
            (export::window_id(), self.export.open),
            (import::window_id(), self.import.open),
            (first_run::window_id(), self.key_tips.open),
        ];
        let chosen = open
            .iter()
            .find(|(id, is_open)| *is_open && Some(*id) == top)
            .or_else(|| open.iter().find(|(_, is_open)| *is_open))
            .map(|(id, _)| *id);
        let Some(id) = chosen else {
            return false;
        };
        if id == weights_dialog::window_id() {
            self.weights_dialog.close();
        } else if id == settings::window_id() {
            self.settings_dialog.open = false;
        } else if id == panels::shortcuts_window_id() {
            self.show_shortcuts = false;
        } else if id == export::window_id() {
            self.export.open = false;
        } else if id == import::window_id() {
            self.import.open = false;
        } else {
            self.key_tips.dismiss();
        }
        true
    }

    /// Applies settings chosen in the dialog: saves them, then detects the device and loads
    /// the weights again in the background.
    pub(super) fn apply_settings(&mut self, ctx: &egui::Context, chosen: ModelSettings) {
        if let Some(file) = &self.settings_file
            && let Err(e) = chosen.save_to(file)
        {
            self.toasts.warn(format!(
                "The settings apply now but could not be saved: {e}"
            ));
        }
        let reload = chosen != self.settings;
        self.settings = chosen;
        self.options.weights.clone_from(&self.settings.weights);
        self.options.device = self.settings.device;
        if reload {
            self.learning.unload();
            self.model_status = ModelStatus::Detecting;
            self.start_environment_probe(Some(ctx.clone()));
        }
    }

    /// Detects the compute device and the SAM3 weights on a background thread; the result
    /// arrives in [`M2cApp::drain_events`]. `wake` repaints the window when it is done.
    pub fn start_environment_probe(&self, wake: Option<egui::Context>) {
        let tx = self.tx.clone();
        let weights = self.options.weights.clone();
        let device = self.options.device;
        let spawned = std::thread::Builder::new()
            .name("m2c-probe".to_owned())
            .spawn(move || {
                let report = crate::engine::probe(device, weights.as_deref(), false);
                // The receiver is gone only when the app closed; nothing to report then.
                let _ = tx.send(BackgroundEvent::Environment(Box::new(report)));
                if let Some(ctx) = wake {
                    ctx.request_repaint();
                }
            });
        if let Err(e) = spawned {
            tracing::error!("could not start the device probe thread: {e}");
        }
    }

    /// Paths opened so far.
    pub fn opened(&self) -> &[PathBuf] {
        &self.opened
    }

    /// The study browser (series found, slice on screen).
    pub fn study(&self) -> &StudyView {
        &self.study
    }

    /// Loads SAM3 from `weights` on the planned device in the background (the environment
    /// probe does this by itself when it finds weights).
    pub fn load_model(&mut self, weights: PathBuf, plan: DevicePlan) {
        self.learning
            .load_model(weights, plan, self.settings.precision, self.cpu_threads());
    }

    /// CPU threads the engine computes with (Settings; default every core but one).
    pub fn cpu_threads(&self) -> usize {
        self.settings
            .cpu_threads
            .unwrap_or_else(crate::engine::app_default_threads)
            .max(1)
    }

    /// Learning and review state (engine status, running job, concepts).
    pub fn learning(&self) -> &learning::Learning {
        &self.learning
    }

    /// Device and weights status as shown in the model panel.
    pub fn model_status(&self) -> &ModelStatus {
        &self.model_status
    }

    /// Work that must go on while the window is hidden too (eframe's `logic`): background
    /// results, engine events and the jobs they start, the project opening, save retries,
    /// studies queued to open. Reads no input events.
    pub fn drain_background(&mut self, ctx: &egui::Context) {
        while let Ok(event) = self.rx.try_recv() {
            match event {
                BackgroundEvent::Environment(report) => {
                    self.model_status = model_status_from(&report);
                    if let Some(weights) = loadable_weights(&report) {
                        let threads = self.cpu_threads();
                        self.learning.load_model(
                            weights,
                            report.plan.clone(),
                            self.settings.precision,
                            threads,
                        );
                    }
                }
                BackgroundEvent::PathsPicked(paths) => self.open_paths(ctx, paths),
                other => self.apply_annotation_event(other),
            }
        }
        while let Ok(event) = self.study_rx.try_recv() {
            self.study.apply(event, ctx, &self.study_tx);
        }
        self.drain_engine(ctx);
        self.open_session_if_needed(ctx);
        self.retry_failed_save(ctx);
        if !self.pending_open.is_empty() {
            let paths = std::mem::take(&mut self.pending_open);
            self.open_paths(ctx, paths);
        }
    }

    /// Applies finished background work. Never blocks.
    pub fn drain_events(&mut self, ctx: &egui::Context) {
        // Under eframe, `logic` has just done this for the frame (and each drain spends an
        // event budget of the UI thread); harnesses that drive `frame_ui` alone need it here.
        if !self.driven_by_logic {
            self.drain_background(ctx);
        }
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        if !dropped.is_empty() {
            self.drop_files(ctx, dropped);
        }
        // Typing a label name must not switch tools or images.
        if ctx.egui_wants_keyboard_input() {
            return;
        }
        let top = ctx.top_layer_id().map(|layer| layer.id);
        let escape = egui::KeyboardShortcut::new(egui::Modifiers::NONE, egui::Key::Escape);
        if ctx.input(|i| i.key_pressed(egui::Key::Escape)) && self.close_topmost_window(top) {
            ctx.input_mut(|i| i.consume_shortcut(&escape));
        }
        for (shortcut, action) in keymap::shortcut_table() {
            if ctx.input_mut(|i| i.consume_shortcut(&shortcut)) {
                self.perform(ctx, action);
            }
        }
    }

    /// Draws one frame into `ui` (the whole window).
    pub fn frame_ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        self.drain_events(&ctx);
        let mut actions = Vec::new();
        let mut commands = Vec::new();
        let mut reopen = panels::menu_bar_ui(ui, &mut actions, &self.recent);
        let project_line = self.project_status().line();
        let review_line = self.session.as_ref().map(|_| self.review_counts().line());
        panels::status_bar_ui(
            ui,
            &self.model_status,
            self.study.status_text(),
            project_line,
            review_line,
        );
        if self.opened.is_empty() {
            panels::model_panel_ui(ui, &self.model_status);
            reopen = reopen.or(panels::central_ui(
                ui,
                &mut actions,
                &self.recent,
                &self.model_status,
            ));
        } else {
            self.side_panel_ui(ui, &mut commands);
            let badges = self.series_badges();
            if let Some(series) = panels::study_panel_ui(ui, &self.study, &badges) {
                commands.push(AppCommand::SelectSeries(series));
            }
            self.image_ui(ui, &mut commands);
            if self.study.shown().is_some() {
                self.key_tips.study_shown();
            }
            self.key_tips.ui(&ctx, ctx.content_rect());
        }
        if self.show_shortcuts {
            panels::shortcuts_window_ui(&ctx, &mut self.show_shortcuts);
        }
        if self.settings_dialog.open {
            let device_info = match &self.model_status {
                ModelStatus::Ready { device_line, .. } => device_line.clone(),
                ModelStatus::Detecting => "detecting the compute device…".to_owned(),
            };
            if let Some(chosen) = self.settings_dialog.ui(&ctx, &device_info) {
                commands.push(AppCommand::ApplySettings(Box::new(chosen)));
            }
        }
        if self.export.open {
            let can_export = self.session.is_some();
            let classes = self.session.as_ref().map(Session::classes);
            self.export.export_dialog_ui(
                &ctx,
                can_export,
                classes.as_deref().unwrap_or(&[]),
                &mut commands,
            );
        }
        if self.import.open {
            let classes = self.session.as_ref().map(Session::classes);
            self.import
                .import_dialog_ui(&ctx, classes.as_deref().unwrap_or(&[]), &mut commands);
        }
        if let Some(installed) = self.weights_dialog.ui(&ctx) {
            self.use_installed_weights(&ctx, &installed);
        }
        self.toasts.toasts_ui(&ctx);
        for action in actions {
            self.perform(&ctx, action);
        }
        if let Some(path) = reopen {
            if path.exists() {
                self.open_paths(&ctx, vec![path]);
            } else {
                self.toasts
                    .warn(format!("{} no longer exists", path.display()));
                self.recent.remove(&path);
            }
        }
        for command in commands {
            self.apply_command(&ctx, command);
        }
        self.capture
            .after_frame(&ctx, self.model_status != ModelStatus::Detecting);
    }

    /// Opens studies: the new paths join those already open and the whole set is discovered
    /// again in the background.
    pub(super) fn open_paths(&mut self, ctx: &egui::Context, paths: Vec<PathBuf>) {
        let mut added = false;
        for path in paths {
            if !self.opened.contains(&path) {
                tracing::info!("study opened: {:?}", path);
                self.recent.push(&path);
                self.opened.push(path);
                added = true;
            }
        }
        if added {
            self.study
                .open(self.opened.clone(), &self.study_tx, ctx.clone());
        }
    }

    /// Shows the system file dialog on a helper thread so the UI keeps drawing.
    pub(super) fn pick_paths(&self, ctx: &egui::Context, folder: bool) {
        let tx = self.tx.clone();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("m2c-file-dialog".to_owned())
            .spawn(move || {
                let dialog = rfd::FileDialog::new().set_title("Open study");
                let picked: Vec<PathBuf> = if folder {
                    dialog.pick_folder().into_iter().collect()
                } else {
                    dialog
                        .add_filter(
                            "DICOM and images",
                            &["dcm", "dicom", "png", "jpg", "jpeg", "tif", "tiff", "bmp"],
                        )
                        .add_filter("All files", &["*"])
                        .pick_files()
                        .unwrap_or_default()
                };
                if !picked.is_empty() {
                    let _ = tx.send(BackgroundEvent::PathsPicked(picked));
                    ctx.request_repaint();
                }
            });
        if let Err(e) = spawned {
            tracing::error!("could not start the file dialog thread: {e}");
        }
    }
}

/// The weights the engine should try: a SAM3 checkpoint, or a safetensors file whose names
/// lack the `detector_model.` prefix (a bare `Sam3Model` export, which the loader maps).
fn loadable_weights(report: &EnvironmentReport) -> Option<PathBuf> {
    match (&report.weights.found, &report.checkpoint) {
        (Some(path), Some(Ok(_) | Err(CheckpointError::NotSam3 { .. }))) => Some(path.clone()),
        _ => None,
    }
}

fn model_status_from(report: &EnvironmentReport) -> ModelStatus {
    let weights = match (&report.weights.found, &report.checkpoint) {
        (Some(path), Some(Ok(_))) => WeightsStatus::Found { path: path.clone() },
        (Some(path), Some(Err(e))) => WeightsStatus::Unusable {
            path: path.clone(),
            reason: e.to_string(),
        },
        _ => WeightsStatus::Missing {
            first_location: report.weights.looked.first().cloned(),
        },
    };
    ModelStatus::Ready {
        device_line: report.plan.device_line(),
        device_reason: report.plan.reason.clone(),
        weights,
    }
}

impl eframe::App for M2cApp {
    /// Runs before every frame and, while the window is hidden or minimised, whenever the engine
    /// or a background thread wakes it: results are applied and saves retried even then.
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.driven_by_logic = true;
        self.drain_background(ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.frame_ui(ui);
    }

    fn on_exit(&mut self) {
        self.close_project();
    }
}
