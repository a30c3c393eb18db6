//! Export planning shared by File → Export… and `m2c export-labels`: which items go into which
//! file (unique names, unlabelled images skipped on request), which grid a series is written
//! on (its patient grid, or the unit grid for images without one), and a summary with one
//! typed failure per series that could not be written. The app runs [`export_labels`] on a
//! helper thread; the CLI calls it directly.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::annotation::document::{ItemId, ReviewState};
use crate::annotation::error::{AnnotationError, Result};
use crate::annotation::export::seg::SegExportOptions;
use crate::annotation::project::Project;
use crate::study::{self, MaskEncoding, Series, SeriesKind, StudyError, VolumeGeometry};

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExportFormat {
    /// One PNG per image or slice.
    #[default]
    Png,
    /// One `.nii.gz` label volume per series, on the series' patient grid.
    Nifti,
    /// One DICOM Segmentation (`_seg.dcm`) per DICOM series.
    Seg,
}

impl ExportFormat {
    /// The name used on the command line (`png`, `nifti`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Nifti => "nifti",
            Self::Seg => "seg",
        }
    }
}

/// An export: format, options and the destination folder.
#[derive(Debug, Clone, Default)]
pub struct ExportRequest {
    pub format: ExportFormat,
    /// PNG: label values or 0/255.
    pub encoding: MaskEncoding,
    /// PNG: skip images nobody has annotated (their state is still "unlabelled").
    pub skip_unlabelled: bool,
    /// NIfTI: export series whose slices are unevenly spaced or tilted.
    pub allow_irregular: bool,
    /// DICOM SEG: codes, de-identification, UID root.
    pub seg: SegExportOptions,
    pub folder: PathBuf,
}

/// A series (numbered from 1, as `m2c info` and the study panel show it) that could not be
/// written, and why.
#[derive(Debug, Clone)]
pub struct ExportFailure {
    pub series: usize,
    pub error: Arc<AnnotationError>,
}

impl ExportFailure {
    /// Whether the series was refused for gantry tilt, uneven spacing or duplicate slices,
    /// which [`ExportRequest::allow_irregular`] accepts (sheared affine, mean spacing).
    pub fn is_irregular_geometry(&self) -> bool {
        matches!(
            self.error.as_ref(),
            AnnotationError::SeriesGeometry { source, .. }
                if matches!(**source, StudyError::IrregularGeometry { .. })
        )
    }
}

impl fmt::Display for ExportFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Series {}: {}", self.series, self.error)?;
        let mut source = std::error::Error::source(self.error.as_ref());
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Default)]
pub struct ExportSummary {
    pub files: usize,
    /// The label files written (PNG masks, volumes), in order.
    pub written: Vec<PathBuf>,
    pub skipped: usize,
    /// DICOM SEG: series with no labelled pixel (a segmentation needs at least one frame).
    pub empty_series: usize,
    /// One entry per series or image that could not be written.
    pub failures: Vec<ExportFailure>,
    pub folder: PathBuf,
    pub elapsed_secs: f64,
}

impl ExportSummary {
    /// One line for the dialog, the toast and the CLI.
    pub fn line(&self) -> String {
        let mut line = format!(
            "Wrote {} file{} to {} in {:.1} s",
            self.files,
            if self.files == 1 { "" } else { "s" },
            self.folder.display(),
            self.elapsed_secs
        );
        if self.skipped > 0 {
            line += &format!("; {} unlabelled image(s) skipped", self.skipped);
        }
        if self.empty_series > 0 {
            line += &format!("; {} series without labels not written", self.empty_series);
        }
        if !self.failures.is_empty() {
            line += &format!("; {} failed", self.failures.len());
        }
        line
    }
}

/// Writes the labels of `series` (whose slices are `items[series][slice]`, as registered by
/// [`crate::annotation::open_study_project`]) as `request` asks. `progress(done, total)` is
/// called as files are written. Fails as a whole only when the destination cannot be created
/// or (PNG) a mask cannot be written; a series that cannot be written as a volume is listed in
/// [`ExportSummary::failures`] and the others are still written.
pub fn export_labels(
    project: &mut Project,
    series: &[Series],
    items: &[Vec<ItemId>],
    request: &ExportRequest,
    progress: &dyn Fn(usize, usize),
) -> Result<ExportSummary> {
    let start = Instant::now();
    std::fs::create_dir_all(&request.folder).map_err(|source| {
        AnnotationError::CreateExportFolder {
            path: request.folder.clone(),
            source,
        }
    })?;
    let mut summary = match request.format {
        ExportFormat::Png => export_png(project, series, items, request, progress)?,
        ExportFormat::Nifti => export_nifti(project, series, items, request, progress),
        ExportFormat::Seg => {
            project.save_segment_codings(&request.seg.codes)?;
            export_seg(project, series, items, request, progress)
        }
    };
    summary.files = summary.written.len();
    summary.folder = request.folder.clone();
    summary.elapsed_secs = start.elapsed().as_secs_f64();
    tracing::info!(
        format = request.format.name(),
        files = summary.files,
        failures = summary.failures.len(),
        "labels exported"
    );
    Ok(summary)
}

fn export_png(
    project: &mut Project,
    series: &[Series],
    items: &[Vec<ItemId>],
    request: &ExportRequest,
    progress: &dyn Fn(usize, usize),
) -> Result<ExportSummary> {
    let mut summary = ExportSummary::default();
    let mut names = UniqueNames::default();
    let mut targets: Vec<(ItemId, PathBuf)> = Vec::new();
    for (k, s) in series.iter().enumerate() {
        for (i, frame) in s.frames.iter().enumerate() {
            let Some(&item) = items.get(k).and_then(|v| v.get(i)) else {
                continue;
            };
            let unlabelled = project
                .item(item)
                .is_none_or(|it| it.state() == ReviewState::Unlabelled);
            if request.skip_unlabelled && unlabelled {
                summary.skipped += 1;
                continue;
            }
            let multi_frame = s.frames.iter().filter(|f| f.path == frame.path).count() > 1;
            let path = study::mask_path_for(
                &frame.path,
                multi_frame.then_some(frame.frame),
                &request.folder,
            );
            targets.push((item, names.claim(path)));
        }
    }
    progress(0, targets.len());
    let sidecar = request.folder.join(PNG_SIDECAR);
    project.export_png(&targets, request.encoding, &sidecar)?;
    progress(targets.len(), targets.len());
    summary.written = targets.into_iter().map(|(_, p)| p).collect();
    Ok(summary)
}

/// The provenance file written beside exported PNG masks.
pub const PNG_SIDECAR: &str = "m2c_masks.json";

fn export_nifti(
    project: &mut Project,
    series: &[Series],
    items: &[Vec<ItemId>],
    request: &ExportRequest,
    progress: &dyn Fn(usize, usize),
) -> ExportSummary {
    let mut summary = ExportSummary::default();
    let mut names = UniqueNames::default();
    for (k, s) in series.iter().enumerate() {
        progress(k, series.len());
        let result = series_items(items, k, s).and_then(|slices| {
            let geometry = volume_geometry(s, request.allow_irregular)?;
            let path = names.claim(request.folder.join(format!("{}_labels.nii.gz", stem(s, k))));
            let provenance = study::Provenance::for_series(s, false);
            project.export_nifti(slices, &geometry, &path, provenance)?;
            Ok(path)
        });
        match result {
            Ok(path) => summary.written.push(path),
            Err(error) => summary.failures.push(ExportFailure {
                series: k + 1,
                error: Arc::new(error),
            }),
        }
    }
    progress(series.len(), series.len());
    summary
}

fn export_seg(
    project: &mut Project,
    series: &[Series],
    items: &[Vec<ItemId>],
    request: &ExportRequest,
    progress: &dyn Fn(usize, usize),
) -> ExportSummary {
    let mut summary = ExportSummary::default();
    let mut names = UniqueNames::default();
    for (k, s) in series.iter().enumerate() {
        progress(k, series.len());
        let result = series_items(items, k, s).and_then(|slices| {
            let path = names.claim(request.folder.join(format!("{}_seg.dcm", stem(s, k))));
            project.export_seg(slices, s, &path, &request.seg)
        });
        match result {
            Ok(written) => summary.written.push(written.path),
            Err(AnnotationError::WriteExport {
                source: StudyError::SegNothingToWrite { .. },
                ..
            }) => summary.empty_series += 1,
            Err(error) => summary.failures.push(ExportFailure {
                series: k + 1,
                error: Arc::new(error),
            }),
        }
    }
    progress(series.len(), series.len());
    summary
}

/// The items of series `k`, one per slice.
pub(crate) fn series_items<'a>(
    items: &'a [Vec<ItemId>],
    k: usize,
    s: &Series,
) -> Result<&'a [ItemId]> {
    items
        .get(k)
        .filter(|v| v.len() == s.len() && !v.is_empty())
        .map(Vec::as_slice)
        .ok_or(AnnotationError::SeriesNotInProject { series: k + 1 })
}

/// The grid a label volume of `s` is written on: its patient grid, or for images without one
/// (photos, 2D images) the unit grid, which readers will not place in a patient.
pub(crate) fn volume_geometry(s: &Series, allow_irregular: bool) -> Result<VolumeGeometry> {
    match s.export_geometry(allow_irregular) {
        Ok(g) => Ok(g.clone()),
        Err(StudyError::NoGeometry { .. })
            if s.kind == SeriesKind::Raster || s.geometry.is_none() =>
        {
            Ok(VolumeGeometry::unit_grid([
                s.width as usize,
                s.height as usize,
                s.len(),
            ]))
        }
        Err(source) => Err(AnnotationError::SeriesGeometry {
            path: s.first_path().map(Path::to_path_buf).unwrap_or_default(),
            source: Box::new(source),
        }),
    }
}

/// The output name stem of series `k`: its first file's stem, else `series<k+1>`.
pub(crate) fn stem(s: &Series, k: usize) -> String {
    s.first_path().and_then(Path::file_stem).map_or_else(
        || format!("series{}", k + 1),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Output paths already handed out: a second `a.png` becomes `a_2.png`.
#[derive(Debug, Default)]
pub(crate) struct UniqueNames {
    taken: HashSet<PathBuf>,
}

impl UniqueNames {
    pub(crate) fn claim(&mut self, path: PathBuf) -> PathBuf {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (stem, ext) = match name.find('.') {
            Some(dot) => (name[..dot].to_owned(), name[dot..].to_owned()),
            None => (name.clone(), String::new()),
        };
        let mut candidate = path.clone();
        let mut n = 2;
        while self.taken.contains(&candidate) {
            candidate = path.with_file_name(format!("{stem}_{n}{ext}"));
            n += 1;
        }
        self.taken.insert(candidate.clone());
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotation::{Brush, open_study_project};

    #[test]
    fn repeated_names_get_a_number_before_the_extension() {
        let mut names = UniqueNames::default();
        let p = PathBuf::from("/out/img.nii.gz");
        assert_eq!(names.claim(p.clone()), p);
        assert_eq!(names.claim(p.clone()), PathBuf::from("/out/img_2.nii.gz"));
        assert_eq!(names.claim(p), PathBuf::from("/out/img_3.nii.gz"));
    }

    /// Two same-named images in two folders, one annotated: PNG export skips the unlabelled
    /// one on request and never gives two masks one name; NIfTI writes each on the unit grid.
    #[test]
    fn plans_unique_names_skips_unlabelled_and_falls_back_to_the_unit_grid() {
        let dir = tempfile::tempdir().unwrap();
        let study = dir.path().join("s");
        for sub in ["a", "b"] {
            std::fs::create_dir_all(study.join(sub)).unwrap();
            image::GrayImage::new(30, 20)
                .save(study.join(sub).join("img.png"))
                .unwrap();
        }
        let found = study::discover(&study);
        assert_eq!(found.series.len(), 2);
        let mut opened = open_study_project(&study, &found.series, None, None).unwrap();
        let project = &mut opened.project;
        let first = opened.items[0][0];
        project
            .begin_stroke(
                first,
                1,
                Brush {
                    radius_px: 4.0,
                    erase: false,
                },
            )
            .unwrap();
        project.stroke_to([10.0, 10.0]).unwrap();
        project.end_stroke().unwrap();

        let out = dir.path().join("out");
        let mut request = ExportRequest {
            folder: out.clone(),
            ..ExportRequest::default()
        };
        let all =
            export_labels(project, &found.series, &opened.items, &request, &|_, _| {}).unwrap();
        assert_eq!(all.files, 2);
        assert_eq!(
            all.written,
            vec![out.join("img.png"), out.join("img_2.png")]
        );
        request.skip_unlabelled = true;
        let some =
            export_labels(project, &found.series, &opened.items, &request, &|_, _| {}).unwrap();
        assert_eq!((some.files, some.skipped), (1, 1));

        request.format = ExportFormat::Nifti;
        let volumes =
            export_labels(project, &found.series, &opened.items, &request, &|_, _| {}).unwrap();
        assert!(volumes.failures.is_empty(), "{:?}", volumes.failures);
        assert_eq!(
            volumes.written,
            vec![
                out.join("img_labels.nii.gz"),
                out.join("img_labels_2.nii.gz")
            ]
        );
    }

    #[test]
    fn a_series_without_items_is_a_typed_failure_and_the_others_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let study = dir.path().join("s");
        std::fs::create_dir_all(&study).unwrap();
        image::GrayImage::new(30, 20)
            .save(study.join("one.png"))
            .unwrap();
        let found = study::discover(&study);
        let mut opened = open_study_project(&study, &found.series, None, None).unwrap();
        let mut two = found.series.clone();
        two.extend(found.series.clone());
        let request = ExportRequest {
            format: ExportFormat::Nifti,
            folder: dir.path().join("out"),
            ..ExportRequest::default()
        };
        let summary = export_labels(
            &mut opened.project,
            &two,
            &opened.items,
            &request,
            &|_, _| {},
        )
        .unwrap();
        assert_eq!(summary.files, 1);
        let [failure] = summary.failures.as_slice() else {
            panic!("one failure expected: {:?}", summary.failures);
        };
        assert_eq!(failure.series, 2);
        assert!(matches!(
            *failure.error,
            AnnotationError::SeriesNotInProject { series: 2 }
        ));
        assert!(summary.line().contains("1 failed"), "{}", summary.line());
    }
}
