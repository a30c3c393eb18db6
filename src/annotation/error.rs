//! `AnnotationError`: what failed while creating, opening, editing or saving a project.
//!
//! Variants are named after the failed operation, carry the path involved (last in the message)
//! and keep the source error. A failed journal append leaves the edit applied in memory and
//! queued for the next write, so the caller can tell the user and retry with `Project::flush`.

use std::path::PathBuf;

use super::document::ItemId;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnnotationError {
    #[error("cannot create the project: a project already exists in {path:?}")]
    ProjectExists { path: PathBuf },

    #[error(
        "cannot create the project inside the read-only study {study:?}: choose another folder than {project:?}"
    )]
    ProjectInsideReadOnlyStudy { project: PathBuf, study: PathBuf },

    #[error("failed to create the project folder {path:?}")]
    CreateProjectDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("no project found (missing snapshot) in {path:?}")]
    NotAProject { path: PathBuf },

    #[error("project is open in another window or process ({holder}; lock held on {path:?})")]
    ProjectLocked { holder: String, path: PathBuf },

    #[error("project is open read-only ({reason}): edits here cannot be saved {path:?}")]
    ReadOnly { reason: String, path: PathBuf },

    #[error(
        "the background compaction stopped unexpectedly (the edits are safe in the journal) {path:?}"
    )]
    CompactionFailed { path: PathBuf },

    #[error("failed to lock the project {path:?}")]
    LockProject {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("failed to read the project snapshot {path:?}")]
    ReadSnapshot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("failed to parse the project snapshot {path:?}")]
    ParseSnapshot {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("invalid project snapshot ({reason}) in {path:?}")]
    InvalidSnapshot { reason: String, path: PathBuf },

    #[error("failed to write the project snapshot {path:?}")]
    WriteSnapshot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("failed to open the edit journal {path:?}")]
    OpenJournal {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "failed to append to the edit journal (the edit is kept in memory and will be retried) {path:?}"
    )]
    AppendJournal {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("failed to read the mask file {path:?}")]
    ReadMask {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },

    #[error(
        "mask file is {actual_width}×{actual_height} but its image is {expected_width}×{expected_height}: {path:?}"
    )]
    MaskFileSizeMismatch {
        expected_width: u32,
        expected_height: u32,
        actual_width: u32,
        actual_height: u32,
        path: PathBuf,
    },

    #[error("failed to write the mask file {path:?}")]
    WriteMask {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("failed to encode the mask file {path:?}")]
    EncodeMask {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },

    #[error("no item {item:?} in this project")]
    UnknownItem { item: ItemId },

    #[error("no label class with value {value} in this project")]
    UnknownClass { value: u8 },

    #[error("label value 0 is reserved for background")]
    BackgroundClassValue,

    #[error("invalid image size {width}×{height} (each side must be 1..={max})", max = super::mask::MAX_SIDE)]
    InvalidImageSize { width: u32, height: u32 },

    #[error(
        "item already registered with size {expected_width}×{expected_height}, not {actual_width}×{actual_height}: {key:?}"
    )]
    ItemSizeMismatch {
        expected_width: u32,
        expected_height: u32,
        actual_width: u32,
        actual_height: u32,
        key: String,
    },

    #[error(
        "mask is {actual_width}×{actual_height} but item {item:?} is {expected_width}×{expected_height}"
    )]
    MaskSizeMismatch {
        item: ItemId,
        expected_width: u32,
        expected_height: u32,
        actual_width: u32,
        actual_height: u32,
    },

    #[error("HUE score must be finite, got {value}")]
    InvalidHue { value: f32 },

    #[error("fill seed ({x}, {y}) is outside the {width}×{height} image")]
    SeedOutsideImage {
        x: u32,
        y: u32,
        width: u32,
        height: u32,
    },

    #[error("brush radius must be finite and positive, got {radius_px}")]
    InvalidBrushRadius { radius_px: f32 },

    #[error("no brush stroke in progress")]
    NoStroke,

    #[error("failed to export labels to {path:?}")]
    WriteExport {
        path: PathBuf,
        #[source]
        source: crate::study::StudyError,
    },

    #[error("failed to write the export provenance sidecar {path:?}")]
    WriteExportSidecar {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot stack the slices into one volume: none given, or sizes differ ({path:?})")]
    ExportSlicesDiffer { path: PathBuf },

    #[error("failed to create the export folder {path:?}")]
    CreateExportFolder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("failed to read the segment codes {path:?}")]
    ReadSegmentCodes {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("failed to write the segment codes {path:?}")]
    WriteSegmentCodes {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("not a DICOM SEG, a NIfTI label volume or a folder of PNG masks: {path:?}")]
    UnknownLabelFormat { path: PathBuf },

    #[error("cannot import the labels in {path:?}")]
    ReadLabels {
        path: PathBuf,
        #[source]
        source: Box<crate::study::StudyError>,
    },

    #[error("cannot import the labels: every class value 1..=255 is taken ({path:?})")]
    TooManyClasses { path: PathBuf },

    #[error(
        "no PNG file in the folder is named after an image of the study (expected <image name>.png): {path:?}"
    )]
    NoMatchingMasks { path: PathBuf },

    #[error("series {series} is not part of the project (its slices could not be registered)")]
    SeriesNotInProject { series: usize },

    #[error("cannot place the labels in patient space ({path:?})")]
    SeriesGeometry {
        path: PathBuf,
        #[source]
        source: Box<crate::study::StudyError>,
    },
}

pub type Result<T, E = AnnotationError> = std::result::Result<T, E>;
