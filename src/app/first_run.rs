//! First run: over the first study opened, a short overlay of the five keys that matter (B, W,
//! L, Shift+D, Enter), shown until the user dismisses it once. The dismissal is remembered in
//! the user configuration folder (`ui.json`, beside `settings.json`); losing it only shows the
//! overlay again, so read and write errors are logged, never shown as failures.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::keymap::Action;

/// File name in the configuration folder.
pub const UI_FILE: &str = "ui.json";
/// Title of the overlay.
pub const KEY_TIPS_TITLE: &str = "Five keys to start";
/// The button that dismisses it for good.
pub const DISMISS: &str = "Got it";

/// The keys, from the action table, with what each does in a few words.
const KEY_TIPS: [(Action, &str); 5] = [
    (Action::Brush, "paint the selected label"),
    (Action::BoxTool, "drag a box: the model segments one object"),
    (
        Action::LearnConcept,
        "learn the label from what you painted, predict the rest",
    ),
    (Action::NextFlagged, "next image the model is unsure about"),
    (Action::AcceptAndNext, "accept the masks and go on"),
];

/// What `ui.json` holds. Unknown fields are ignored and missing ones take their defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
struct UiFile {
    key_tips_dismissed: bool,
}

/// The overlay's state.
#[derive(Debug, Clone, Default)]
pub struct KeyTips {
    /// Where the dismissal is remembered; `None`: the overlay is off (tests, no home folder).
    file: Option<PathBuf>,
    dismissed: bool,
    pub open: bool,
}

impl KeyTips {
    /// The overlay on, remembering its dismissal in `file` (read now; missing or unreadable
    /// means not dismissed yet).
    pub fn load(file: PathBuf) -> Self {
        let saved: UiFile = std::fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Self {
            file: Some(file),
            dismissed: saved.key_tips_dismissed,
            open: false,
        }
    }

    /// Whether the overlay was dismissed (now or in an earlier session).
    pub fn dismissed(&self) -> bool {
        self.dismissed
    }

    /// A study is on screen: show the overlay unless it was dismissed or is off.
    pub fn study_shown(&mut self) {
        if self.file.is_some() && !self.dismissed {
            self.open = true;
        }
    }

    /// Hides the overlay for good and remembers it.
    pub fn dismiss(&mut self) {
        self.open = false;
        if self.dismissed {
            return;
        }
        self.dismissed = true;
        let Some(file) = &self.file else {
            return;
        };
        let mut saved: UiFile = std::fs::read(file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        saved.key_tips_dismissed = true;
        let written = serde_json::to_vec_pretty(&saved)
            .map_err(std::io::Error::other)
            .and_then(|json| {
                if let Some(dir) = file.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let tmp = file.with_extension("json.tmp");
                std::fs::write(&tmp, json)?;
                std::fs::rename(&tmp, file)
            });
        if let Err(e) = written {
            tracing::warn!("could not remember the key tips in {}: {e}", file.display());
        }
    }

    /// Draws the overlay while open, at the top of the area `rect` (the image); the button,
    /// the title bar's × and Esc dismiss it.
    pub fn ui(&mut self, ctx: &egui::Context, rect: egui::Rect) {
        if !self.open {
            return;
        }
        let mut open = true;
        let mut dismissed = false;
        egui::Window::new(KEY_TIPS_TITLE)
            .id(window_id())
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .default_pos(rect.center_top() + egui::vec2(-170.0, 12.0))
            .show(ctx, |ui| {
                egui::Grid::new("key_tips").num_columns(2).show(ui, |ui| {
                    for (action, what) in KEY_TIPS {
                        let key = action
                            .shortcut()
                            .map(|s| ctx.format_shortcut(&s))
                            .unwrap_or_default();
                        ui.label(egui::RichText::new(key).strong().monospace());
                        ui.label(format!("{}: {what}", action.label()));
                        ui.end_row();
                    }
                });
                ui.weak("F1 lists every shortcut.");
                if ui.button(DISMISS).clicked() {
                    dismissed = true;
                }
            });
        if !open || dismissed {
            self.dismiss();
        }
    }
}

/// The id of the overlay's window (Esc closes the topmost window first).
pub fn window_id() -> egui::Id {
    egui::Id::unique("m2c-key-tips")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dismissal_is_remembered_and_a_corrupt_file_shows_the_tips_again() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m2c").join(UI_FILE);
        let mut tips = KeyTips::load(file.clone());
        tips.study_shown();
        assert!(tips.open);
        tips.dismiss();
        assert!(!tips.open);
        let mut again = KeyTips::load(file.clone());
        again.study_shown();
        assert!(!again.open && again.dismissed());
        // Off without a file; a corrupt file means not dismissed.
        let mut off = KeyTips::default();
        off.study_shown();
        assert!(!off.open);
        std::fs::write(&file, b"{ corrupt").unwrap();
        let mut corrupt = KeyTips::load(file);
        corrupt.study_shown();
        assert!(corrupt.open);
    }
}
