//! Finding, opening or creating a study's project and registering every slice of the study as
//! an item (keyed by its path relative to the study). The app and the CLI (`m2c export-labels`,
//! `m2c import-labels`) both go through [`open_study_project`], so they find the same project
//! folder and the same items.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::document::{ItemId, LabelClass};
use super::error::{AnnotationError, Result};
use super::project::{Project, ProjectOptions};
use crate::study::{FrameRef, Series};

/// sRGB colours for new label classes (Okabe–Ito: told apart with colour-blindness too).
pub const CLASS_COLOURS: [[u8; 3]; 8] = [
    [230, 159, 0],
    [86, 180, 233],
    [0, 158, 115],
    [240, 228, 66],
    [0, 114, 178],
    [213, 94, 0],
    [204, 121, 167],
    [153, 153, 153],
];

/// "Label n" with the n-th colour.
pub fn default_class(value: u8) -> LabelClass {
    let colour = CLASS_COLOURS
        .get(usize::from(value.saturating_sub(1)) % CLASS_COLOURS.len())
        .copied()
        .unwrap_or([255, 0, 0]);
    LabelClass {
        value,
        name: format!("Label {value}"),
        colour,
        concept: None,
    }
}

/// What [`open_study_project`] hands back besides the project: messages for the user.
#[derive(Debug, Default)]
pub struct OpenReport {
    /// Non-fatal problems (a series that could not be registered, a recovered journal).
    pub warnings: Vec<String>,
    /// The project was created in the fallback folder because the study's is not writable.
    pub used_fallback: bool,
}

/// A study's project with the item of every slice: `items[series][slice]`, empty for a series
/// that could not be registered.
#[derive(Debug)]
pub struct StudyProject {
    pub project: Project,
    pub items: Vec<Vec<ItemId>>,
    pub report: OpenReport,
}

/// The item key of one frame: its path relative to the study (forward slashes), or the whole
/// path for a file outside it, plus `#frame` for frames after the first of a multi-frame file.
/// Stable across sessions as long as the study is opened from the same place.
pub fn item_key(study: &Path, frame: &FrameRef) -> String {
    let relative = if study.is_file() || frame.path == study {
        frame.path.file_name().map(PathBuf::from)
    } else {
        frame.path.strip_prefix(study).ok().map(Path::to_path_buf)
    };
    let mut key = match relative.filter(|r| !r.as_os_str().is_empty()) {
        // Forward slashes, so a study keeps its keys when it moves between systems.
        Some(r) => r
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
        None => frame.path.to_string_lossy().into_owned(),
    };
    if frame.frame != 0 {
        key += &format!("#{}", frame.frame);
    }
    key
}

/// Where a study's project goes when it cannot sit beside the study:
/// `<data_dir>/projects/<study name>-<hash of its absolute path>.m2c`.
pub fn fallback_dir(data_dir: &Path, study: &Path) -> PathBuf {
    let absolute = std::path::absolute(study).unwrap_or_else(|_| study.to_path_buf());
    let digest = Sha256::digest(absolute.to_string_lossy().as_bytes());
    let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let name = study
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "study".to_owned());
    data_dir.join("projects").join(format!("{name}-{hash}.m2c"))
}

/// Whether a new project may be created beside `study`: neither the study nor the folder
/// holding it is marked read-only.
fn may_write_beside(study: &Path) -> bool {
    let parent = match study.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let writable = |p: &Path| std::fs::metadata(p).is_ok_and(|m| !m.permissions().readonly());
    writable(parent) && writable(study)
}

/// Opens the study's project (beside the study, else in `data_dir`'s fallback folder), or
/// creates it (beside the study when that is writable, else in the fallback folder), makes
/// sure it has a class, and registers every slice of `series`. `reuse` is a project already
/// open for the same study (after more files were opened): it keeps its undo history.
pub fn open_study_project(
    study: &Path,
    series: &[Series],
    data_dir: Option<&Path>,
    reuse: Option<Project>,
) -> Result<StudyProject> {
    let mut report = OpenReport::default();
    let mut project = match reuse {
        Some(p) => p,
        None => open_or_create(study, data_dir, &mut report)?,
    };
    let recovery = project.recovery();
    if recovery.lost_anything() {
        report.warnings.push(format!(
            "The project was recovered after a crash; {} damaged bytes at the end of its journal were dropped",
            recovery.dropped_bytes
        ));
    }
    let mut items = Vec::with_capacity(series.len());
    for (k, s) in series.iter().enumerate() {
        let keys: Vec<String> = s.frames.iter().map(|f| item_key(study, f)).collect();
        match project.add_items(keys.iter().map(|k| (k.as_str(), s.width, s.height))) {
            Ok(ids) => items.push(ids),
            Err(e) => {
                report
                    .warnings
                    .push(format!("Series {} cannot be annotated: {e}", k + 1));
                items.push(Vec::new());
            }
        }
    }
    Ok(StudyProject {
        project,
        items,
        report,
    })
}

/// Opens the study's existing project without creating one: `NotAProject` when there is none
/// beside the study nor in the fallback folder.
pub fn find_study_project(study: &Path, data_dir: Option<&Path>) -> Result<Project> {
    let options = ProjectOptions::default();
    let beside = Project::default_dir_for_study(study);
    let fallback = data_dir.map(|d| fallback_dir(d, study));
    for dir in std::iter::once(&beside).chain(fallback.as_ref()) {
        match Project::open(dir, options) {
            Err(AnnotationError::NotAProject { .. }) => {}
            other => return other,
        }
    }
    Err(AnnotationError::NotAProject { path: beside })
}

fn open_or_create(
    study: &Path,
    data_dir: Option<&Path>,
    report: &mut OpenReport,
) -> Result<Project> {
    let options = ProjectOptions::default();
    let beside = Project::default_dir_for_study(study);
    let fallback = data_dir.map(|d| fallback_dir(d, study));
    for dir in std::iter::once(&beside).chain(fallback.as_ref()) {
        match Project::open(dir, options) {
            Ok(p) => {
                report.used_fallback = *dir != beside;
                return with_default_class(p, dir, options);
            }
            Err(AnnotationError::NotAProject { .. }) => {}
            // Another window edits it: show it read-only here, and say why.
            Err(AnnotationError::ProjectLocked { holder, .. }) => {
                let reason = format!("Open in another M2C window ({holder})");
                report.warnings.push(format!(
                    "{reason}: this window shows the project read-only and refuses edits. \
                     Close the other window and open the study again to edit here."
                ));
                report.used_fallback = *dir != beside;
                return Project::open_read_only(dir, options, reason);
            }
            // Damaged: say so rather than start a second project.
            Err(e) => return Err(e),
        }
    }
    if may_write_beside(study) {
        match Project::create(&beside, Some(study), options) {
            Ok(p) => return with_default_class(p, &beside, options),
            Err(e) if fallback.is_none() => return Err(e),
            Err(e) => tracing::warn!(
                "could not create the project beside the study, using the data folder: {e}"
            ),
        }
    }
    let Some(fallback) = fallback else {
        return Err(AnnotationError::ProjectInsideReadOnlyStudy {
            project: beside,
            study: study.to_path_buf(),
        });
    };
    report.used_fallback = true;
    let project = Project::create(&fallback, Some(study), options)?;
    with_default_class(project, &fallback, options)
}

/// A new project gets "Label 1". Reopened afterwards so the class is not an undo step.
fn with_default_class(
    mut project: Project,
    dir: &Path,
    options: ProjectOptions,
) -> Result<Project> {
    if project.classes().next().is_some() {
        return Ok(project);
    }
    project.set_class(default_class(1))?;
    drop(project);
    Project::open(dir, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(path: &str, frame: u32) -> FrameRef {
        FrameRef {
            path: PathBuf::from(path),
            frame,
        }
    }

    #[test]
    fn item_keys_are_relative_to_the_study_and_name_later_frames() {
        let study = Path::new("/data/study");
        assert_eq!(item_key(study, &frame("/data/study/a/b.dcm", 0)), "a/b.dcm");
        assert_eq!(
            item_key(study, &frame("/data/study/cine.dcm", 3)),
            "cine.dcm#3"
        );
        assert_eq!(
            item_key(study, &frame("/elsewhere/c.png", 0)),
            "/elsewhere/c.png"
        );
    }

    #[test]
    fn fallback_folders_differ_per_study_path() {
        let data = Path::new("/home/u/.local/share/m2c");
        let a = fallback_dir(data, Path::new("/mnt/cd/study"));
        let b = fallback_dir(data, Path::new("/mnt/usb/study"));
        assert_ne!(a, b);
        assert!(a.starts_with(data.join("projects")));
        assert!(
            a.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("study-")
        );
    }

    #[test]
    fn a_new_project_has_one_class_and_no_undo_step() {
        let dir = tempfile::tempdir().unwrap();
        let study = dir.path().join("s");
        std::fs::create_dir(&study).unwrap();
        let opened = open_study_project(&study, &[], None, None).unwrap();
        assert!(!opened.report.used_fallback);
        let classes: Vec<_> = opened.project.classes().cloned().collect();
        assert_eq!(classes, vec![default_class(1)]);
        assert!(!opened.project.can_undo());
        assert_eq!(
            opened.project.root(),
            Project::default_dir_for_study(&study)
        );
        drop(opened);
        assert!(find_study_project(&study, None).is_ok());
        let other = dir.path().join("other");
        assert!(matches!(
            find_study_project(&other, None),
            Err(AnnotationError::NotAProject { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_read_only_study_gets_its_project_in_the_data_folder() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let study = dir.path().join("ro");
        std::fs::create_dir(&study).unwrap();
        std::fs::set_permissions(&study, std::fs::Permissions::from_mode(0o555)).unwrap();
        let data = dir.path().join("data");
        let opened = open_study_project(&study, &[], Some(&data), None).unwrap();
        assert!(opened.report.used_fallback);
        assert!(opened.project.root().starts_with(&data));
        assert!(!Project::default_dir_for_study(&study).exists());
        drop(opened);
        // Reopening finds it there.
        let again = open_study_project(&study, &[], Some(&data), None).unwrap();
        assert!(again.project.root().starts_with(&data));
        std::fs::set_permissions(&study, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}
