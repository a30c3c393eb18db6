//! Help → Get SAM3 weights…: what to download and where from, a file chooser, the same check
//! and installation as `m2c weights install` ([`crate::engine::install`]), and the result.
//!
//! Nothing here blocks the UI thread: the file dialog, the header check and the copy each run on
//! a helper thread and answer through the dialog's channel. The dialog hands back the installed
//! checkpoint from [`WeightsDialog::ui`]; loading it is the caller's.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};

use crate::engine::{
    InstallError, InstallMode, InstallTarget, Installed, SAM3_DOWNLOAD_PAGE, SourceCheck,
    check_source, human_bytes, install,
};

/// Window title (and the Help menu entry, with an ellipsis).
pub const TITLE: &str = "Get SAM3 weights";
/// Label (and accessible name) of the path field.
pub const FILE_FIELD: &str = "Downloaded file";
/// The install button.
pub const INSTALL: &str = "Install";
/// The checkbox that keeps the file where it is.
pub const IN_PLACE: &str = "Use the file where it is (do not copy it)";

/// Messages from the dialog's helper threads.
#[derive(Debug)]
enum DialogEvent {
    Picked(PathBuf),
    Checked(String, Result<SourceCheck, String>),
    Progress(u64, u64),
    Finished(Result<Installed, String>),
}

/// The dialog's state; kept while it is closed.
#[derive(Debug)]
pub struct WeightsDialog {
    pub open: bool,
    path_text: String,
    in_place: bool,
    /// Where a copy goes and the settings file to update (`None`: nowhere known).
    target: Option<InstallTarget>,
    /// The verdict on a path, and the (trimmed) text it was made for.
    check: Option<(String, Result<SourceCheck, String>)>,
    checking: Option<String>,
    /// Bytes copied so far, while an installation runs.
    progress: Option<(u64, u64)>,
    installing: bool,
    cancel: Arc<AtomicBool>,
    result: Option<Result<Installed, String>>,
    tx: Sender<DialogEvent>,
    rx: Receiver<DialogEvent>,
}

impl Default for WeightsDialog {
    fn default() -> Self {
        Self::new(None)
    }
}

impl WeightsDialog {
    /// A closed dialog installing into `target`.
    pub fn new(target: Option<InstallTarget>) -> Self {
        let (tx, rx) = mpsc::channel();
        Self {
            open: false,
            path_text: String::new(),
            in_place: false,
            target,
            check: None,
            checking: None,
            progress: None,
            installing: false,
            cancel: Arc::new(AtomicBool::new(false)),
            result: None,
            tx,
            rx,
        }
    }

    /// Where installations go from now on.
    pub fn set_target(&mut self, target: Option<InstallTarget>) {
        self.target = target;
    }

    /// Opens the dialog, forgetting the result of an earlier installation.
    pub fn show(&mut self) {
        self.open = true;
        if !self.installing {
            self.result = None;
        }
    }

    /// Whether a check or an installation is running.
    pub fn is_busy(&self) -> bool {
        self.installing || self.checking.as_deref() == Some(self.path_text.trim())
    }

    /// The verdict on the current path, once known.
    pub fn check(&self) -> Option<&Result<SourceCheck, String>> {
        match &self.check {
            Some((text, check)) if text == self.path_text.trim() => Some(check),
            _ => None,
        }
    }

    /// The outcome of the last installation.
    pub fn result(&self) -> Option<&Result<Installed, String>> {
        self.result.as_ref()
    }

    /// Draws the dialog while `open`. Returns the installation that has just finished (the
    /// caller loads the new checkpoint).
    pub fn ui(&mut self, ctx: &egui::Context) -> Option<Installed> {
        let finished = self.receive();
        if !self.open {
            return finished;
        }
        self.start_check(ctx);
        let mut open = self.open;
        egui::Window::new(TITLE)
            .id(window_id())
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .default_width(520.0)
            .show(ctx, |ui| self.body_ui(ui));
        self.open = self.open && open;
        finished
    }

    /// Closes the dialog (Esc, the title bar's ×). A running copy goes on in the background.
    pub fn close(&mut self) {
        self.open = false;
    }

    /// Takes the answers of the helper threads; returns a successful installation.
    fn receive(&mut self) -> Option<Installed> {
        let mut finished = None;
        while let Ok(event) = self.rx.try_recv() {
            match event {
                DialogEvent::Picked(path) => self.path_text = path.display().to_string(),
                DialogEvent::Checked(text, check) => {
                    if self.checking.as_deref() == Some(text.as_str()) {
                        self.checking = None;
                    }
                    self.check = Some((text, check));
                }
                DialogEvent::Progress(done, total) => self.progress = Some((done, total)),
                DialogEvent::Finished(result) => {
                    self.installing = false;
                    self.progress = None;
                    if let Ok(done) = &result {
                        finished = Some(done.clone());
                    }
                    self.result = Some(result);
                }
            }
        }
        finished
    }

    /// Checks the current path on a helper thread unless it is checked or being checked.
    fn start_check(&mut self, ctx: &egui::Context) {
        let text = self.path_text.trim().to_owned();
        if text.is_empty()
            || self.check().is_some()
            || self.checking.as_deref() == Some(text.as_str())
        {
            return;
        }
        let tx = self.tx.clone();
        let wake = ctx.clone();
        let job = text.clone();
        let spawned = std::thread::Builder::new()
            .name("m2c-weights-check".to_owned())
            .spawn(move || {
                let check = check_source(Path::new(&job)).map_err(|e| error_text(&e));
                let _ = tx.send(DialogEvent::Checked(job, check));
                wake.request_repaint();
            });
        match spawned {
            Ok(_) => self.checking = Some(text),
            Err(e) => {
                tracing::warn!("could not start the weights check thread: {e}");
                let check = check_source(Path::new(&text)).map_err(|e| error_text(&e));
                self.check = Some((text, check));
            }
        }
    }

    /// Installs the checked file on a helper thread; progress and the result come back
    /// through the channel.
    fn start_install(&mut self, ctx: &egui::Context) {
        let Some(target) = self.target.clone() else {
            return;
        };
        let source = PathBuf::from(self.path_text.trim());
        let mode = if self.in_place {
            InstallMode::InPlace
        } else {
            InstallMode::Copy
        };
        self.cancel.store(false, Ordering::Relaxed);
        let cancel = Arc::clone(&self.cancel);
        let tx = self.tx.clone();
        let wake = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("m2c-weights-install".to_owned())
            .spawn(move || {
                let mut last = std::time::Instant::now();
                let mut progress = |done: u64, total: u64| {
                    if last.elapsed().as_millis() >= 100 || done == total {
                        last = std::time::Instant::now();
                        let _ = tx.send(DialogEvent::Progress(done, total));
                        wake.request_repaint();
                    }
                    !cancel.load(Ordering::Relaxed)
                };
                let result =
                    install(&source, mode, &target, &mut progress).map_err(|e| error_text(&e));
                let _ = tx.send(DialogEvent::Finished(result));
                wake.request_repaint();
            });
        match spawned {
            Ok(_) => {
                self.installing = true;
                self.result = None;
                self.progress = None;
            }
            Err(e) => self.result = Some(Err(format!("Could not start the installation: {e}"))),
        }
    }

    fn body_ui(&mut self, ui: &mut egui::Ui) {
        ui.label(
            "Automatic segmentation needs Meta's SAM3 checkpoint. It is gated, so M2C cannot \
             download it for you:",
        );
        ui.horizontal_wrapped(|ui| {
            ui.label("1. Sign in on Hugging Face, open");
            ui.hyperlink_to("facebook/sam3", SAM3_DOWNLOAD_PAGE);
            ui.label("and accept the licence.");
        });
        ui.label(
            "2. Under Files and versions, download model.safetensors (3.4 GB), and config.json \
             and tokenizer.json into the same folder. (sam3.pt, the PyTorch file, is not \
             accepted.)",
        );
        ui.label("3. Choose the downloaded model.safetensors here:");
        ui.horizontal(|ui| {
            let label = ui.label(FILE_FIELD);
            ui.add_enabled(
                !self.installing,
                egui::TextEdit::singleline(&mut self.path_text)
                    .hint_text("…/model.safetensors")
                    .desired_width(300.0),
            )
            .labelled_by(label.id);
            if ui
                .add_enabled(!self.installing, egui::Button::new("Choose…"))
                .on_hover_text("Choose the downloaded model.safetensors")
                .clicked()
            {
                self.browse(ui.ctx());
            }
        });
        self.check_ui(ui);
        ui.separator();
        match &self.target {
            Some(target) => {
                ui.checkbox(&mut self.in_place, IN_PLACE);
                if self.in_place {
                    ui.weak(
                        "Its path is saved in the settings; moving or deleting the file later \
                         disables automatic segmentation.",
                    );
                } else {
                    ui.weak(format!(
                        "It goes to {} (a hard link when on the same disk: no extra space; \
                         else a copy). The app and the m2c commands find it there.",
                        target.folder.display()
                    ));
                }
            }
            None => {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    "No per-user data folder is known (HOME is not set): choose the file in \
                     Settings instead.",
                );
            }
        }
        let checked_ok = matches!(self.check(), Some(Ok(_)));
        let can_install = checked_ok && self.target.is_some() && !self.installing;
        ui.horizontal(|ui| {
            let button = ui
                .add_enabled(can_install, egui::Button::new(INSTALL))
                .on_disabled_hover_text("Choose a file that passes the check first");
            if button.clicked() {
                self.start_install(ui.ctx());
            }
            if self.installing {
                if ui.button("Cancel").clicked() {
                    self.cancel.store(true, Ordering::Relaxed);
                }
            } else if ui.button("Close").clicked() {
                self.open = false;
            }
        });
        self.progress_ui(ui);
    }

    fn check_ui(&self, ui: &mut egui::Ui) {
        if self.checking.is_some() && self.check().is_none() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Checking the file…");
            });
            return;
        }
        match self.check() {
            Some(Ok(check)) => {
                for line in check.lines() {
                    ui.label(line);
                }
            }
            Some(Err(e)) => {
                ui.add(
                    egui::Label::new(
                        egui::RichText::new(e.as_str()).color(ui.visuals().error_fg_color),
                    )
                    .wrap(),
                );
            }
            None => {}
        }
    }

    fn progress_ui(&self, ui: &mut egui::Ui) {
        if self.installing {
            match self.progress {
                Some((done, total)) if total > 0 => {
                    ui.add(
                        egui::ProgressBar::new(done as f32 / total as f32).text(format!(
                            "{} of {}",
                            human_bytes(done),
                            human_bytes(total)
                        )),
                    );
                }
                _ => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label("Installing…");
                    });
                }
            }
        }
        match &self.result {
            Some(Ok(done)) => {
                ui.label(done.message());
                ui.label("The model is loading; the status bar says when it is ready.");
            }
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, e.as_str());
            }
            None => {}
        }
    }

    /// Shows the system file dialog on a helper thread; the choice arrives through the channel.
    fn browse(&self, ctx: &egui::Context) {
        let tx = self.tx.clone();
        let wake = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("m2c-file-dialog".to_owned())
            .spawn(move || {
                let dialog = rfd::FileDialog::new()
                    .set_title("The downloaded SAM3 weights (model.safetensors)")
                    .add_filter("safetensors", &["safetensors"])
                    .add_filter("All files", &["*"]);
                if let Some(path) = dialog.pick_file() {
                    let _ = tx.send(DialogEvent::Picked(path));
                    wake.request_repaint();
                }
            });
        if let Err(e) = spawned {
            tracing::error!("could not start the file dialog thread: {e}");
        }
    }
}

/// The id of the dialog's window (Esc closes the topmost window first).
pub fn window_id() -> egui::Id {
    egui::Id::unique("m2c-weights-dialog")
}

fn error_text(e: &InstallError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text += &format!(": {cause}");
        source = cause.source();
    }
    text
}
