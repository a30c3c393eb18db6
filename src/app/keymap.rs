//! Every user action with its label, tooltip and default shortcuts: menus, tooltips and the
//! shortcut help are all built from this one table, and a test rejects conflicting shortcuts.
//!
//! egui matches shortcuts "logically" (an extra Shift or Alt still matches), so
//! [`shortcut_table`] lists the most specific chords first: Ctrl+Shift+Z is consumed before
//! Ctrl+Z, Shift+1 before 1.

use egui::{Key, KeyboardShortcut, Modifiers};

use crate::study::WindowPreset;

/// Label classes reachable from the number keys 1–9.
pub const LABEL_KEYS: usize = 9;

/// A user action the app can perform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    OpenFolder,
    OpenFiles,
    Export,
    /// Bring in labels made elsewhere (DICOM SEG, NIfTI, PNG masks).
    ImportLabels,
    Save,
    Undo,
    Redo,
    NextImage,
    PreviousImage,
    NextSlice,
    PreviousSlice,
    FitView,
    /// Window preset by position in [`WindowPreset::ALL`] (Shift+1 … Shift+5).
    WindowPreset(usize),
    Brush,
    Eraser,
    BrushSmaller,
    BrushLarger,
    /// The n-th label class (0-based position in the class list; keys 1 … 9).
    SelectLabel(usize),
    ToggleOverlay,
    ToggleOutline,
    OverlayLessOpaque,
    OverlayMoreOpaque,
    /// Learn the selected label's concept from its labelled images, then predict the rest.
    LearnConcept,
    NextFlagged,
    PreviousFlagged,
    /// Accept the image's masks as they are and go to the next flagged image.
    AcceptAndNext,
    /// Discard the model's prediction on this image.
    RejectPrediction,
    ToggleHeatmap,
    /// Box tool: drag a box around one object to segment it.
    BoxTool,
    Settings,
    ShowShortcuts,
    /// Help → Get SAM3 weights…: what to download, then check and install it.
    GetWeights,
    Quit,
}

const fn key(k: Key) -> KeyboardShortcut {
    KeyboardShortcut::new(Modifiers::NONE, k)
}

const fn command(k: Key) -> KeyboardShortcut {
    KeyboardShortcut::new(Modifiers::COMMAND, k)
}

const PRESET_KEYS: [Key; 5] = [Key::Num1, Key::Num2, Key::Num3, Key::Num4, Key::Num5];
const LABEL_KEY_LIST: [Key; LABEL_KEYS] = [
    Key::Num1,
    Key::Num2,
    Key::Num3,
    Key::Num4,
    Key::Num5,
    Key::Num6,
    Key::Num7,
    Key::Num8,
    Key::Num9,
];

impl Action {
    /// Every action, in menu order.
    pub const ALL: [Action; 45] = [
        Action::OpenFolder,
        Action::OpenFiles,
        Action::Export,
        Action::ImportLabels,
        Action::Save,
        Action::Undo,
        Action::Redo,
        Action::NextImage,
        Action::PreviousImage,
        Action::NextSlice,
        Action::PreviousSlice,
        Action::FitView,
        Action::WindowPreset(0),
        Action::WindowPreset(1),
        Action::WindowPreset(2),
        Action::WindowPreset(3),
        Action::WindowPreset(4),
        Action::Brush,
        Action::Eraser,
        Action::BrushSmaller,
        Action::BrushLarger,
        Action::SelectLabel(0),
        Action::SelectLabel(1),
        Action::SelectLabel(2),
        Action::SelectLabel(3),
        Action::SelectLabel(4),
        Action::SelectLabel(5),
        Action::SelectLabel(6),
        Action::SelectLabel(7),
        Action::SelectLabel(8),
        Action::ToggleOverlay,
        Action::ToggleOutline,
        Action::OverlayLessOpaque,
        Action::OverlayMoreOpaque,
        Action::BoxTool,
        Action::LearnConcept,
        Action::NextFlagged,
        Action::PreviousFlagged,
        Action::AcceptAndNext,
        Action::RejectPrediction,
        Action::ToggleHeatmap,
        Action::Settings,
        Action::ShowShortcuts,
        Action::GetWeights,
        Action::Quit,
    ];

    /// Menu and button label.
    pub fn label(self) -> &'static str {
        const LABELS: [&str; LABEL_KEYS] = [
            "Label 1", "Label 2", "Label 3", "Label 4", "Label 5", "Label 6", "Label 7", "Label 8",
            "Label 9",
        ];
        match self {
            Action::OpenFolder => "Open folder…",
            Action::OpenFiles => "Open files…",
            Action::Export => "Export…",
            Action::ImportLabels => "Import labels…",
            Action::Save => "Save now",
            Action::Undo => "Undo",
            Action::Redo => "Redo",
            Action::NextImage => "Next image",
            Action::PreviousImage => "Previous image",
            Action::NextSlice => "Next slice",
            Action::PreviousSlice => "Previous slice",
            Action::FitView => "Fit image to view",
            Action::WindowPreset(i) => WindowPreset::ALL
                .get(i)
                .map_or("Window preset", |p| p.label()),
            Action::Brush => "Brush",
            Action::Eraser => "Eraser",
            Action::BrushSmaller => "Smaller brush",
            Action::BrushLarger => "Larger brush",
            Action::SelectLabel(i) => LABELS.get(i).copied().unwrap_or("Label"),
            Action::ToggleOverlay => "Show/hide masks",
            Action::ToggleOutline => "Fill/outline masks",
            Action::OverlayLessOpaque => "Masks more transparent",
            Action::OverlayMoreOpaque => "Masks more opaque",
            Action::LearnConcept => "Learn concept",
            Action::NextFlagged => "Next flagged image",
            Action::PreviousFlagged => "Previous flagged image",
            Action::AcceptAndNext => "Accept and next",
            Action::RejectPrediction => "Reject prediction",
            Action::ToggleHeatmap => "Show/hide uncertainty",
            Action::BoxTool => "Box",
            Action::Settings => "Settings…",
            Action::ShowShortcuts => "Keyboard shortcuts",
            Action::GetWeights => "Get SAM3 weights…",
            Action::Quit => "Quit",
        }
    }

    /// One sentence for the tooltip.
    pub fn tooltip(self) -> &'static str {
        match self {
            Action::OpenFolder => {
                "Open a study folder: a DICOM series or a folder of PNG/JPEG images"
            }
            Action::OpenFiles => "Open DICOM or image files",
            Action::Export => {
                "Write the masks as PNG files, one NIfTI volume per series or one DICOM SEG per \
                 series"
            }
            Action::ImportLabels => {
                "Bring in labels made elsewhere: a DICOM SEG or NIfTI label volume of this study, \
                 or a folder of PNG masks named after the images"
            }
            Action::Save => "Every stroke is saved as you draw; this retries a save that failed",
            Action::Undo => "Undo the last stroke or edit",
            Action::Redo => "Redo what was undone",
            Action::NextImage => "Go to the next image (the next slice, then the next series)",
            Action::PreviousImage => {
                "Go to the previous image (the previous slice, then the previous series)"
            }
            Action::NextSlice => "Show the next slice of the series",
            Action::PreviousSlice => "Show the previous slice of the series",
            Action::FitView => "Zoom so the whole image fits the view",
            Action::WindowPreset(_) => "Apply this window/level preset (CT values in HU)",
            Action::Brush => "Paint the selected label with the left mouse button",
            Action::Eraser => "Erase the selected label with the left mouse button",
            Action::BrushSmaller => "Make the brush smaller",
            Action::BrushLarger => "Make the brush larger",
            Action::SelectLabel(_) => "Draw with this label (position in the label list)",
            Action::ToggleOverlay => {
                "Hide the masks to see the image underneath, or show them again"
            }
            Action::ToggleOutline => "Draw masks filled or as outlines only",
            Action::OverlayLessOpaque => "Lower the mask opacity",
            Action::OverlayMoreOpaque => "Raise the mask opacity",
            Action::LearnConcept => {
                "Learn the selected label from the images you labelled, then segment every other \
                 image and flag the uncertain ones for review"
            }
            Action::NextFlagged => "Go to the next image flagged for review (most uncertain first)",
            Action::PreviousFlagged => "Go back to the previous flagged image",
            Action::AcceptAndNext => {
                "Accept this image's masks as they are (corrections included) and go to the next \
                 flagged image"
            }
            Action::RejectPrediction => {
                "Discard the model's masks on this image; it becomes unlabelled"
            }
            Action::ToggleHeatmap => {
                "Show where the model is unsure (per-pixel uncertainty, with a legend)"
            }
            Action::BoxTool => {
                "Drag a box around one object: the model segments what is inside with the \
                 selected label"
            }
            Action::Settings => "SAM3 weights, compute device and precision",
            Action::ShowShortcuts => "List every keyboard shortcut",
            Action::GetWeights => {
                "What to download for automatic segmentation and where from; checks the file \
                 and installs it"
            }
            Action::Quit => "Close M2C Annotator (accepted work is already saved)",
        }
    }

    /// Default shortcuts; the first is the one menus show.
    pub fn shortcuts(self) -> Vec<KeyboardShortcut> {
        match self {
            Action::OpenFolder => vec![command(Key::O)],
            Action::OpenFiles => vec![KeyboardShortcut::new(
                Modifiers::COMMAND.plus(Modifiers::SHIFT),
                Key::O,
            )],
            Action::Export => vec![command(Key::E)],
            Action::ImportLabels => vec![command(Key::I)],
            Action::Save => vec![command(Key::S)],
            Action::Undo => vec![command(Key::Z)],
            Action::Redo => vec![
                KeyboardShortcut::new(Modifiers::COMMAND.plus(Modifiers::SHIFT), Key::Z),
                command(Key::Y),
            ],
            Action::NextImage => vec![key(Key::D), key(Key::ArrowRight)],
            Action::PreviousImage => vec![key(Key::A), key(Key::ArrowLeft)],
            Action::NextSlice => vec![key(Key::ArrowDown), key(Key::PageDown)],
            Action::PreviousSlice => vec![key(Key::ArrowUp), key(Key::PageUp)],
            Action::FitView => vec![key(Key::F)],
            Action::WindowPreset(i) => PRESET_KEYS
                .get(i)
                .map(|k| KeyboardShortcut::new(Modifiers::SHIFT, *k))
                .into_iter()
                .collect(),
            Action::Brush => vec![key(Key::B)],
            Action::Eraser => vec![key(Key::E)],
            Action::BrushSmaller => vec![key(Key::OpenBracket)],
            Action::BrushLarger => vec![key(Key::CloseBracket)],
            Action::SelectLabel(i) => LABEL_KEY_LIST.get(i).map(|k| key(*k)).into_iter().collect(),
            Action::ToggleOverlay => vec![key(Key::H)],
            Action::ToggleOutline => vec![key(Key::O)],
            Action::OverlayLessOpaque => vec![key(Key::Comma)],
            Action::OverlayMoreOpaque => vec![key(Key::Period)],
            Action::LearnConcept => vec![key(Key::L)],
            Action::NextFlagged => vec![KeyboardShortcut::new(Modifiers::SHIFT, Key::D)],
            Action::PreviousFlagged => vec![KeyboardShortcut::new(Modifiers::SHIFT, Key::A)],
            Action::AcceptAndNext => vec![key(Key::Enter)],
            Action::RejectPrediction => vec![key(Key::Escape)],
            Action::ToggleHeatmap => vec![key(Key::U)],
            Action::BoxTool => vec![key(Key::W)],
            Action::Settings => vec![command(Key::Comma)],
            Action::ShowShortcuts => vec![key(Key::F1)],
            Action::GetWeights => Vec::new(),
            Action::Quit => vec![command(Key::Q)],
        }
    }

    /// The shortcut shown in menus.
    pub fn shortcut(self) -> Option<KeyboardShortcut> {
        self.shortcuts().into_iter().next()
    }
}

/// Every (shortcut, action) pair, most specific chord first, in the order key handling must
/// try them.
pub fn shortcut_table() -> Vec<(KeyboardShortcut, Action)> {
    let mut table: Vec<(KeyboardShortcut, Action)> = Action::ALL
        .iter()
        .flat_map(|&a| a.shortcuts().into_iter().map(move |s| (s, a)))
        .collect();
    let specificity = |m: Modifiers| {
        usize::from(m.command || m.ctrl || m.mac_cmd) + usize::from(m.shift) + usize::from(m.alt)
    };
    // Stable: actions keep their table order within one level of specificity.
    table.sort_by_key(|(s, _)| std::cmp::Reverse(specificity(s.modifiers)));
    table
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
            assert!(
                !action.label().is_empty() && !action.tooltip().is_empty(),
                "{action:?}"
            );
        }
        for (i, p) in WindowPreset::ALL.iter().enumerate() {
            assert_eq!(Action::WindowPreset(i).label(), p.label());
            assert_eq!(Action::WindowPreset(i).shortcuts().len(), 1);
        }
        for i in 0..LABEL_KEYS {
            assert_eq!(Action::SelectLabel(i).shortcuts().len(), 1);
        }
    }

    #[test]
    fn specific_chords_are_tried_before_the_plain_ones_they_contain() {
        let table = shortcut_table();
        let at = |s: KeyboardShortcut| table.iter().position(|(t, _)| *t == s).unwrap();
        let redo = KeyboardShortcut::new(Modifiers::COMMAND.plus(Modifiers::SHIFT), Key::Z);
        assert!(at(redo) < at(command(Key::Z)));
        let lung = KeyboardShortcut::new(Modifiers::SHIFT, Key::Num3);
        assert!(at(lung) < at(key(Key::Num3)));
    }
}
