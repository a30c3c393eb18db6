//! Labels someone already made, brought into a project: a DICOM Segmentation that references
//! the study's series, a NIfTI label volume on a series' grid, or a folder of PNG masks named
//! after the images. Shared by File → Import labels…, drag-and-drop and `m2c import-labels`.
//!
//! Everything is read and checked before the project changes: a file made for another
//! series, of another size, or unreadable is refused with the file and the mismatch named,
//! and nothing in the project changes. A successful import is one undo step
//! ([`Edit::ImportMasks`]): each imported mask replaces that class's mask on its image, the
//! image becomes `Corrected` (it counts as labelled for learning and predictions never
//! overwrite it), and the mask's provenance records tool `Import` and the file's name.
//! Segment codes and algorithm of an imported SEG are kept in the project's segment codes,
//! so exporting it again describes the segments as the file did.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::document::{ItemId, LabelClass, Provenance};
use super::edit::Edit;
use super::error::{AnnotationError, Result};
use super::export::plan::volume_geometry;
use super::export::seg::{ImportedAlgorithm, SegmentCoding};
use super::mask::{ImageSize, Mask};
use super::open::default_class;
use super::project::Project;
use crate::study::seg::{self, SegFile};
use crate::study::{self, LabelVolume, Series, SeriesKind, StudyError};

/// What kind of label file a path holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelSource {
    /// A DICOM Segmentation object.
    Seg,
    /// A NIfTI label volume (`.nii`, `.nii.gz`).
    Nifti,
    /// A folder of PNG masks named after the images.
    PngFolder,
}

impl LabelSource {
    /// What `path` holds, judged from its name and first bytes; `None` when it is none of
    /// the three.
    pub fn detect(path: &Path) -> Option<Self> {
        if path.is_dir() {
            return Some(Self::PngFolder);
        }
        let name = path.file_name()?.to_string_lossy().to_lowercase();
        if name.ends_with(".nii") || name.ends_with(".nii.gz") {
            return Some(Self::Nifti);
        }
        seg::is_segmentation_file(path).then_some(Self::Seg)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Seg => "DICOM SEG",
            Self::Nifti => "NIfTI",
            Self::PngFolder => "PNG masks",
        }
    }
}

/// An import: the file or folder and, optionally, which series it belongs to.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    pub path: PathBuf,
    /// The series (numbered from 1) the labels belong to; by default the one they fit.
    pub series: Option<usize>,
    /// PNG masks holding only 0 and 255: the class they become (default: the first class).
    pub binary_class: Option<u8>,
}

/// What an import changed.
#[derive(Debug, Clone)]
pub struct ImportSummary {
    pub source: PathBuf,
    pub kind: LabelSource,
    /// Series the labels went to (numbered from 1); several for PNG masks.
    pub series: Vec<usize>,
    /// Images or slices that received a mask.
    pub items: usize,
    /// Masks written (one per image and class).
    pub masks: usize,
    /// Names of the classes the import created.
    pub new_classes: Vec<String>,
    /// PNG files named after no image of the study.
    pub unmatched_files: Vec<PathBuf>,
    pub elapsed_secs: f64,
}

impl ImportSummary {
    /// One line for the toast, the dialog and the CLI.
    pub fn line(&self) -> String {
        let name = self.source.file_name().map_or_else(
            || self.source.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut line = if self.masks == 0 {
            format!("{} {name}: no labelled pixels found", self.kind.name())
        } else {
            format!(
                "Imported {} mask(s) on {} image(s) from {} {name} in {:.1} s",
                self.masks,
                self.items,
                self.kind.name(),
                self.elapsed_secs
            )
        };
        if !self.new_classes.is_empty() {
            line += &format!("; new label(s): {}", self.new_classes.join(", "));
        }
        if !self.unmatched_files.is_empty() {
            line += &format!(
                "; {} file(s) named after no image were ignored",
                self.unmatched_files.len()
            );
        }
        line
    }
}

/// Imports the labels at `request.path` onto `series` (whose slices are `items[k][i]`).
pub fn import_labels(
    project: &mut Project,
    series: &[Series],
    items: &[Vec<ItemId>],
    request: &ImportRequest,
) -> Result<ImportSummary> {
    let start = Instant::now();
    let path = request.path.as_path();
    let kind = LabelSource::detect(path).ok_or_else(|| AnnotationError::UnknownLabelFormat {
        path: path.to_path_buf(),
    })?;
    if let Some(n) = request.series
        && (n == 0 || n > series.len())
    {
        return Err(AnnotationError::SeriesNotInProject { series: n });
    }
    let mut plan = ImportPlan::new(project);
    let used_series = match kind {
        LabelSource::Seg => plan_seg(&mut plan, series, items, request)?,
        LabelSource::Nifti => plan_nifti(&mut plan, series, items, request)?,
        LabelSource::PngFolder => plan_png(&mut plan, series, items, request)?,
    };
    let source_name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let summary = ImportSummary {
        source: path.to_path_buf(),
        kind,
        series: used_series,
        items: {
            let mut ids: Vec<ItemId> = plan.masks.iter().map(|(i, _, _)| *i).collect();
            ids.sort_unstable();
            ids.dedup();
            ids.len()
        },
        masks: plan.masks.len(),
        new_classes: plan.new_classes.iter().map(|c| c.name.clone()).collect(),
        unmatched_files: std::mem::take(&mut plan.unmatched),
        elapsed_secs: 0.0,
    };
    if !plan.masks.is_empty() {
        let codings = std::mem::take(&mut plan.codings);
        project.apply(Edit::ImportMasks {
            classes: plan.new_classes,
            masks: plan.masks,
            provenance: Provenance::imported(&source_name),
        })?;
        project.save_segment_codings(&codings)?;
    }
    tracing::info!(masks = summary.masks, kind = kind.name(), "labels imported");
    Ok(ImportSummary {
        elapsed_secs: start.elapsed().as_secs_f64(),
        ..summary
    })
}

/// What the import will do, built before anything changes.
struct ImportPlan {
    existing: Vec<LabelClass>,
    saved_codings: BTreeMap<u8, SegmentCoding>,
    new_classes: Vec<LabelClass>,
    masks: Vec<(ItemId, u8, Mask)>,
    codings: BTreeMap<u8, SegmentCoding>,
    unmatched: Vec<PathBuf>,
}

impl ImportPlan {
    fn new(project: &Project) -> Self {
        Self {
            existing: project.classes().cloned().collect(),
            saved_codings: project.segment_codings().unwrap_or_default(),
            new_classes: Vec::new(),
            masks: Vec::new(),
            codings: BTreeMap::new(),
            unmatched: Vec::new(),
        }
    }

    fn all_classes(&self) -> impl Iterator<Item = &LabelClass> {
        self.existing.iter().chain(&self.new_classes)
    }

    fn free_value(&self, path: &Path) -> Result<u8> {
        (1..=u8::MAX)
            .find(|v| !self.all_classes().any(|c| c.value == *v))
            .ok_or_else(|| AnnotationError::TooManyClasses {
                path: path.to_path_buf(),
            })
    }

    /// The class named `name` (case and surrounding spaces ignored), created if missing.
    fn class_by_name(&mut self, name: &str, colour: [u8; 3], path: &Path) -> Result<u8> {
        let key = name.trim().to_lowercase();
        if let Some(c) = self
            .all_classes()
            .find(|c| c.name.trim().to_lowercase() == key)
        {
            return Ok(c.value);
        }
        let value = self.free_value(path)?;
        self.new_classes.push(LabelClass {
            value,
            name: name.trim().to_owned(),
            colour,
            concept: None,
        });
        Ok(value)
    }

    /// The class of label value `value`: the class named `name` when one is given, else the
    /// class with that value, created ("Label n") if missing.
    fn class_by_value(
        &mut self,
        value: u16,
        name: Option<(&str, [u8; 3])>,
        path: &Path,
    ) -> Result<u8> {
        let Ok(v) = u8::try_from(value) else {
            return Err(AnnotationError::ReadLabels {
                path: path.to_path_buf(),
                source: Box::new(StudyError::InvalidLabels {
                    path: path.to_path_buf(),
                    reason: format!("label value {value} is above 255, the largest class value"),
                }),
            });
        };
        if let Some((name, colour)) = name {
            return self.class_by_name(name, colour, path);
        }
        if self.all_classes().any(|c| c.value == v) {
            return Ok(v);
        }
        self.new_classes.push(default_class(v));
        Ok(v)
    }

    fn add_mask(&mut self, item: ItemId, class: u8, size: ImageSize, bytes: Vec<u8>) {
        if let Some(mask) = Mask::from_bytes(size, bytes).filter(|m| !m.is_empty()) {
            match self
                .masks
                .iter_mut()
                .find(|(i, c, _)| *i == item && *c == class)
            {
                Some((_, _, existing)) => existing.combine(&mask, super::PasteMode::Union),
                None => self.masks.push((item, class, mask)),
            }
        }
    }
}

fn read_error(path: &Path, source: StudyError) -> AnnotationError {
    AnnotationError::ReadLabels {
        path: path.to_path_buf(),
        source: Box::new(source),
    }
}

fn size_of(series: &Series, path: &Path) -> Result<ImageSize> {
    ImageSize::new(series.width, series.height).ok_or(AnnotationError::ReadLabels {
        path: path.to_path_buf(),
        source: Box::new(StudyError::ZeroSizedImage {
            path: path.to_path_buf(),
            width: series.width,
            height: series.height,
        }),
    })
}

/// Series numbers (0-based) to try, the requested one alone when given.
fn candidates(series: &[Series], request: &ImportRequest) -> Vec<usize> {
    match request.series {
        Some(n) => vec![n - 1],
        None => (0..series.len()).collect(),
    }
}

fn plan_seg(
    plan: &mut ImportPlan,
    series: &[Series],
    items: &[Vec<ItemId>],
    request: &ImportRequest,
) -> Result<Vec<usize>> {
    let path = request.path.as_path();
    let seg = seg::read_seg(path).map_err(|e| read_error(path, e))?;
    // The series the object names first, then every other DICOM series.
    let mut order = candidates(series, request);
    order.retain(|&k| series.get(k).is_some_and(|s| s.kind == SeriesKind::Dicom));
    order.sort_by_key(|&k| {
        !series
            .get(k)
            .is_some_and(|s| seg.referenced_series.contains(&s.key))
    });
    let mut first_error = None;
    for k in order {
        let (Some(s), Some(ids)) = (series.get(k), items.get(k)) else {
            continue;
        };
        match seg::match_to_series(&seg, s) {
            Ok(frames) => {
                add_seg_frames(plan, &seg, &frames, s, ids, path)?;
                return Ok(vec![k + 1]);
            }
            Err(e) => {
                let named = seg.referenced_series.contains(&s.key);
                if first_error.is_none() || named {
                    first_error = Some(e);
                }
                if named {
                    break;
                }
            }
        }
    }
    Err(read_error(
        path,
        first_error.unwrap_or(StudyError::SegOtherSeries {
            path: path.to_path_buf(),
            frames: seg.frames.len(),
        }),
    ))
}

fn add_seg_frames(
    plan: &mut ImportPlan,
    seg: &SegFile,
    frames: &[seg::MatchedFrame],
    s: &Series,
    ids: &[ItemId],
    path: &Path,
) -> Result<()> {
    let size = size_of(s, path)?;
    let mut class_of: BTreeMap<u16, u8> = BTreeMap::new();
    for d in &seg.segments {
        if !frames.iter().any(|f| f.segment == d.number) {
            continue;
        }
        let class = plan.class_by_name(&d.label, d.colour, path)?;
        class_of.insert(d.number, class);
        let mut coding = plan
            .saved_codings
            .get(&class)
            .cloned()
            .unwrap_or(SegmentCoding {
                category: d.category.clone(),
                property_type: d.property_type.clone(),
                imported: None,
            });
        coding.imported = Some(ImportedAlgorithm {
            algorithm_type: d.algorithm_type,
            algorithm: d.algorithm.clone(),
        });
        plan.codings.insert(class, coding);
    }
    for f in frames {
        let (Some(&class), Some(&item)) = (class_of.get(&f.segment), ids.get(f.slice)) else {
            continue;
        };
        plan.add_mask(item, class, size, f.to_mask());
    }
    Ok(())
}

fn plan_nifti(
    plan: &mut ImportPlan,
    series: &[Series],
    items: &[Vec<ItemId>],
    request: &ImportRequest,
) -> Result<Vec<usize>> {
    let path = request.path.as_path();
    let mut first_error = None;
    let mut found: Option<(usize, LabelVolume)> = None;
    for k in candidates(series, request) {
        let Some(s) = series.get(k) else { continue };
        let read = volume_geometry(s, true)
            .map_err(|e| match e {
                AnnotationError::SeriesGeometry { source, .. } => *source,
                other => StudyError::GridMismatch {
                    path: path.to_path_buf(),
                    reason: other.to_string(),
                },
            })
            .and_then(|g| study::nifti::read_label_volume(path, &g));
        match read {
            Ok(volume) => {
                found = Some((k, volume));
                break;
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let Some((k, volume)) = found else {
        return Err(read_error(
            path,
            first_error.unwrap_or(StudyError::GridMismatch {
                path: path.to_path_buf(),
                reason: "the study has no series".to_owned(),
            }),
        ));
    };
    let (Some(s), Some(ids)) = (series.get(k), items.get(k)) else {
        return Err(AnnotationError::SeriesNotInProject { series: k + 1 });
    };
    if ids.len() != s.len() {
        return Err(AnnotationError::SeriesNotInProject { series: k + 1 });
    }
    let size = size_of(s, path)?;
    let sidecar = study::nifti::read_sidecar(path);
    let names: BTreeMap<u16, (String, [u8; 3])> = sidecar
        .iter()
        .flat_map(|sc| &sc.labels)
        .map(|l| (l.value, (l.name.clone(), l.color)))
        .collect();
    let mut values: Vec<u16> = volume.labels.iter().copied().filter(|&v| v > 0).collect();
    values.sort_unstable();
    values.dedup();
    let mut class_of = BTreeMap::new();
    for v in values {
        let name = names.get(&v).map(|(n, c)| (n.as_str(), *c));
        class_of.insert(v, plan.class_by_value(v, name, path)?);
    }
    for (slice, &item) in ids.iter().enumerate() {
        let Some(map) = volume.slice(slice) else {
            break;
        };
        for (&v, &class) in &class_of {
            if map.labels.contains(&v) {
                let bytes = map.labels.iter().map(|&l| u8::from(l == v)).collect();
                plan.add_mask(item, class, size, bytes);
            }
        }
    }
    Ok(vec![k + 1])
}

fn plan_png(
    plan: &mut ImportPlan,
    series: &[Series],
    items: &[Vec<ItemId>],
    request: &ImportRequest,
) -> Result<Vec<usize>> {
    let folder = request.path.as_path();
    let entries = std::fs::read_dir(folder).map_err(|source| {
        read_error(
            folder,
            StudyError::ReadFile {
                path: folder.to_path_buf(),
                source,
            },
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
        .collect();
    files.sort();
    // (file, series, slice) for every file named after an image.
    let mut matched: Vec<(PathBuf, usize, usize)> = Vec::new();
    for k in candidates(series, request) {
        let Some(s) = series.get(k) else { continue };
        for (i, frame) in s.frames.iter().enumerate() {
            let multi_frame = s.frames.iter().filter(|f| f.path == frame.path).count() > 1;
            let expected =
                study::mask_path_for(&frame.path, multi_frame.then_some(frame.frame), folder);
            if files.contains(&expected) {
                matched.push((expected, k, i));
            }
        }
    }
    if matched.is_empty() {
        return Err(AnnotationError::NoMatchingMasks {
            path: folder.to_path_buf(),
        });
    }
    plan.unmatched = files
        .into_iter()
        .filter(|f| !matched.iter().any(|(m, _, _)| m == f))
        .collect();
    let mut maps = Vec::with_capacity(matched.len());
    for (file, k, i) in &matched {
        let Some(s) = series.get(*k) else { continue };
        let map = study::read_mask_png(file).map_err(|e| read_error(file, e))?;
        if (map.width, map.height) != (s.width, s.height) {
            return Err(read_error(
                file,
                StudyError::SizeMismatch {
                    path: file.clone(),
                    expected_width: s.width,
                    expected_height: s.height,
                    found_width: map.width,
                    found_height: map.height,
                },
            ));
        }
        maps.push((file.clone(), *k, *i, map));
    }
    let binary = maps
        .iter()
        .all(|(_, _, _, m)| m.labels.iter().all(|&v| v == 0 || v == 255));
    let binary_class = match request.binary_class {
        Some(c) if plan.all_classes().any(|x| x.value == c) => c,
        Some(c) => return Err(AnnotationError::UnknownClass { value: c }),
        None => plan.existing.first().map_or(1, |c| c.value),
    };
    if binary && !plan.all_classes().any(|c| c.value == binary_class) {
        plan.new_classes.push(default_class(binary_class));
    }
    let mut used = Vec::new();
    for (file, k, i, map) in maps {
        let (Some(s), Some(&item)) = (series.get(k), items.get(k).and_then(|v| v.get(i))) else {
            return Err(AnnotationError::SeriesNotInProject { series: k + 1 });
        };
        let size = size_of(s, &file)?;
        if binary {
            let bytes = map.labels.iter().map(|&v| u8::from(v != 0)).collect();
            plan.add_mask(item, binary_class, size, bytes);
        } else {
            let mut values: Vec<u16> = map.labels.iter().copied().filter(|&v| v > 0).collect();
            values.sort_unstable();
            values.dedup();
            for v in values {
                let class = plan.class_by_value(v, None, &file)?;
                let bytes = map.labels.iter().map(|&l| u8::from(l == v)).collect();
                plan.add_mask(item, class, size, bytes);
            }
        }
        if !used.contains(&(k + 1)) {
            used.push(k + 1);
        }
    }
    Ok(used)
}
