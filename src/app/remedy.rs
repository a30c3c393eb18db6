//! What the user can do after the engine failed: the [`Remedy`]s an [`crate::engine::EngineError`]
//! offers (out of memory: fewer images per search, f16 weights, the CPU; device lost: reload,
//! the CPU), shown under the error in the Concept panel as buttons, and applied here.

use crate::engine::{DevicePreference, EngineError, Precision, Remedy};

use super::M2cApp;
use super::command::AppCommand;

impl M2cApp {
    /// The remedies that still apply with the settings in effect (no "use f16" when the weights
    /// already are f16, no "use the CPU" when the CPU is chosen).
    pub fn remedies(&self, error: &EngineError) -> Vec<Remedy> {
        error
            .remedies()
            .into_iter()
            .filter(|r| match r {
                Remedy::HalfPrecisionWeights => self.settings.precision != Precision::F16,
                Remedy::CpuBackend => self.settings.device != DevicePreference::Cpu,
                Remedy::FewerImages => self.learning.last_search_images().is_some_and(|n| n > 1),
                _ => true,
            })
            .collect()
    }

    /// The failure's remedies as buttons, each with its explanation.
    pub(super) fn remedies_ui(
        &self,
        ui: &mut egui::Ui,
        error: &EngineError,
        commands: &mut Vec<AppCommand>,
    ) {
        let remedies = self.remedies(error);
        if remedies.is_empty() {
            return;
        }
        ui.add_space(4.0);
        ui.colored_label(ui.visuals().warn_fg_color, failure_line(error));
        ui.horizontal_wrapped(|ui| {
            for remedy in remedies {
                if ui
                    .button(remedy.label())
                    .on_hover_text(remedy.explanation())
                    .clicked()
                {
                    commands.push(AppCommand::ApplyRemedy(remedy));
                }
            }
        });
    }

    /// Applies a remedy: new settings reload the model; fewer images search again at once.
    pub(super) fn apply_remedy(&mut self, ctx: &egui::Context, remedy: Remedy) {
        self.learning.failure = None;
        let mut settings = self.settings.clone();
        match remedy {
            Remedy::FewerImages => {
                let Some((class, images)) = self.learning.last_search() else {
                    return;
                };
                let limit = (images / 2).max(1);
                self.learning.training_limit = Some(limit);
                self.toasts.info(format!(
                    "Searching on the {limit} most recently labelled image(s)"
                ));
                self.start_learning(class, false);
                return;
            }
            Remedy::HalfPrecisionWeights => settings.precision = Precision::F16,
            Remedy::CpuBackend => settings.device = DevicePreference::Cpu,
            Remedy::ReloadDevice => {
                // The same settings: unload and load again on a freshly opened device.
                self.learning.unload();
                self.model_status = super::ModelStatus::Detecting;
                self.start_environment_probe(Some(ctx.clone()));
                return;
            }
        }
        self.apply_settings(ctx, settings);
    }
}

/// One line on what failed, before the remedies.
fn failure_line(error: &EngineError) -> String {
    let what = match error.failure() {
        crate::engine::Failure::OutOfMemory => "The device ran out of memory",
        crate::engine::Failure::DeviceLost => "The device was lost",
        crate::engine::Failure::Other => "The engine failed",
    };
    match (error.task(), error.image()) {
        (Some(task), Some(image)) => format!("{what} while {task} ({image}). Try:"),
        (Some(task), None) => format!("{what} while {task}. Try:"),
        _ => format!("{what}. Try:"),
    }
}
