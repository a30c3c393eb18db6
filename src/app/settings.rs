//! Settings… (Ctrl+,): the SAM3 weights file, the compute device and the weights' precision.
//!
//! The dialog edits a draft of [`ModelSettings`] and hands it back from [`SettingsDialog::ui`]
//! when the user presses Apply; saving it ([`ModelSettings::save`]) and reloading the model are
//! the caller's. The weights path is checked from its header while the user types, on a helper
//! thread (a network path must not freeze the window), and Apply stays disabled while the path
//! is missing, truncated or another model's file. "Browse…" runs the system file dialog on a
//! helper thread too; both answer through channels the dialog owns.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};

use crate::engine::{
    DevicePreference, ModelSettings, Precision, WeightsCheck, app_default_threads, available_cores,
    check_weights,
};

/// Window title.
pub const TITLE: &str = "Settings";
/// Label (and accessible name) of the weights path field.
pub const WEIGHTS_FIELD: &str = "Weights file";
/// Label of the apply button.
pub const APPLY: &str = "Apply";
/// Label of the CPU thread count (tests find the field by it).
pub const CPU_THREADS_FIELD: &str = "CPU threads";

/// Where the checkpoint comes from, in the words of the README's "SAM3 weights" section.
const HOW_TO_GET_WEIGHTS: &str = "The SAM3 checkpoint is gated and never bundled or \
downloaded by the app. Accept the licence on Hugging Face for facebook/sam3 and download \
model.safetensors, then choose it here (or its folder). It is also found without a setting at \
~/.local/share/m2c/sam3/model.safetensors (Linux; ~/Library/Application Support/m2c/sam3/ on \
macOS, %APPDATA%\\m2c\\sam3\\ on Windows) or in the Hugging Face cache \
(~/.cache/huggingface/hub/models--facebook--sam3/…). --weights PATH and M2C_WEIGHTS override \
this setting. Without weights the app is a full manual annotator.";

/// Device choices with their one-line explanations.
const DEVICES: [(DevicePreference, &str, &str); 3] = [
    (
        DevicePreference::Auto,
        "Auto",
        "A hardware GPU when present, else the CPU backend (recommended).",
    ),
    (
        DevicePreference::Gpu,
        "GPU",
        "wgpu on the best adapter, software ones (lavapipe) included.",
    ),
    (
        DevicePreference::Cpu,
        "CPU",
        "burn's pure-Rust CPU backend: slower, works everywhere.",
    ),
];

/// The dialog's state; kept while it is closed.
#[derive(Debug)]
pub struct SettingsDialog {
    pub open: bool,
    /// The weights path as typed.
    weights_text: String,
    device: DevicePreference,
    precision: Precision,
    /// CPU threads for the engine (the CPU device).
    cpu_threads: usize,
    /// The settings named a thread count (rather than following the machine's default).
    cpu_threads_chosen: bool,
    /// The verdict on a weights path, and the (trimmed) text it was made for.
    check: Option<(String, WeightsCheck)>,
    /// The text a running check is for.
    checking: Option<String>,
    check_tx: Sender<(String, WeightsCheck)>,
    check_rx: Receiver<(String, WeightsCheck)>,
    browse_tx: Sender<PathBuf>,
    browse_rx: Receiver<PathBuf>,
}

impl Default for SettingsDialog {
    fn default() -> Self {
        Self::new(&ModelSettings::default())
    }
}

impl SettingsDialog {
    /// A closed dialog whose draft is `current`.
    pub fn new(current: &ModelSettings) -> Self {
        let (check_tx, check_rx) = mpsc::channel();
        let (browse_tx, browse_rx) = mpsc::channel();
        let mut dialog = Self {
            open: false,
            weights_text: String::new(),
            device: DevicePreference::Auto,
            precision: Precision::F32,
            cpu_threads: app_default_threads(),
            cpu_threads_chosen: false,
            check: None,
            checking: None,
            check_tx,
            check_rx,
            browse_tx,
            browse_rx,
        };
        dialog.reset(current);
        dialog
    }

    /// Opens the dialog with `current` as the draft (what Settings… does).
    pub fn show(&mut self, current: &ModelSettings) {
        self.reset(current);
        self.open = true;
    }

    fn reset(&mut self, current: &ModelSettings) {
        self.weights_text = current
            .weights
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        self.device = current.device;
        self.precision = current.precision;
        self.cpu_threads = current.cpu_threads.unwrap_or_else(app_default_threads);
        self.cpu_threads_chosen = current.cpu_threads.is_some();
    }

    /// The settings as currently edited.
    pub fn draft(&self) -> ModelSettings {
        let text = self.weights_text.trim();
        ModelSettings {
            weights: (!text.is_empty()).then(|| PathBuf::from(text)),
            device: self.device,
            precision: self.precision,
            // Left at the default, it is stored as "none" and follows the machine the settings
            // move to; a count the user set (or had saved) is kept as it is.
            cpu_threads: (self.cpu_threads_chosen || self.cpu_threads != app_default_threads())
                .then_some(self.cpu_threads),
        }
    }

    /// Whether a weights check for the current text is still running.
    pub fn is_checking(&self) -> bool {
        self.checking.as_deref() == Some(self.weights_text.trim())
    }

    /// The verdict on the current weights text, once known.
    pub fn weights_check(&self) -> Option<&WeightsCheck> {
        match &self.check {
            Some((text, check)) if text == self.weights_text.trim() => Some(check),
            _ => None,
        }
    }

    /// Whether Apply is possible now: the current path is checked and acceptable.
    pub fn can_apply(&self) -> bool {
        self.weights_check()
            .is_some_and(WeightsCheck::is_acceptable)
    }

    /// Draws the dialog while `open`; `device_info` is the device line of the running engine
    /// (e.g. `DevicePlan::device_line`). Returns the new settings when Apply is pressed (the
    /// dialog then closes).
    pub fn ui(&mut self, ctx: &egui::Context, device_info: &str) -> Option<ModelSettings> {
        self.receive();
        if !self.open {
            return None;
        }
        self.start_check(ctx);
        let mut open = self.open;
        let mut applied = None;
        egui::Window::new(TITLE)
            .id(window_id())
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .default_width(480.0)
            .show(ctx, |ui| applied = self.body_ui(ui, device_info));
        // Closed by the title bar's ×, by Cancel (inside the body) or by Apply.
        self.open = self.open && open && applied.is_none();
        applied
    }

    /// Takes the answers of finished checks and file dialogs.
    fn receive(&mut self) {
        while let Ok(path) = self.browse_rx.try_recv() {
            self.weights_text = path.display().to_string();
        }
        while let Ok((text, check)) = self.check_rx.try_recv() {
            if self.checking.as_deref() == Some(text.as_str()) {
                self.checking = None;
            }
            // A verdict on an older text is kept only if nothing newer arrived.
            if text == self.weights_text.trim() || self.check.is_none() {
                self.check = Some((text, check));
            }
        }
    }

    /// Starts checking the current text unless it is checked or being checked.
    fn start_check(&mut self, ctx: &egui::Context) {
        let text = self.weights_text.trim().to_owned();
        if self.weights_check().is_some() || self.checking.as_deref() == Some(text.as_str()) {
            return;
        }
        if text.is_empty() {
            self.check = Some((text, WeightsCheck::Empty));
            return;
        }
        let tx = self.check_tx.clone();
        let wake = ctx.clone();
        let job_text = text.clone();
        let spawned = std::thread::Builder::new()
            .name("m2c-weights-check".to_owned())
            .spawn(move || {
                let check = check_weights(Some(Path::new(&job_text)));
                // The receiver is gone only when the dialog was dropped.
                let _ = tx.send((job_text, check));
                wake.request_repaint();
            });
        match spawned {
            Ok(_) => self.checking = Some(text),
            Err(e) => {
                // No thread: the header read is short, do it here rather than never.
                tracing::warn!("could not start the weights check thread: {e}");
                let check = check_weights(Some(Path::new(&text)));
                self.check = Some((text, check));
            }
        }
    }

    fn body_ui(&mut self, ui: &mut egui::Ui, device_info: &str) -> Option<ModelSettings> {
        ui.heading("SAM3 weights");
        ui.horizontal(|ui| {
            let label = ui.label(WEIGHTS_FIELD);
            ui.add(
                egui::TextEdit::singleline(&mut self.weights_text)
                    .hint_text("none: manual annotation only")
                    .desired_width(300.0),
            )
            .labelled_by(label.id)
            .on_hover_text("The SAM3 checkpoint (model.safetensors) or its folder");
            if ui
                .button("Browse…")
                .on_hover_text("Choose model.safetensors")
                .clicked()
            {
                self.browse(ui.ctx());
            }
        });
        self.weights_status_ui(ui);
        egui::CollapsingHeader::new("How to get the weights")
            .default_open(false)
            .show(ui, |ui| {
                ui.label(HOW_TO_GET_WEIGHTS);
            });
        ui.separator();
        ui.heading("Device");
        for (value, name, explanation) in DEVICES {
            ui.horizontal(|ui| {
                ui.radio_value(&mut self.device, value, name);
                ui.weak(explanation);
            });
        }
        ui.label(format!("Now running on: {device_info}"));
        ui.horizontal(|ui| {
            let cores = available_cores();
            let label = ui.label(CPU_THREADS_FIELD);
            ui.add(egui::DragValue::new(&mut self.cpu_threads).range(1..=cores))
                .labelled_by(label.id)
                .on_hover_text(format!(
                    "Threads SAM3 uses when it computes on the CPU (this machine has {cores} \
                     cores). The default leaves one core to the window, so it stays \
                     responsive during a search."
                ));
        });
        ui.separator();
        ui.heading("Precision");
        ui.horizontal(|ui| {
            ui.radio_value(&mut self.precision, Precision::F32, "f32");
            ui.weak("Reference precision.");
        });
        ui.horizontal(|ui| {
            ui.radio_value(&mut self.precision, Precision::F16, "f16");
            ui.weak("Halves memory; needs a GPU with f16 support.");
        });
        if self.precision == Precision::F16 && device_info.contains("f16 no") {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                "The device in use reports no f16 support.",
            );
        }
        ui.separator();
        ui.weak("Applied settings are saved; the model reloads with them.");
        let mut applied = None;
        ui.horizontal(|ui| {
            let apply = ui
                .add_enabled(self.can_apply(), egui::Button::new(APPLY))
                .on_disabled_hover_text("Choose a valid weights file, or leave the path empty");
            if apply.clicked() {
                applied = Some(self.draft());
            }
            if ui.button("Cancel").clicked() {
                self.open = false;
            }
        });
        applied
    }

    fn weights_status_ui(&self, ui: &mut egui::Ui) {
        if self.is_checking() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Checking the weights file…");
            });
            return;
        }
        let Some(check) = self.weights_check() else {
            return;
        };
        let colour = match check {
            WeightsCheck::Empty | WeightsCheck::Sam3(_) | WeightsCheck::BareSam3 { .. } => {
                ui.visuals().text_color()
            }
            WeightsCheck::Invalid(_) => ui.visuals().error_fg_color,
        };
        ui.add(egui::Label::new(egui::RichText::new(check.message()).color(colour)).wrap());
    }

    /// Shows the system file dialog on a helper thread; the choice arrives through `browse_rx`.
    fn browse(&self, ctx: &egui::Context) {
        let tx = self.browse_tx.clone();
        let wake = ctx.clone();
        let start_dir = Path::new(self.weights_text.trim())
            .parent()
            .filter(|d| d.is_dir())
            .map(Path::to_path_buf);
        let spawned = std::thread::Builder::new()
            .name("m2c-file-dialog".to_owned())
            .spawn(move || {
                let mut dialog = rfd::FileDialog::new()
                    .set_title("SAM3 weights (model.safetensors)")
                    .add_filter("safetensors", &["safetensors"])
                    .add_filter("All files", &["*"]);
                if let Some(dir) = start_dir {
                    dialog = dialog.set_directory(dir);
                }
                if let Some(path) = dialog.pick_file() {
                    let _ = tx.send(path);
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
    egui::Id::unique("m2c-settings-dialog")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_round_trips_the_settings_and_trims_the_path() {
        let current = ModelSettings {
            weights: Some(PathBuf::from("/w/model.safetensors")),
            device: DevicePreference::Cpu,
            precision: Precision::F16,
            cpu_threads: Some(1),
        };
        let mut dialog = SettingsDialog::new(&current);
        assert!(!dialog.open);
        assert_eq!(dialog.draft(), current);
        dialog.weights_text = "  ".to_owned();
        assert_eq!(dialog.draft().weights, None);
        dialog.show(&current);
        assert!(dialog.open);
        assert_eq!(dialog.draft(), current);

        // No saved thread count: the default stays "none" unless the user changes it.
        let follows = ModelSettings {
            cpu_threads: None,
            ..current
        };
        let mut dialog = SettingsDialog::new(&follows);
        assert_eq!(dialog.draft().cpu_threads, None);
        dialog.cpu_threads = app_default_threads() + 1;
        assert_eq!(dialog.draft().cpu_threads, Some(app_default_threads() + 1));
    }
}
