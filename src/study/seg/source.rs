//! What a segmentation needs to know about its source series, read again from the files'
//! headers: each slice's SOP class and instance (and frame number in a multi-frame source),
//! its plane, and the study, series and frame of reference it belongs to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, Tag};

use crate::study::dicom::{self, floats, frame_placement, functional, pixel_spacing, text, uint};
use crate::study::geometry::SlicePlacement;
use crate::study::{Result, Series, SeriesKind, StudyError};

/// One slice of the source series.
#[derive(Debug, Clone)]
pub(crate) struct SourceFrame {
    pub sop_class: String,
    pub sop_instance: String,
    /// 1-based frame number inside a multi-frame source instance; `None` for single frames.
    pub frame_number: Option<u32>,
    pub placement: Option<SlicePlacement>,
}

/// The source series, slice by slice in the series' display order.
#[derive(Debug)]
pub(crate) struct SourceSeries {
    pub frames: Vec<SourceFrame>,
    pub series_uid: String,
    pub study_uid: String,
    pub frame_of_reference: Option<String>,
    /// (row spacing, column spacing) mm.
    pub pixel_spacing: Option<[f64; 2]>,
    pub slice_thickness: Option<f64>,
    /// The first file's header: patient and study attributes are copied from it.
    pub first: DefaultDicomObject,
    pub first_path: PathBuf,
}

impl SourceSeries {
    /// Reads the header of every file of `series` once.
    pub(crate) fn read(series: &Series) -> Result<Self> {
        let first_path = series
            .first_path()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        if series.kind != SeriesKind::Dicom || series.is_empty() {
            return Err(StudyError::SegNeedsDicom { path: first_path });
        }
        let mut headers: BTreeMap<&Path, DefaultDicomObject> = BTreeMap::new();
        for f in &series.frames {
            if !headers.contains_key(f.path.as_path()) {
                headers.insert(f.path.as_path(), dicom::open_header(&f.path)?);
            }
        }
        let missing = |path: &Path, attribute| StudyError::MissingAttribute {
            path: path.to_path_buf(),
            attribute,
        };
        let mut frames = Vec::with_capacity(series.len());
        let mut study_uid: Option<String> = None;
        for f in &series.frames {
            let Some(obj) = headers.get(f.path.as_path()) else {
                return Err(missing(&f.path, "SOPInstanceUID"));
            };
            let sop_instance = text(obj, tags::SOP_INSTANCE_UID)
                .ok_or_else(|| missing(&f.path, "SOPInstanceUID"))?;
            let sop_class =
                text(obj, tags::SOP_CLASS_UID).ok_or_else(|| missing(&f.path, "SOPClassUID"))?;
            let study = text(obj, tags::STUDY_INSTANCE_UID)
                .ok_or_else(|| missing(&f.path, "StudyInstanceUID"))?;
            if *study_uid.get_or_insert_with(|| study.clone()) != study {
                return Err(StudyError::InvalidAttribute {
                    path: f.path.clone(),
                    attribute: "StudyInstanceUID",
                    reason: "the series' images belong to different studies".to_owned(),
                });
            }
            let multi = uint(obj, tags::NUMBER_OF_FRAMES).is_some_and(|n| n > 1);
            frames.push(SourceFrame {
                sop_class,
                sop_instance,
                frame_number: multi.then_some(f.frame + 1),
                placement: frame_placement(obj, f.frame),
            });
        }
        let first = headers
            .remove(first_path.as_path())
            .ok_or_else(|| missing(&first_path, "SOPInstanceUID"))?;
        let series_uid = text(&first, tags::SERIES_INSTANCE_UID)
            .ok_or_else(|| missing(&first_path, "SeriesInstanceUID"))?;
        let slice_thickness =
            first_value(&first, tags::PIXEL_MEASURES_SEQUENCE, tags::SLICE_THICKNESS)
                .filter(|t| t.is_finite() && *t > 0.0);
        Ok(Self {
            frames,
            series_uid,
            study_uid: study_uid.unwrap_or_default(),
            frame_of_reference: text(&first, tags::FRAME_OF_REFERENCE_UID),
            pixel_spacing: pixel_spacing(&first).or(series.pixel_spacing_mm),
            slice_thickness,
            first,
            first_path,
        })
    }
}

/// The first value of `attr`, at top level or in the frame-0 functional group `group_seq`.
fn first_value(obj: &DefaultDicomObject, group_seq: Tag, attr: Tag) -> Option<f64> {
    functional(obj, 0, group_seq, attr)
        .and_then(|o| floats(o, attr))
        .and_then(|v| v.first().copied())
}
