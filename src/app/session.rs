//! The annotation project of the open study as the app uses it: the [`Project`], which item
//! each slice is, the label map drawn by the overlay, and where the project lives.
//!
//! Opening (or creating) a project and registering the slices run on a helper thread
//! ([`open_session`]); the finished [`Session`] then lives on the UI thread, where every stroke
//! is journaled by the store before the call returns (that journal is the autosave).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};

use crate::annotation::{AnnotationError, ItemId, LabelClass, Project, ProjectOptions};
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

/// Generation numbers of overlay label maps: unique in the process, so the GPU copy (keyed by
/// size and generation) is refreshed for every rebuilt map, whatever item or project it is of.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

/// An open project and the slices it annotates.
#[derive(Debug)]
pub struct Session {
    pub project: Project,
    /// The study folder or file the project belongs to.
    pub study: PathBuf,
    /// `items[series][slice]`: the item of each slice, empty for a series that could not be
    /// registered.
    pub items: Vec<Vec<ItemId>>,
    /// The label map drawn for one item, dropped whenever the document changes.
    overlay: Option<OverlayLabels>,
    /// The last point of the drag in progress (`image` pixels), for [`Session::touch_stroke`].
    last_stroke_point: Option<[f32; 2]>,
    /// The item of the latest drag.
    stroke_item: Option<ItemId>,
}

/// The label values of one item, one byte per pixel.
#[derive(Debug, Clone)]
pub struct OverlayLabels {
    pub item: ItemId,
    pub width: u32,
    pub height: u32,
    pub labels: Arc<Vec<u8>>,
    pub generation: u64,
}

/// What [`open_session`] hands back besides the session: messages for the user.
#[derive(Debug, Default)]
pub struct OpenReport {
    /// Non-fatal problems (a series that could not be registered, a recovered journal).
    pub warnings: Vec<String>,
    /// The project was created in the fallback folder because the study's is not writable.
    pub used_fallback: bool,
}

impl Session {
    /// The item shown for slice `index` of `series`.
    pub fn item_at(&self, series: usize, index: usize) -> Option<ItemId> {
        self.items.get(series)?.get(index).copied()
    }

    /// Marks the document changed: the overlay is rebuilt on next use.
    pub fn touch(&mut self) {
        self.overlay = None;
        self.last_stroke_point = None;
    }

    /// Updates the overlay after brush stamps along `points_image` (and from the previous
    /// point when the drag `continues`), recomposing only the pixels within `radius_px` of
    /// them: a drag on a large image stays cheap. Falls back to a full rebuild when unsure.
    pub fn touch_stroke(
        &mut self,
        item: ItemId,
        points_image: &[[f32; 2]],
        radius_px: f32,
        continues: bool,
    ) {
        let previous = self.last_stroke_point.take().filter(|_| continues);
        self.last_stroke_point = points_image.last().copied();
        self.stroke_item = Some(item);
        let Some(o) = self.overlay.as_mut().filter(|o| o.item == item) else {
            self.overlay = None;
            return;
        };
        let reach = radius_px.max(0.0) + 2.0;
        let (mut min, mut max) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
        for p in previous.iter().chain(points_image) {
            for axis in 0..2 {
                min[axis] = min[axis].min(p[axis] - reach);
                max[axis] = max[axis].max(p[axis] + reach);
            }
        }
        // Float-to-int casts saturate; non-finite bounds give an empty rectangle.
        let clamp = |v: f32, len: u32| (v.floor().max(0.0) as u32).min(len) as usize;
        let (x0, x1) = (clamp(min[0], o.width), clamp(max[0] + 1.0, o.width));
        let (y0, y1) = (clamp(min[1], o.height), clamp(max[1] + 1.0, o.height));
        let Ok(masks) = self.project.masks(item) else {
            self.overlay = None;
            return;
        };
        let width = o.width as usize;
        let labels = Arc::make_mut(&mut o.labels);
        for y in y0..y1 {
            let row = y * width;
            let Some(out) = labels.get_mut(row + x0..row + x1) else {
                continue;
            };
            out.fill(0);
            for (&class, mask) in masks {
                let Some(bytes) = mask.as_bytes().get(row + x0..row + x1) else {
                    continue;
                };
                for (label, &set) in out.iter_mut().zip(bytes) {
                    if set != 0 {
                        *label = class;
                    }
                }
            }
        }
        o.generation = NEXT_GENERATION.fetch_add(1, Ordering::Relaxed);
    }

    /// The label map of `item` for the overlay (classes composed; the higher value wins).
    pub fn overlay_labels(&mut self, item: ItemId) -> Result<OverlayLabels, AnnotationError> {
        if let Some(o) = &self.overlay
            && o.item == item
        {
            return Ok(o.clone());
        }
        let size = self
            .project
            .item(item)
            .ok_or(AnnotationError::UnknownItem { item })?
            .size();
        let mut labels = vec![0u8; size.area()];
        for (&class, mask) in self.project.masks(item)? {
            for (label, &set) in labels.iter_mut().zip(mask.as_bytes()) {
                if set != 0 {
                    *label = class;
                }
            }
        }
        let overlay = OverlayLabels {
            item,
            width: size.width,
            height: size.height,
            labels: Arc::new(labels),
            generation: NEXT_GENERATION.fetch_add(1, Ordering::Relaxed),
        };
        self.overlay = Some(overlay.clone());
        Ok(overlay)
    }

    /// The item of the drag in progress, if the project has one.
    pub fn stroke_item(&self) -> Option<ItemId> {
        self.stroke_item.filter(|_| self.project.is_stroking())
    }

    /// Label classes in value order.
    pub fn classes(&self) -> Vec<LabelClass> {
        self.project.classes().cloned().collect()
    }

    /// A new class with the first free value and the next colour; `None` when all 255 are used.
    pub fn next_class(&self) -> Option<LabelClass> {
        let value = (1..=u8::MAX).find(|v| self.project.class(*v).is_none())?;
        Some(default_class(value))
    }
}

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

/// The per-user data folder of m2c (`$XDG_DATA_HOME/m2c`, `~/.local/share/m2c`, or the
/// platform's equivalent).
pub fn user_data_dir() -> Option<PathBuf> {
    let home = || {
        std::env::var_os("HOME")
            .or_else(|| std::env::var_os("USERPROFILE"))
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
    };
    let base = if cfg!(target_os = "windows") {
        std::env::var_os("APPDATA").map(PathBuf::from)
    } else if cfg!(target_os = "macos") {
        home().map(|h| h.join("Library").join("Application Support"))
    } else {
        std::env::var_os("XDG_DATA_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| home().map(|h| h.join(".local").join("share")))
    };
    base.map(|b| b.join("m2c"))
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

/// Opens the study's project (beside the study, else in the fallback folder), or creates it
/// (beside the study when that is writable, else in the fallback folder), makes sure it has a
/// class, and registers every slice of `series`. `reuse` is a session already open for the
/// same study (after more files were opened): it keeps its project and undo history.
pub fn open_session(
    study: &Path,
    series: &[Series],
    data_dir: Option<&Path>,
    reuse: Option<Session>,
) -> Result<(Session, OpenReport), AnnotationError> {
    let mut report = OpenReport::default();
    let mut project = match reuse {
        Some(s) if s.study == study => s.project,
        _ => open_or_create(study, data_dir, &mut report)?,
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
    let session = Session {
        project,
        study: study.to_path_buf(),
        items,
        overlay: None,
        last_stroke_point: None,
        stroke_item: None,
    };
    Ok((session, report))
}

fn open_or_create(
    study: &Path,
    data_dir: Option<&Path>,
    report: &mut OpenReport,
) -> Result<Project, AnnotationError> {
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
            // Locked by another window, or damaged: say so rather than start a second project.
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
) -> Result<Project, AnnotationError> {
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
        let (session, report) = open_session(&study, &[], None, None).unwrap();
        assert!(!report.used_fallback);
        assert_eq!(session.classes(), vec![default_class(1)]);
        assert!(!session.project.can_undo());
        assert_eq!(
            session.project.root(),
            Project::default_dir_for_study(&study)
        );
    }

    #[test]
    fn the_overlay_updated_along_a_stroke_equals_a_full_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let study = dir.path().join("s");
        std::fs::create_dir(&study).unwrap();
        image::GrayImage::new(90, 70)
            .save(study.join("a.png"))
            .unwrap();
        let found = crate::study::discover(&study);
        let (mut s, _) = open_session(&study, &found.series, None, None).unwrap();
        s.project.set_class(default_class(2)).unwrap();
        let item = s.item_at(0, 0).unwrap();
        s.overlay_labels(item).unwrap();
        let drags: [(u8, bool, &[[f32; 2]]); 3] = [
            (1, false, &[[5.0, 5.0], [40.0, 30.0], [88.0, 69.0]]),
            (2, false, &[[30.0, 40.0], [60.0, 10.0]]),
            (1, true, &[[35.0, 25.0], [50.0, 20.0]]),
        ];
        for (class, erase, points) in drags {
            let brush = crate::annotation::Brush {
                radius_px: 6.0,
                erase,
            };
            s.project.begin_stroke(item, class, brush).unwrap();
            for (k, p) in points.iter().enumerate() {
                s.project.stroke_to(*p).unwrap();
                s.touch_stroke(item, &[*p], brush.radius_px, k > 0);
            }
            s.project.end_stroke().unwrap();
        }
        let incremental = s.overlay_labels(item).unwrap();
        s.touch();
        let full = s.overlay_labels(item).unwrap();
        assert!(incremental.labels.iter().any(|&v| v == 2));
        assert_eq!(incremental.labels, full.labels);
        assert_ne!(incremental.generation, full.generation);
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
        let (session, report) = open_session(&study, &[], Some(&data), None).unwrap();
        assert!(report.used_fallback);
        assert!(session.project.root().starts_with(&data));
        assert!(!Project::default_dir_for_study(&study).exists());
        drop(session);
        // Reopening finds it there.
        let (again, _) = open_session(&study, &[], Some(&data), None).unwrap();
        assert!(again.project.root().starts_with(&data));
        std::fs::set_permissions(&study, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}
