//! The headless model of an annotation project: label classes; per image or slice a raster
//! mask per class, a review state, a HUE score and provenance; undoable edits; and crash-safe
//! autosave (a synced, checksummed journal compacted into atomic snapshots). Shared by the app
//! and the CLI, and testable without a window.
//!
//! May depend on `crate::study` (for exports) and on std, serde, image (PNG masks), flate2,
//! crc32fast and sha2; never on burn, egui or any other module of ours.
//!
//! Every write to the project folder goes through a [`Storage`] (the real file system, or a
//! failing one in tests).
//!
//! Entry point: [`Project`] (`create`, `open`, `apply`, `begin_stroke`/`stroke_to`/`end_stroke`,
//! `undo`/`redo`, `save`, `export_png`/`export_nifti`). Coordinates are `image` pixels throughout.
//! [`open_study_project`] finds or creates a study's project and registers its slices;
//! [`export_labels`] plans and writes an export (PNG, NIfTI, DICOM SEG); [`import_labels`]
//! brings labels from such files in. All serve the app and the CLI alike.

mod autosave;
mod document;
mod edit;
mod editing;
mod error;
mod export;
mod history;
mod import;
mod mask;
mod open;
mod paint;
mod project;
mod record;
mod snapshot;
mod storage;

pub use autosave::RecoveryReport;
pub use document::{Item, ItemId, LabelClass, MaskProvenance, Provenance, ReviewState, Tool};
pub use edit::Edit;
pub use error::{AnnotationError, Result};
pub use export::plan::{
    ExportFailure, ExportFormat, ExportRequest, ExportSummary, PNG_SIDECAR, export_labels,
};
pub use export::seg::{ImportedAlgorithm, SEGMENT_CODES_FILE, SegExportOptions, SegmentCoding};
pub use history::Brush;
pub use import::{ImportRequest, ImportSummary, LabelSource, import_labels};
pub use mask::{ImageSize, MAX_SIDE, Mask, TILE_SIZE};
pub use open::{
    CLASS_COLOURS, OpenReport, StudyProject, default_class, fallback_dir, find_study_project,
    item_key, open_study_project,
};
pub use paint::PasteMode;
pub use project::{Project, ProjectOptions};
pub use storage::{OsStorage, SharedStorage, Storage, os_storage};
