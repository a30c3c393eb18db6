//! Learning and review in the window: the engine thread, "Learn concept", predictions with
//! their HUE scores, the review queue and its keys.

use super::M2cApp;
use super::keymap::Action;

impl M2cApp {
    pub(super) fn perform_learning(&mut self, _ctx: &egui::Context, action: Action) {
        self.toasts
            .info(format!("{} is not available yet", action.label()));
    }
}
