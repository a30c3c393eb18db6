//! DICOM reading with dicom-rs: the header-only pass used by discovery ([`read_header`]) and
//! pixel decoding ([`decode_frames`]). Geometry of Enhanced (multi-frame) objects comes from
//! the per-frame and shared functional group sequences, which dicom-pixeldata does not read.
//! Only sizes and geometry are extracted; identifying attributes are never read here except
//! SeriesInstanceUID/SOPInstanceUID, which are used for grouping only.

mod decode;
mod guard;
mod syntax;

use std::path::{Path, PathBuf};

use dicom_core::VR;
use dicom_dictionary_std::tags;
use dicom_object::mem::InMemElement;
use dicom_object::{InMemDicomObject, OpenFileOptions, Tag};

pub(crate) use decode::decode_frames;
use guard::Extent;
pub(crate) use syntax::transfer_syntax_name;

use crate::study::geometry::SlicePlacement;
use crate::study::{Result, StudyError};

/// What discovery needs from one DICOM file, read without Pixel Data.
#[derive(Debug, Clone)]
pub(crate) struct DicomHeader {
    pub path: PathBuf,
    /// SeriesInstanceUID, or a per-file key when absent.
    pub series_key: String,
    pub sop_instance_uid: Option<String>,
    pub modality: Option<String>,
    pub transfer_syntax_uid: String,
    pub rows: u32,
    pub columns: u32,
    pub frames: u32,
    pub samples_per_pixel: u16,
    pub instance_number: Option<i64>,
    /// (row spacing, column spacing) mm.
    pub pixel_spacing: Option<[f64; 2]>,
    pub slice_thickness: Option<f64>,
    /// One entry per frame.
    pub placements: Vec<Option<SlicePlacement>>,
}

/// Reads the header of a DICOM file up to (not including) Pixel Data.
pub(crate) fn read_header(path: &Path) -> Result<DicomHeader> {
    let obj = open_header(path)?;
    let transfer_syntax_uid = trim(obj.meta().transfer_syntax());
    let rows = uint(&obj, tags::ROWS);
    let columns = uint(&obj, tags::COLUMNS);
    let (Some(rows), Some(columns)) = (rows, columns) else {
        return Err(StudyError::NotAnImage {
            path: path.to_path_buf(),
            reason: "DICOM object without an image (no Rows/Columns)".to_owned(),
        });
    };
    if rows == 0 || columns == 0 {
        return Err(StudyError::ZeroSizedImage {
            path: path.to_path_buf(),
            width: columns,
            height: rows,
        });
    }
    let frames = uint(&obj, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1);
    let samples_per_pixel = uint(&obj, tags::SAMPLES_PER_PIXEL)
        .and_then(|v| u16::try_from(v).ok())
        .unwrap_or(1);
    let series_key = text(&obj, tags::SERIES_INSTANCE_UID)
        .unwrap_or_else(|| format!("no-series-uid:{}", path.display()));
    let placements = (0..frames).map(|f| frame_placement(&obj, f)).collect();
    Ok(DicomHeader {
        path: path.to_path_buf(),
        series_key,
        sop_instance_uid: text(&obj, tags::SOP_INSTANCE_UID),
        modality: text(&obj, tags::MODALITY),
        transfer_syntax_uid,
        rows,
        columns,
        frames,
        samples_per_pixel,
        instance_number: text(&obj, tags::INSTANCE_NUMBER).and_then(|s| s.parse().ok()),
        pixel_spacing: pixel_spacing(&obj),
        slice_thickness: functional(
            &obj,
            0,
            tags::PIXEL_MEASURES_SEQUENCE,
            tags::SLICE_THICKNESS,
        )
        .and_then(|o| floats(o, tags::SLICE_THICKNESS))
        .and_then(|v| v.first().copied())
        .filter(|t| t.is_finite() && *t > 0.0),
        placements,
    })
}

/// Parses a DICOM file up to (not including) Pixel Data, after the declared-length guard.
pub(crate) fn open_header(path: &Path) -> Result<dicom_object::DefaultDicomObject> {
    guard::check(path, Extent::UntilPixelData)?;
    OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|source| StudyError::ParseDicom {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
}

/// Parses a whole DICOM file, after the declared-length guard.
pub(crate) fn open_whole(path: &Path) -> Result<dicom_object::DefaultDicomObject> {
    guard::check(path, Extent::Whole)?;
    dicom_object::open_file(path).map_err(|source| StudyError::ParseDicom {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

/// Position and orientation of `frame`: top level for classic objects, functional groups
/// (per-frame first, then shared) for Enhanced objects.
pub(crate) fn frame_placement(obj: &InMemDicomObject, frame: u32) -> Option<SlicePlacement> {
    let pos_src = functional(
        obj,
        frame,
        tags::PLANE_POSITION_SEQUENCE,
        tags::IMAGE_POSITION_PATIENT,
    )?;
    let ori_src = functional(
        obj,
        frame,
        tags::PLANE_ORIENTATION_SEQUENCE,
        tags::IMAGE_ORIENTATION_PATIENT,
    )?;
    let pos = floats(pos_src, tags::IMAGE_POSITION_PATIENT)?;
    let ori = floats(ori_src, tags::IMAGE_ORIENTATION_PATIENT)?;
    let position: [f64; 3] = pos.get(..3)?.try_into().ok()?;
    let orientation: [f64; 6] = ori.get(..6)?.try_into().ok()?;
    SlicePlacement::new(position, orientation)
}

pub(crate) fn pixel_spacing(obj: &InMemDicomObject) -> Option<[f64; 2]> {
    let src = functional(obj, 0, tags::PIXEL_MEASURES_SEQUENCE, tags::PIXEL_SPACING)?;
    let v = floats(src, tags::PIXEL_SPACING)?;
    let spacing: [f64; 2] = v.get(..2)?.try_into().ok()?;
    spacing
        .iter()
        .all(|s| s.is_finite() && *s > 0.0)
        .then_some(spacing)
}

/// The data set holding `attr` for `frame`: the object itself when it has `attr` at top
/// level, else the first item of `group_seq` in the frame's per-frame functional group, else
/// in the shared functional group.
pub(crate) fn functional(
    obj: &InMemDicomObject,
    frame: u32,
    group_seq: Tag,
    attr: Tag,
) -> Option<&InMemDicomObject> {
    if obj.get(attr).is_some() {
        return Some(obj);
    }
    let from = |fg_seq: Tag, index: usize| -> Option<&InMemDicomObject> {
        let fg_item = obj.get(fg_seq)?.items()?.get(index)?;
        let item = fg_item.get(group_seq)?.items()?.first()?;
        item.get(attr).is_some().then_some(item)
    };
    let index = usize::try_from(frame).ok()?;
    from(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, index)
        .or_else(|| from(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, 0))
}

pub(crate) fn trim(s: &str) -> String {
    s.trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .to_owned()
}

/// Text of an element. Values stored as UN (unknown VR, e.g. after a private-to-public
/// conversion) are raw bytes, read here as the text they hold.
fn element_text(elem: &InMemElement) -> Option<String> {
    if elem.vr() == VR::UN {
        let bytes = elem.to_bytes().ok()?;
        return Some(trim(&String::from_utf8_lossy(&bytes)));
    }
    Some(trim(&elem.to_str().ok()?))
}

pub(crate) fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let value = element_text(obj.get(tag)?)?;
    (!value.is_empty()).then_some(value)
}

/// An unsigned integer (US, UL, IS; UN holding a little-endian US/UL).
pub(crate) fn uint(obj: &InMemDicomObject, tag: Tag) -> Option<u32> {
    let elem = obj.get(tag)?;
    if elem.vr() == VR::UN {
        let bytes = elem.to_bytes().ok()?;
        return match *bytes {
            [a, b] => Some(u32::from(u16::from_le_bytes([a, b]))),
            [a, b, c, d] => Some(u32::from_le_bytes([a, b, c, d])),
            _ => text(obj, tag)?.parse().ok(),
        };
    }
    elem.to_int::<u32>()
        .ok()
        .or_else(|| text(obj, tag)?.parse().ok())
}

/// Finite decimal values (DS, FD, FL; UN holding DS text).
pub(crate) fn floats(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    let elem = obj.get(tag)?;
    let v: Vec<f64> = if elem.vr() == VR::UN {
        let text = element_text(elem)?;
        text.split('\\')
            .map(|s| s.trim().parse().ok())
            .collect::<Option<_>>()?
    } else {
        elem.to_multi_float64().ok()?
    };
    (!v.is_empty() && v.iter().all(|x| x.is_finite())).then_some(v)
}
