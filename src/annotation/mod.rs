//! The headless model of an annotation project: label classes; per image or slice a raster
//! mask per class, a review state, a HUE score and provenance; undoable edits; and crash-safe
//! autosave (a synced, checksummed journal compacted into atomic snapshots). Shared by the app
//! and the CLI, and testable without a window.
//!
//! May depend on `crate::study` (for exports) and on std, serde, image (PNG masks), flate2 and
//! crc32fast; never on burn, egui or any other module of ours.
//!
//! Every write to the project folder goes through a [`Storage`] (the real file system, or a
//! failing one in tests).
//!
//! Entry point: [`Project`] (`create`, `open`, `apply`, `begin_stroke`/`stroke_to`/`end_stroke`,
//! `undo`/`redo`, `save`, `export_png`/`export_nifti`). Coordinates are `image` pixels throughout.

mod autosave;
mod document;
mod edit;
mod editing;
mod error;
mod export;
mod history;
mod mask;
mod paint;
mod project;
mod record;
mod snapshot;
mod storage;

pub use autosave::RecoveryReport;
pub use document::{Item, ItemId, LabelClass, MaskProvenance, Provenance, ReviewState, Tool};
pub use edit::Edit;
pub use error::{AnnotationError, Result};
pub use history::Brush;
pub use mask::{ImageSize, MAX_SIDE, Mask, TILE_SIZE};
pub use paint::PasteMode;
pub use project::{Project, ProjectOptions};
pub use storage::{OsStorage, SharedStorage, Storage, os_storage};
