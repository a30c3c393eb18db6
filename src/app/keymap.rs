//! Every user action with its label, tooltip and default shortcut: menus, tooltips and the
//! shortcut help are all built from this one table, and a test rejects conflicting shortcuts.

use egui::{Key, KeyboardShortcut, Modifiers};

/// A user action the app can perform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    OpenFolder,
    OpenFiles,
    ShowShortcuts,
    Quit,
}

impl Action {
    /// Every action, in menu order.
    pub const ALL: [Action; 4] = [
        Action::OpenFolder,
        Action::OpenFiles,
        Action::ShowShortcuts,
        Action::Quit,
    ];

    /// Menu and button label.
    pub fn label(self) -> &'static str {
        match self {
            Action::OpenFolder => "Open folder…",
            Action::OpenFiles => "Open files…",
            Action::ShowShortcuts => "Keyboard shortcuts",
            Action::Quit => "Quit",
        }
    }

    /// One sentence for the tooltip.
    pub fn tooltip(self) -> &'static str {
        match self {
            Action::OpenFolder => "Open a study folder: a DICOM series or a folder of PNG/JPEG images",
            Action::OpenFiles => "Open DICOM or image files",
            Action::ShowShortcuts => "List every keyboard shortcut",
            Action::Quit => "Close M2C Annotator (accepted work is already saved)",
        }
    }

    /// Default shortcut, if any.
    pub fn shortcut(self) -> Option<KeyboardShortcut> {
        match self {
            Action::OpenFolder => Some(KeyboardShortcut::new(Modifiers::COMMAND, Key::O)),
            Action::OpenFiles => Some(KeyboardShortcut::new(
                Modifiers::COMMAND.plus(Modifiers::SHIFT),
                Key::O,
            )),
            Action::ShowShortcuts => Some(KeyboardShortcut::new(Modifiers::NONE, Key::F1)),
            Action::Quit => Some(KeyboardShortcut::new(Modifiers::COMMAND, Key::Q)),
        }
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
            if let Some(s) = action.shortcut()
                && let Some(other) = seen.insert(s, action)
            {
                panic!("{action:?} and {other:?} both use {s:?}");
            }
        }
    }

    #[test]
    fn every_action_has_label_and_tooltip() {
        for action in Action::ALL {
            assert!(!action.label().is_empty() && !action.tooltip().is_empty(), "{action:?}");
        }
    }
}
