//! Opening (or creating) a study's project on a helper thread. Where the project lives and how
//! slices become items is decided in the annotation layer ([`open_study_project`]), which the
//! CLI uses too; this wraps the result in a [`Session`].

use std::path::{Path, PathBuf};

use crate::annotation::{AnnotationError, open_study_project};
use crate::study::Series;

use super::Session;

pub use crate::annotation::{OpenReport, fallback_dir, item_key};

/// The per-user data folder of m2c (`$XDG_DATA_HOME/m2c`, `~/.local/share/m2c`, or the
/// platform's equivalent).
pub fn user_data_dir() -> Option<PathBuf> {
    crate::engine::m2c_data_dir()
}

/// Opens the study's project (beside the study, else in the fallback folder), or creates it,
/// and registers every slice of `series`. `reuse` is a session already open for the same study
/// (after more files were opened): it keeps its project and undo history.
pub fn open_session(
    study: &Path,
    series: &[Series],
    data_dir: Option<&Path>,
    reuse: Option<Session>,
) -> Result<(Session, OpenReport), AnnotationError> {
    let reuse = reuse.filter(|s| s.study == study).map(|s| s.project);
    let opened = open_study_project(study, series, data_dir, reuse)?;
    let session = Session {
        project: opened.project,
        study: study.to_path_buf(),
        items: opened.items,
        overlay: None,
        last_stroke_point: None,
        stroke_item: None,
    };
    Ok((session, opened.report))
}
