//! Every user action with its label, tooltip and default shortcuts: menus, tooltips and the
//! shortcut help are all built from this one table, and a test rejects conflicting shortcuts.

use egui::{Key, KeyboardShortcut, Modifiers};

use crate::study::WindowPreset;

/// A user action the app can perform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    OpenFolder,
    OpenFiles,
    NextSlice,
    PreviousSlice,
    FitView,
    /// Window preset by position in [`WindowPreset::ALL`] (Shift+1 … Shift+5).
    WindowPreset(usize),
    ShowShortcuts,
    Quit,
}

const fn key(k: Key) -> KeyboardShortcut {
    KeyboardShortcut::new(Modifiers::NONE, k)
}

const PRESET_KEYS: [Key; 5] = [Key::Num1, Key::Num2, Key::Num3, Key::Num4, Key::Num5];

impl Action {
    /// Every action, in menu order.
    pub const ALL: [Action; 12] = [
        Action::OpenFolder,
        Action::OpenFiles,
        Action::NextSlice,
        Action::PreviousSlice,
        Action::FitView,
        Action::WindowPreset(0),
        Action::WindowPreset(1),
        Action::WindowPreset(2),
        Action::WindowPreset(3),
        Action::WindowPreset(4),
        Action::ShowShortcuts,
        Action::Quit,
    ];

    /// Menu and button label.
    pub fn label(self) -> &'static str {
        match self {
            Action::OpenFolder => "Open folder…",
            Action::OpenFiles => "Open files…",
            Action::NextSlice => "Next slice",
            Action::PreviousSlice => "Previous slice",
            Action::FitView => "Fit image to view",
            Action::WindowPreset(i) => WindowPreset::ALL.get(i).map_or("Window preset", |p| p.label()),
            Action::ShowShortcuts => "Keyboard shortcuts",
            Action::Quit => "Quit",
        }
    }

    /// One sentence for the tooltip.
    pub fn tooltip(self) -> &'static str {
        match self {
            Action::OpenFolder => "Open a study folder: a DICOM series or a folder of PNG/JPEG images",
            Action::OpenFiles => "Open DICOM or image files",
            Action::NextSlice => "Show the next slice of the series",
            Action::PreviousSlice => "Show the previous slice of the series",
            Action::FitView => "Zoom so the whole image fits the view",
            Action::WindowPreset(_) => "Apply this window/level preset (CT values in HU)",
            Action::ShowShortcuts => "List every keyboard shortcut",
            Action::Quit => "Close M2C Annotator (accepted work is already saved)",
        }
    }

    /// Default shortcuts; the first is the one menus show.
    pub fn shortcuts(self) -> Vec<KeyboardShortcut> {
        match self {
            Action::OpenFolder => vec![KeyboardShortcut::new(Modifiers::COMMAND, Key::O)],
            Action::OpenFiles => vec![KeyboardShortcut::new(
                Modifiers::COMMAND.plus(Modifiers::SHIFT),
                Key::O,
            )],
            Action::NextSlice => vec![key(Key::ArrowDown), key(Key::PageDown)],
            Action::PreviousSlice => vec![key(Key::ArrowUp), key(Key::PageUp)],
            Action::FitView => vec![key(Key::F)],
            Action::WindowPreset(i) => PRESET_KEYS
                .get(i)
                .map(|k| KeyboardShortcut::new(Modifiers::SHIFT, *k))
                .into_iter()
                .collect(),
            Action::ShowShortcuts => vec![key(Key::F1)],
            Action::Quit => vec![KeyboardShortcut::new(Modifiers::COMMAND, Key::Q)],
        }
    }

    /// The shortcut shown in menus.
    pub fn shortcut(self) -> Option<KeyboardShortcut> {
        self.shortcuts().into_iter().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn no_two_actions_share_a_shortcut() {
        let mut seen: HashMap<KeyboardShortcut, Action> = HashMap::new();
        for action in Action::ALL {
            for s in action.shortcuts() {
                if let Some(other) = seen.insert(s, action) {
                    panic!("{action:?} and {other:?} both use {s:?}");
                }
            }
        }
    }

    #[test]
    fn every_action_has_label_tooltip_and_a_preset_per_key() {
        for action in Action::ALL {
            assert!(!action.label().is_empty() && !action.tooltip().is_empty(), "{action:?}");
        }
        for (i, p) in WindowPreset::ALL.iter().enumerate() {
            assert_eq!(Action::WindowPreset(i).label(), p.label());
            assert_eq!(Action::WindowPreset(i).shortcuts().len(), 1);
        }
    }
}
